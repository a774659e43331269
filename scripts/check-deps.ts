// Fails when imports between workspace packages break the one-way order of the layers
// (contracts <- policy <- executor <- harness <- gateway <- cli), form a cycle, reach into another package's
// files instead of its index (or an entry its package.json exports), or use a package that
// package.json does not declare.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

const ORDER = ['contracts', 'policy', 'executor', 'harness', 'gateway', 'cli'] as const
const root = process.argv[2] ?? new URL('..', import.meta.url).pathname
const problems: string[] = []

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry)
    if (statSync(path).isDirectory()) return sourceFiles(path)
    return path.endsWith('.ts') ? [path] : []
  })
}

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\s[\w\s{},*$]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g

/** The entries each package exports (`@cordon/harness`, `@cordon/harness/store`, ...). */
const exported = new Set(
  ORDER.flatMap((name) => {
    const manifest = JSON.parse(readFileSync(join(root, 'services', name, 'package.json'), 'utf8')) as {
      exports?: Record<string, string>
    }
    return Object.keys(manifest.exports ?? { '.': '' }).map((entry) =>
      entry === '.' ? `@cordon/${name}` : `@cordon/${name}/${entry.replace(/^\.\//, '')}`,
    )
  }),
)

for (const [rank, name] of ORDER.entries()) {
  const pkgDir = join(root, 'services', name)
  const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>
    devDependencies?: Record<string, string>
  }
  const declared = new Set(Object.keys(manifest.dependencies ?? {}))
  const declaredForTests = new Set(Object.keys(manifest.devDependencies ?? {}))
  for (const file of sourceFiles(join(pkgDir, 'src'))) {
    const text = readFileSync(file, 'utf8')
    const where = relative(root, file)
    for (const match of text.matchAll(IMPORT)) {
      const spec = match[1] ?? match[2] ?? ''
      if (spec.startsWith('.')) {
        const target = relative(pkgDir, join(file, '..', spec))
        if (target.startsWith('..')) problems.push(`${where}: relative import "${spec}" leaves the package`)
        continue
      }
      if (spec.startsWith('node:')) continue
      // The Workers runtime's own module: only the Worker entry may use it (it exists nowhere else).
      if (spec === 'cloudflare:workers' && where.endsWith('adapters/worker.ts')) continue
      const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] ?? spec)
      if (pkg.startsWith('@cordon/')) {
        const other = pkg.slice('@cordon/'.length)
        const otherRank = ORDER.indexOf(other as (typeof ORDER)[number])
        if (spec !== pkg && !exported.has(spec))
          problems.push(`${where}: deep import "${spec}"; import "${pkg}" instead`)
        if (otherRank < 0) problems.push(`${where}: unknown package ${pkg}`)
        else if (otherRank >= rank)
          problems.push(`${where}: ${name} may not depend on ${other} (layers point one way)`)
      }
      const isTest = file.endsWith('.test.ts')
      if (!declared.has(pkg) && !(isTest && (pkg === 'vitest' || declaredForTests.has(pkg)))) {
        problems.push(`${where}: imports "${pkg}", which services/${name}/package.json does not declare`)
      }
    }
  }
}

if (problems.length > 0) {
  console.error(`check-deps: ${problems.length} problem(s)\n${problems.map((p) => `  ${p}`).join('\n')}`)
  process.exit(1)
}
console.log(`check-deps: ${ORDER.length} packages, imports point one way, no cycles`)
