import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decideSecret, decideTool } from './decide-grants.ts'
import { decideRun } from './decide-run.ts'
import { decideFile, decideKv, type FileOperation, type KvOperation } from './decide-storage.ts'
import { decideEgress } from './egress.ts'
import { LIMIT_NAMES } from './limits.ts'
import type { ResolvedProfile } from './profile.ts'
import { HTTP_METHODS } from './profile-schema.ts'
import { resolveProfile } from './resolve.ts'

// A small vocabulary, so that generated children and requests often hit the parent's rules exactly,
// nearly, and not at all.
const RULE_HOSTS = [
  'a.example',
  'B.Example.',
  'x.a.example',
  '*.a.example',
  '*.example',
  '*',
  '10.0.0.1',
  '127.0.0.1',
]
const REQUEST_HOSTS = [
  'a.example',
  'A.EXAMPLE.',
  'b.example',
  'x.a.example',
  'y.x.a.example',
  'c.example',
  '10.0.0.1',
  '167772161',
  '127.0.0.1',
  '0x7f.1',
  '[::ffff:127.0.0.1]',
  'evil.test',
]
const PATH_GLOBS = ['/**', '/a/**', '/a/*', '/a/b', '/b/**', '/a/*/c', '/a/**/c']
const REQUEST_PATHS = [
  '/',
  '/a',
  '/a/b',
  '/a/b/c',
  '/a/x/c',
  '/b',
  '/b/z',
  '/a/../b',
  '/a/%2e%2e/b',
  '/a/b/../../b/z',
]
const PORTS = [80, 443, 8080]
const FS_GLOBS = [
  '/workspace/**',
  '/workspace/data/**',
  '/workspace/data/*',
  '/workspace/out.txt',
  '/workspace/**/*.key',
]
const FS_PATHS = [
  '/workspace',
  'data/a.csv',
  '/workspace/data/x/y',
  'out.txt',
  '/workspace/data/../out.txt',
  'k/id.key',
  '../etc/passwd',
]
const KV_GLOBS = ['**', 'cache/**', 'cache/*', 'state', 'cache/private/**']
const KV_KEYS = ['state', 'cache/a', 'cache/a/b', 'cache/private/x', 'other']
const TOOLS = ['search', 'summarize', 'shell', '*']

const subsetOf = <T>(values: readonly T[], min = 0) =>
  fc.subarray([...values], { minLength: min }).filter((list) => list.length >= min)

const allowRule = fc.record(
  {
    host: fc.constantFrom(...RULE_HOSTS),
    schemes: subsetOf(['https', 'http'] as const, 1),
    ports: subsetOf(PORTS, 1),
    methods: subsetOf(HTTP_METHODS, 1),
    paths: subsetOf(PATH_GLOBS, 1),
  },
  { requiredKeys: ['host'] },
)
const denyRule = fc.record(
  {
    host: fc.constantFrom(...RULE_HOSTS),
    ports: subsetOf(PORTS, 1),
    methods: subsetOf(HTTP_METHODS, 1),
    paths: subsetOf(PATH_GLOBS, 1),
  },
  { requiredKeys: ['host'] },
)
const access = fc.constantFrom('none', 'read', 'read-write')
const limits = fc.record({
  cpuMs: fc.integer({ min: 1, max: 2000 }),
  wallMs: fc.integer({ min: 1, max: 2000 }),
  memoryMb: fc.integer({ min: 4, max: 256 }),
  outputBytes: fc.integer({ min: 64, max: 4096 }),
  bindingCalls: fc.integer({ min: 0, max: 100 }),
  processes: fc.integer({ min: 1, max: 64 }),
  openFiles: fc.integer({ min: 8, max: 128 }),
})

/** Any profile document: as a root, or (with `extends`) as a child that may narrow or try to widen. */
const profileDocument = (name: string, parentName?: string) =>
  fc.record(
    {
      name: fc.constant(name),
      ...(parentName === undefined ? {} : { extends: fc.constant(parentName) }),
      engines: subsetOf(['quickjs', 'isolate', 'container'] as const, 1),
      languages: subsetOf(['javascript', 'typescript', 'python', 'bash'] as const, 1),
      limits: parentName === undefined ? limits : limits.map(pickSome),
      network: fc.record(
        {
          allow: fc.array(allowRule, { maxLength: 4 }),
          deny: fc.array(denyRule, { maxLength: 2 }),
          allowPrivateAddresses: fc.boolean(),
        },
        { requiredKeys: [] },
      ),
      secrets: fc.dictionary(
        fc.constantFrom('T1', 'T2'),
        fc.record({ from: fc.constantFrom('env:T1', 'env:T2'), hosts: subsetOf(RULE_HOSTS, 1) }),
        { maxKeys: 2 },
      ),
      filesystem: fc.record(
        {
          access,
          quotaBytes: fc.integer({ min: 0, max: 1000 }),
          paths: subsetOf(FS_GLOBS, 1),
          deny: subsetOf(FS_GLOBS),
        },
        { requiredKeys: [] },
      ),
      kv: fc.record(
        {
          access,
          quotaBytes: fc.integer({ min: 0, max: 1000 }),
          keys: subsetOf(KV_GLOBS, 1),
          deny: subsetOf(KV_GLOBS),
        },
        { requiredKeys: [] },
      ),
      tools: subsetOf(TOOLS),
    },
    {
      requiredKeys:
        parentName === undefined ? ['name', 'engines', 'languages', 'limits'] : ['name', 'extends'],
    },
  )

