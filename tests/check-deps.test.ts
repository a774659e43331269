import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'

const PACKAGES = ['contracts', 'policy', 'executor', 'harness', 'gateway', 'cli']
let root = ''

/** A miniature workspace: each package's index.ts holds the given source. */
function workspace(
  sources: Partial<Record<string, string>>,
  deps: Partial<Record<string, string[]>> = {},
): string {
  root = mkdtempSync(join(tmpdir(), 'cordon-deps-'))
  for (const name of PACKAGES) {
    mkdirSync(join(root, 'services', name, 'src'), { recursive: true })
    const dependencies = Object.fromEntries((deps[name] ?? []).map((d) => [d, '0.1.0']))
    writeFileSync(join(root, 'services', name, 'package.json'), JSON.stringify({ dependencies }))
    writeFileSync(join(root, 'services', name, 'src', 'index.ts'), sources[name] ?? 'export {}\n')
  }
  return root
}

const check = (dir: string) =>
  spawnSync(process.execPath, ['scripts/check-deps.ts', dir], {
    encoding: 'utf8',
    cwd: fileURLToPath(new URL('..', import.meta.url)),
  })

afterEach(() => rmSync(root, { recursive: true, force: true }))

describe('scripts/check-deps.ts', () => {
  it('passes imports that point down the layers', () => {
    const result = check(
      workspace({ gateway: "import { x } from '@cordon/policy'\n" }, { gateway: ['@cordon/policy'] }),
    )
    expect(result.status).toBe(0)
  })

  it('fails an import against the layer order (the start of a cycle)', () => {
    const result = check(
      workspace({ policy: "import { x } from '@cordon/gateway'\n" }, { policy: ['@cordon/gateway'] }),
    )
    expect(result.status).toBe(1)
    expect(result.stderr).toContain('policy may not depend on gateway')
  })

  it('fails a deep import into another package', () => {
    const result = check(
      workspace(
        { harness: "import { x } from '@cordon/executor/src/engine.ts'\n" },
        { harness: ['@cordon/executor'] },
      ),
    )
    expect(result.stderr).toContain('deep import')
  })

  it("passes an import of an entry the other package's package.json exports", () => {
    const dir = workspace(
      { gateway: "import { x } from '@cordon/harness/store'\n" },
      { gateway: ['@cordon/harness'] },
    )
    writeFileSync(
      join(dir, 'services', 'harness', 'package.json'),
      JSON.stringify({ exports: { '.': './src/index.ts', './store': './src/store.ts' } }),
    )
    expect(check(dir).status).toBe(0)
    writeFileSync(
      join(dir, 'services', 'harness', 'package.json'),
      JSON.stringify({ exports: { '.': './src/index.ts' } }),
    )
    expect(check(dir).stderr).toContain('deep import "@cordon/harness/store"')
  })

  it('fails an import of an undeclared dependency', () => {
    const result = check(workspace({ policy: "import YAML from 'yaml'\n" }))
    expect(result.stderr).toContain('does not declare')
  })
})