/** A child states some limits and inherits the rest. */
function pickSome(l: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(l).filter(([, v]) => v % 3 !== 0))
}

const request = fc.record({
  scheme: fc.constantFrom('https', 'http'),
  host: fc.constantFrom(...REQUEST_HOSTS),
  port: fc.constantFrom(undefined, ...PORTS),
  path: fc.constantFrom(...REQUEST_PATHS),
  method: fc.constantFrom(...HTTP_METHODS, 'get'),
})
const urlOf = (r: { scheme: string; host: string; port: number | undefined; path: string }) =>
  `${r.scheme}://${r.host}${r.port === undefined ? '' : `:${r.port}`}${r.path}`

function resolvedPair(
  parentDoc: unknown,
  childDoc: unknown,
): { parent: ResolvedProfile; child: ResolvedProfile } | null {
  const parent = resolveProfile(parentDoc)
  if (!parent.ok) return null
  const child = resolveProfile(childDoc, { lookup: (name) => (name === 'parent' ? parentDoc : undefined) })
  return child.ok ? { parent: parent.profile, child: child.profile } : null
}

const RUNS = { numRuns: 1000 }

/**
 * A child drawn from its resolved parent: each section left out or narrowed from the parent's values,
 * with limits that sometimes step one over the parent's (which must then fail to resolve).
 */
function narrowedChild(parent: ResolvedProfile) {
  const rule = (r: ResolvedProfile['network']['allow'][number]) =>
    fc.record({
      host: fc.constantFrom(r.host, ...RULE_HOSTS),
      schemes: subsetOf(r.schemes, 1),
      ports: subsetOf(r.ports, 1),
      methods: subsetOf(r.methods, 1),
      paths: fc.oneof(subsetOf(r.paths, 1), subsetOf(PATH_GLOBS, 1)),
    })
  const limit = (value: number, min: number) => fc.integer({ min: Math.min(min, value), max: value + 1 })
  return fc.record(
    {
      name: fc.constant('child'),
      extends: fc.constant('parent'),
      engines: subsetOf(parent.engines, 1),
      languages: subsetOf(parent.languages, 1),
      limits: fc.record({
        cpuMs: limit(parent.limits.cpuMs, 1),
        memoryMb: limit(parent.limits.memoryMb, 4),
        bindingCalls: limit(parent.limits.bindingCalls, 0),
      }),
      network: fc.record(
        {
          allow:
            parent.network.allow.length === 0
              ? fc.constant([])
              : fc.array(fc.constantFrom(...parent.network.allow).chain(rule), { maxLength: 3 }),
          deny: fc.array(denyRule, { maxLength: 2 }),
          allowPrivateAddresses: fc.constantFrom(false, parent.network.allowPrivateAddresses),
        },
        { requiredKeys: [] },
      ),
      filesystem: fc.record(
        {
          access: fc.constantFrom('none', parent.filesystem.access),
          paths: fc.oneof(subsetOf(parent.filesystem.paths, 1), subsetOf(FS_GLOBS, 1)),
          deny: subsetOf(FS_GLOBS),
        },
        { requiredKeys: [] },
      ),
      kv: fc.record(
        {
          access: fc.constantFrom('none', parent.kv.access),
          keys: fc.oneof(subsetOf(parent.kv.keys, 1), subsetOf(KV_GLOBS, 1)),
          deny: subsetOf(KV_GLOBS),
        },
        { requiredKeys: [] },
      ),
      tools: subsetOf(parent.tools),
    },
    { requiredKeys: ['name', 'extends'] },
  )
}

describe('property: a child never allows what its parent does not', () => {
  const pairs = profileDocument('parent').chain((parentDoc) => {
    const parent = resolveProfile(parentDoc)
    const child = parent.ok
      ? fc.oneof(
          { weight: 4, arbitrary: narrowedChild(parent.profile) },
          { weight: 1, arbitrary: profileDocument('child', 'parent') },
        )
      : profileDocument('child', 'parent')
    return fc.tuple(fc.constant(parentDoc), child)
  })

  it('holds for egress requests', () => {
    let resolvedChildren = 0
    fc.assert(
      fc.property(
        pairs,
        fc.array(request, { minLength: 1, maxLength: 8 }),
        ([parentDoc, childDoc], requests) => {
          const pair = resolvedPair(parentDoc, childDoc)
          if (pair === null) return
          resolvedChildren++
          for (const r of requests) {
            const input = { url: urlOf(r), method: r.method }
            if (decideEgress(pair.child, input).effect === 'allow') {
              expect(decideEgress(pair.parent, input).effect).toBe('allow')
            }
          }
        },
      ),
      RUNS,
    )
    // Guard against a generator that never produces a valid child (the property would hold vacuously).
    expect(resolvedChildren).toBeGreaterThan(40)
  })

  it('holds for runs, files, keys, tools, secrets and limits', () => {
    fc.assert(
      fc.property(
        pairs,
        fc.constantFrom(...FS_PATHS),
        fc.constantFrom<FileOperation>('read', 'write', 'delete', 'list'),
        fc.constantFrom(...KV_KEYS),
        fc.constantFrom<KvOperation>('read', 'write'),
        request,
        ([parentDoc, childDoc], path, fileOp, key, kvOp, r) => {
          const pair = resolvedPair(parentDoc, childDoc)
          if (pair === null) return
          const { parent, child } = pair
          for (const language of ['javascript', 'typescript', 'python', 'bash'] as const) {
            if (decideRun(child, { language }).effect === 'allow') {
              expect(child.languages.every((l) => parent.languages.includes(l))).toBe(true)
              expect(child.engines.every((e) => parent.engines.includes(e))).toBe(true)
            }
          }
          if (decideFile(child, path, fileOp).effect === 'allow')
            expect(decideFile(parent, path, fileOp).effect).toBe('allow')
          if (decideKv(child, key, kvOp).effect === 'allow')
            expect(decideKv(parent, key, kvOp).effect).toBe('allow')
          for (const tool of TOOLS) {
            if (decideTool(child, tool).effect === 'allow')
              expect(decideTool(parent, tool).effect).toBe('allow')
          }
          const egress = decideEgress(child, { url: urlOf(r) })
          if (egress.effect === 'allow') {
            for (const name of ['T1', 'T2']) {
              if (decideSecret(child, name, egress.request).effect === 'allow') {
                const viaParent = decideEgress(parent, { url: urlOf(r) })
                expect(viaParent.effect).toBe('allow')
                if (viaParent.effect === 'allow')
                  expect(decideSecret(parent, name, viaParent.request).effect).toBe('allow')
              }
            }
          }
          for (const name of LIMIT_NAMES) expect(child.limits[name]).toBeLessThanOrEqual(parent.limits[name])
          expect(child.filesystem.quotaBytes).toBeLessThanOrEqual(parent.filesystem.quotaBytes)
          expect(child.kv.quotaBytes).toBeLessThanOrEqual(parent.kv.quotaBytes)
        },
      ),
      RUNS,
    )
  })
})

describe('property: a profile never allows what its deny rules list', () => {
  it('denies every request built to match a deny rule, whatever the allow rules say', () => {
    fc.assert(
      fc.property(
        profileDocument('p'),
        fc.nat(),
        fc.constantFrom('x', 'y'),
        fc.constantFrom('https', 'http'),
        fc.constantFrom(...HTTP_METHODS),
        (doc, pick, segment, scheme, method) => {
          const resolved = resolveProfile(doc)
          if (!resolved.ok || resolved.profile.network.deny.length === 0) return
          const { deny } = resolved.profile.network
          const rule = deny[pick % deny.length]
          if (rule === undefined) return
          const host =
            rule.host === '*'
              ? 'anything.test'
              : rule.host.startsWith('*.')
                ? `z.${rule.host.slice(2)}`
                : rule.host
          const glob = rule.paths?.[pick % rule.paths.length] ?? '/**'
          const path = glob.replaceAll('**', segment).replaceAll('*', segment)
          const port = rule.ports?.[pick % rule.ports.length] ?? 443
          const m = rule.methods?.[pick % rule.methods.length] ?? method
          const decision = decideEgress(resolved.profile, {
            url: `${scheme}://${host}:${port}${path}`,
            method: m,
          })
          expect(decision.effect).toBe('deny')
        },
      ),
      RUNS,
    )
  })

  it('denies every file and key a deny glob matches', () => {
    fc.assert(
      fc.property(
        profileDocument('p'),
        fc.constantFrom(...FS_PATHS),
        fc.constantFrom(...KV_KEYS),
        (doc, path, key) => {
          const resolved = resolveProfile(doc)
          if (!resolved.ok) return
          const { filesystem, kv } = resolved.profile
          const file = decideFile(resolved.profile, path, 'read')
          if (file.effect === 'allow') {
            expect(filesystem.deny.some((glob) => new RegExp(globRegExp(glob)).test(file.path.path))).toBe(
              false,
            )
          }
          const entry = decideKv(resolved.profile, key, 'read')
          if (entry.effect === 'allow')
            expect(kv.deny.some((glob) => new RegExp(globRegExp(glob)).test(key))).toBe(false)
        },
      ),
      RUNS,
    )
  })
})

/** An independent reading of the glob rules, so the property does not check globMatches against itself. */
function globRegExp(glob: string): string {
  const body = glob
    .split('/')
    .map((segment) =>
      segment === '**' ? '\u0000' : segment.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replaceAll('*', '[^/]*'),
    )
    .join('/')
    .replaceAll('/\u0000', '(?:/.*)?')
    .replaceAll('\u0000/', '(?:.*/)?')
    .replaceAll('\u0000', '.*')
  return `^${body}$`
}
