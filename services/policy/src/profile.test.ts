import { describe, expect, it } from 'vitest'
import { decideRun } from './decide-run.ts'
import type { ResolvedProfile } from './profile.ts'
import { MAX_CHAIN_LENGTH, resolveProfile } from './resolve.ts'

const limits = { cpuMs: 100, wallMs: 500, memoryMb: 16, outputBytes: 1024, bindingCalls: 10 }
const valid = { name: 'p', engines: ['quickjs', 'container'], languages: ['javascript', 'python'], limits }

/** A parent with one of everything, for children to narrow or (wrongly) widen. */
const parent = {
  name: 'parent',
  engines: ['quickjs', 'isolate'],
  languages: ['javascript', 'typescript'],
  limits,
  network: {
    allow: [
      { host: 'api.example.com', methods: ['GET', 'HEAD'], paths: ['/v1/**'] },
      { host: '*.cdn.example' },
    ],
    deny: [{ host: 'api.example.com', paths: ['/v1/admin/**'] }],
  },
  secrets: { TOKEN: { from: 'env:TOKEN', hosts: ['api.example.com'] } },
  filesystem: { access: 'read', paths: ['/workspace/data/**'] },
  kv: { access: 'read-write', quotaBytes: 1000, keys: ['cache/**'] },
  tools: ['search', 'summarize'],
}

function resolveWith(document: unknown, ...others: { name: string }[]) {
  const docs = new Map<string, unknown>([parent, ...others].map((d) => [d.name, d]))
  return resolveProfile(document, { lookup: (name) => docs.get(name) })
}

function ok(result: ReturnType<typeof resolveProfile>): ResolvedProfile {
  if (!result.ok) throw new Error(JSON.stringify(result.issues))
  return result.profile
}

function issues(result: ReturnType<typeof resolveProfile>) {
  expect(result.ok).toBe(false)
  return result.ok ? [] : result.issues
}

describe('resolveProfile: a profile without extends', () => {
  it('resolves with every limit explicit and every capability denied, frozen all the way down', () => {
    const p = ok(resolveProfile(valid))
    expect(p.limits).toEqual({ ...limits, processes: 32, openFiles: 64 })
    expect(p.network).toEqual({ allow: [], deny: [], allowPrivateAddresses: false })
    expect(p.filesystem.access).toBe('none')
    expect(p.kv.access).toBe('none')
    expect(p.tools).toEqual([])
    expect(p.chain).toEqual(['p'])
    expect(Object.isFrozen(p) && Object.isFrozen(p.limits) && Object.isFrozen(p.network.allow)).toBe(true)
  })

  it('writes out the defaults of an allow rule: https, port 443, GET and HEAD, every path', () => {
    const p = ok(resolveProfile({ ...valid, network: { allow: [{ host: 'API.Example.COM.' }] } }))
    expect(p.network.allow).toEqual([
      { host: 'api.example.com', schemes: ['https'], ports: [443], methods: ['GET', 'HEAD'], paths: ['/**'] },
    ])
  })

  it.each([
    ['an unknown top-level key', { ...valid, netwrk: {} }, '$'],
    ['an unknown limit', { ...valid, limits: { ...limits, gpuMs: 1 } }, '$.limits'],
    [
      'an unknown rule key',
      { ...valid, network: { allow: [{ host: 'a.example', verbs: ['GET'] }] } },
      '$.network.allow[0]',
    ],
    ['a missing limit', { ...valid, limits: { cpuMs: 1 } }, '$.limits.wallMs'],
    ['no engines', { name: 'p', languages: ['javascript'], limits }, '$.engines'],
    ['a limit above its ceiling', { ...valid, limits: { ...limits, cpuMs: 10_000_000 } }, '$.limits.cpuMs'],
    ['a fractional limit', { ...valid, limits: { ...limits, memoryMb: 1.5 } }, '$.limits.memoryMb'],
    ['a negative limit', { ...valid, limits: { ...limits, bindingCalls: -1 } }, '$.limits.bindingCalls'],
    ['an engine listed twice', { ...valid, engines: ['quickjs', 'quickjs'] }, '$.engines'],
    ['an empty engine list', { ...valid, engines: [] }, '$.engines'],
    ['an unknown engine', { ...valid, engines: ['docker'] }, '$.engines[0]'],
    ['a bad name', { ...valid, name: '../etc' }, '$.name'],
    [
      'a host with a path',
      { ...valid, network: { allow: [{ host: 'a.example/x' }] } },
      '$.network.allow[0].host',
    ],
    [
      'a host with userinfo',
      { ...valid, network: { allow: [{ host: 'a@b.example' }] } },
      '$.network.allow[0].host',
    ],
    [
      'a wildcard in the middle',
      { ...valid, network: { allow: [{ host: 'a.*.example' }] } },
      '$.network.allow[0].host',
    ],
    [
      'a wildcard over an IP',
      { ...valid, network: { allow: [{ host: '*.10.0.0.1' }] } },
      '$.network.allow[0].host',
    ],
    [
      'a port out of range',
      { ...valid, network: { allow: [{ host: 'a.example', ports: [70000] }] } },
      '$.network.allow[0].ports[0]',
    ],
    [
      'a method that is not HTTP',
      { ...valid, network: { allow: [{ host: 'a.example', methods: ['CONNECT'] }] } },
      '$.network.allow[0].methods[0]',
    ],
    [
      'a relative path glob',
      { ...valid, network: { allow: [{ host: 'a.example', paths: ['v1/**'] }] } },
      '$.network.allow[0].paths[0]',
    ],
    [
      'a dot-dot path glob',
      { ...valid, network: { allow: [{ host: 'a.example', paths: ['/a/../b'] }] } },
      '$.network.allow[0].paths[0]',
    ],
    [
      'a filesystem path outside /workspace',
      { ...valid, filesystem: { access: 'read', paths: ['/etc/**'] } },
      '$.filesystem.paths[0]',
    ],
    [
      'a writable filesystem without quota',
      { ...valid, filesystem: { access: 'read-write' } },
      '$.filesystem.quotaBytes',
    ],
    ['a filesystem root other than /workspace', { ...valid, filesystem: { root: '/' } }, '$.filesystem.root'],
    [
      'a secret with a bad source',
      { ...valid, secrets: { T: { from: 'file:/etc/passwd', hosts: ['a.example'] } } },
      '$.secrets.T.from',
    ],
    [
      'a secret without hosts',
      { ...valid, secrets: { T: { from: 'env:T', hosts: [] } } },
      '$.secrets.T.hosts',
    ],
    [
      'an oversized rule list',
      { ...valid, network: { allow: Array.from({ length: 65 }, () => ({ host: 'a.example' })) } },
      '$.network.allow',
    ],
    [
      'more than 32 secrets',
      {
        ...valid,
        secrets: Object.fromEntries(
          Array.from({ length: 33 }, (_, i) => [`S${i}`, { from: 'env:S', hosts: ['a.example'] }]),
        ),
      },
      '$.secrets',
    ],
    ['more than 64 tools', { ...valid, tools: Array.from({ length: 65 }, (_, i) => `t${i}`) }, '$.tools'],
    [
      'more than 128 path globs across the network rules',
      {
        ...valid,
        network: {
          allow: Array.from({ length: 5 }, (_, k) => ({
            host: 'a.example',
            paths: Array.from({ length: 26 }, (_, j) => `/${k}/${j}`),
          })),
        },
      },
      '$.network',
    ],
    [
      'more than 4096 glob characters across the network rules',
      {
        ...valid,
        network: {
          allow: Array.from({ length: 17 }, (_, k) => ({
            host: 'a.example',
            paths: [`/${k}/${'a'.repeat(250)}`],
          })),
        },
      },
      '$.network',
    ],
    [
      'a secret named constructor',
      { ...valid, secrets: { constructor: { from: 'env:T', hosts: ['a.example'] } } },
      '$.secrets.constructor',
    ],
  ])('refuses %s, naming the field', (_what, document, path) => {
    expect(issues(resolveProfile(document)).map((i) => i.path)).toContain(path)
  })
})

it('refuses a secret named __proto__ (a key JSON.parse keeps as an own property)', () => {
  const document = {
    ...valid,
    secrets: JSON.parse('{"__proto__": { "from": "env:T", "hosts": ["a.example"] }}'),
  }
  expect(resolveProfile(document).ok).toBe(false)
})

describe('resolveProfile: extends', () => {
  it('inherits what the child leaves out and records the chain', () => {
    const p = ok(resolveWith({ name: 'child', extends: 'parent', limits: { cpuMs: 50 } }))
    expect(p.chain).toEqual(['child', 'parent'])
    expect(p.limits).toEqual({ ...limits, cpuMs: 50, processes: 32, openFiles: 64 })
    expect(p.network.allow).toHaveLength(2)
    expect(p.secrets).toEqual({ TOKEN: { from: 'env:TOKEN', hosts: ['api.example.com'], query: false } })
    expect(p.tools).toEqual(['search', 'summarize'])
  })

  it('accepts a child that narrows every section', () => {
    const p = ok(
      resolveWith({
        name: 'child',
        extends: 'parent',
        engines: ['quickjs'],
        languages: ['javascript'],
        limits: {
          cpuMs: 1,
          wallMs: 1,
          memoryMb: 4,
          outputBytes: 64,
          bindingCalls: 0,
          processes: 1,
          openFiles: 8,
        },
        network: {
          allow: [
            { host: 'api.example.com', methods: ['GET'], paths: ['/v1/repos/*'] },
            { host: 'img.cdn.example' },
            { host: '*.eu.cdn.example' },
          ],
          deny: [{ host: 'img.cdn.example', paths: ['/private/**'] }],
        },
        secrets: {},
        filesystem: { access: 'none' },
        kv: { access: 'read', quotaBytes: 10, keys: ['cache/public/**'] },
        tools: ['search'],
      }),
    )
    expect(p.secrets).toEqual({})
    expect(p.network.deny).toHaveLength(2)
  })

  it('keeps the parent deny rules ahead of the child own', () => {
    const p = ok(
      resolveWith({ name: 'child', extends: 'parent', network: { deny: [{ host: 'x.cdn.example' }] } }),
    )
    expect(p.network.deny.map((rule) => rule.host)).toEqual(['api.example.com', 'x.cdn.example'])
  })

  it('lets a child of a profile granting every tool ("*") list tools by name', () => {
    const all = { ...valid, name: 'all', tools: ['*'] }
    expect(ok(resolveWith({ name: 'child', extends: 'all', tools: ['anything'] }, all)).tools).toEqual([
      'anything',
    ])
  })

  it.each([
    ['a wider limit', { limits: { cpuMs: 101 } }, '$.limits.cpuMs', '(100)'],
    ['a wider engine limit', { limits: { processes: 33 } }, '$.limits.processes', '(32)'],
    ['an extra engine', { engines: ['container'] }, '$.engines[0]', 'quickjs, isolate'],
    ['an extra language', { languages: ['python'] }, '$.languages[0]', 'javascript, typescript'],
    [
      'an extra host',
      { network: { allow: [{ host: 'evil.example' }] } },
      '$.network.allow[0].host',
      'api.example.com, *.cdn.example',
    ],
    [
      'the apex of a wildcard',
      { network: { allow: [{ host: 'cdn.example' }] } },
      '$.network.allow[0].host',
      '*.cdn.example',
    ],
    [
      'a wildcard over an exact host',
      { network: { allow: [{ host: '*.example.com' }] } },
      '$.network.allow[0].host',
      'api.example.com',
    ],
    [
      'an extra port',
      {
        network: { allow: [{ host: 'api.example.com', ports: [8443], methods: ['GET'], paths: ['/v1/**'] }] },
      },
      '$.network.allow[0].ports',
      '443',
    ],
    [
      'an extra method',
      { network: { allow: [{ host: 'api.example.com', methods: ['POST'], paths: ['/v1/**'] }] } },
      '$.network.allow[0].methods',
      'GET, HEAD',
    ],
    [
      'an extra path',
      { network: { allow: [{ host: 'api.example.com', paths: ['/v2/**'] }] } },
      '$.network.allow[0].paths',
      '/v1/**',
    ],
    [
      'an extra scheme',
      { network: { allow: [{ host: 'img.cdn.example', schemes: ['http'] }] } },
      '$.network.allow[0].schemes',
      'https',
    ],
    [
      'private addresses',
      { network: { allowPrivateAddresses: true } },
      '$.network.allowPrivateAddresses',
      '(false)',
    ],
    [
      'a new secret',
      { secrets: { OTHER: { from: 'env:OTHER', hosts: ['api.example.com'] } } },
      '$.secrets.OTHER',
      'TOKEN',
    ],
    [
      'a secret from elsewhere',
      { secrets: { TOKEN: { from: 'env:MINE', hosts: ['api.example.com'] } } },
      '$.secrets.TOKEN.from',
      'env:TOKEN',
    ],
    [
      'an extra secret host',
      { secrets: { TOKEN: { from: 'env:TOKEN', hosts: ['evil.example'] } } },
      '$.secrets.TOKEN.hosts[0]',
      'api.example.com',
    ],
    [
      'a secret allowed into the URL query',
      { secrets: { TOKEN: { from: 'env:TOKEN', hosts: ['api.example.com'], query: true } } },
      '$.secrets.TOKEN.query',
      '(false)',
    ],
    [
      'write access where the parent reads',
      { filesystem: { access: 'read-write' } },
      '$.filesystem.access',
      '"read"',
    ],
    [
      'an extra filesystem path',
      { filesystem: { paths: ['/workspace/**'] } },
      '$.filesystem.paths[0]',
      '/workspace/data/**',
    ],
    ['a kept filesystem', { filesystem: { scope: 'agent' } }, '$.filesystem.scope', '("execution")'],
    ['a larger kv quota', { kv: { quotaBytes: 1001 } }, '$.kv.quotaBytes', '(1000)'],
    ['an extra kv key pattern', { kv: { keys: ['**'] } }, '$.kv.keys[0]', 'cache/**'],
    ['an extra tool', { tools: ['shell'] }, '$.tools[0]', 'search, summarize'],
    ['every tool', { tools: ['*'] }, '$.tools[0]', 'search, summarize'],
  ])('refuses %s, naming the field and the parent value', (_what, child, path, parentValue) => {
    const found = issues(resolveWith({ name: 'child', extends: 'parent', ...child }))
    const issue = found.find((i) => i.path === path)
    expect(issue?.message).toContain('parent "parent"')
    expect(issue?.message).toContain(parentValue)
  })

  it('resolves filesystem.scope: "execution" by default, inherited, and narrowed from "agent"', () => {
    expect(ok(resolveProfile(valid)).filesystem.scope).toBe('execution')
    const kept = { ...valid, name: 'kept', filesystem: { access: 'read', scope: 'agent' } }
    expect(ok(resolveProfile(kept)).filesystem.scope).toBe('agent')
    expect(ok(resolveWith({ name: 'child', extends: 'kept' }, kept)).filesystem.scope).toBe('agent')
    const narrowed = { name: 'child', extends: 'kept', filesystem: { scope: 'execution' } }
    expect(ok(resolveWith(narrowed, kept)).filesystem.scope).toBe('execution')
    expect(issues(resolveProfile({ ...valid, filesystem: { scope: 'tenant' } }))[0]?.path).toBe(
      '$.filesystem.scope',
    )
  })

  it('refuses a rule naming a blocked address under a parent that only allows it through "*"', () => {
    // Found by the property test: a rule that names an address may reach it even when private
    // addresses are off, so "*" in the parent must not cover a child rule naming 127.0.0.1.
    const any = { ...valid, name: 'any', network: { allow: [{ host: '*', schemes: ['http', 'https'] }] } }
    const child = {
      name: 'child',
      extends: 'any',
      network: { allow: [{ host: '127.0.0.1', schemes: ['http'] }] },
    }
    expect(issues(resolveWith(child, any))).toEqual([
      {
        path: '$.network.allow[0].host',
        message:
          'host "127.0.0.1" is a blocked address, which only a rule naming it may allow; parent "any" names no such rule and does not allow private addresses',
      },
    ])
    const named = { ...any, network: { allow: [{ host: '127.0.0.1', schemes: ['http', 'https'] }] } }
    expect(resolveWith(child, named).ok).toBe(true)
    const open = { ...any, network: { ...any.network, allowPrivateAddresses: true } }
    expect(resolveWith(child, open).ok).toBe(true)
    const publicAddress = { ...child, network: { allow: [{ host: '93.184.215.14', schemes: ['http'] }] } }
    expect(resolveWith(publicAddress, any).ok).toBe(true)
  })

  it('refuses a child whose glob coverage would cost more work than a resolution may spend', () => {
    const long = (tag: string) => `/${Array(22).fill('a').join('/')}/${tag}`
    const rules = (make: (i: number) => string) =>
      Array.from({ length: 4 }, (_, k) => ({
        host: '*',
        paths: Array.from({ length: 16 }, (_, j) => make(k * 16 + j)),
      }))
    const wide = {
      ...valid,
      name: 'wide',
      network: { allow: rules((i) => (i === 63 ? '/**' : long(`p${i}`))) },
    }
    const child = { name: 'child', extends: 'wide', network: { allow: rules((i) => long(`c${i}`)) } }
    expect(issues(resolveWith(child, wide))).toEqual([
      { path: '$', message: expect.stringContaining('takes more work than a resolution may spend') },
    ])
  })

  it('refuses a missing parent at $.extends', () => {
    expect(issues(resolveWith({ name: 'child', extends: 'nobody' }))).toEqual([
      { path: '$.extends', message: 'parent profile "nobody" does not exist' },
    ])
  })

  it('refuses a profile that extends itself, and a longer cycle, naming the chain', () => {
    expect(issues(resolveWith({ name: 'me', extends: 'me' }))[0]?.message).toBe('"me" -> "me" is a cycle')
    const a = { name: 'a', extends: 'b' }
    const b = { name: 'b', extends: 'a' }
    expect(issues(resolveWith(a, a, b))[0]).toEqual({
      path: '$.extends',
      message: expect.stringContaining('is a cycle'),
    })
  })

  it(`refuses a chain longer than ${MAX_CHAIN_LENGTH}`, () => {
    const chain = Array.from({ length: MAX_CHAIN_LENGTH + 1 }, (_, i) =>
      i === 0 ? { ...valid, name: 'p0' } : { name: `p${i}`, extends: `p${i - 1}` },
    )
    const last = chain[chain.length - 1] as { name: string }
    expect(issues(resolveWith(last, ...chain))[0]?.message).toContain(`longer than ${MAX_CHAIN_LENGTH}`)
  })

  it('refuses a parent that does not resolve, saying why', () => {
    const broken = { name: 'broken', engines: ['quickjs'] }
    const found = issues(resolveWith({ name: 'child', extends: 'broken' }, broken))
    expect(found[0]?.message).toContain('parent profile "broken" does not resolve: $.languages')
  })
})

describe('decideRun', () => {
  const p = () => ok(resolveProfile(valid))

  it('allows a listed language on the first engine that can run it', () => {
    expect(decideRun(p(), { language: 'python' })).toMatchObject({
      effect: 'allow',
      engine: 'container',
      rule: 'profiles/p#/engines/1',
    })
    expect(decideRun(p(), { language: 'javascript' })).toMatchObject({ effect: 'allow', engine: 'quickjs' })
  })

  it('denies a language the profile does not list, pointing at the rule', () => {
    expect(decideRun(p(), { language: 'bash' })).toMatchObject({
      effect: 'deny',
      code: 'LANGUAGE_NOT_ALLOWED',
      rule: 'profiles/p#/languages',
    })
  })

  it('denies an engine the profile does not list', () => {
    expect(decideRun(p(), { language: 'javascript', engine: 'isolate' })).toMatchObject({
      effect: 'deny',
      code: 'ENGINE_NOT_ALLOWED',
    })
  })

  it('denies an allowed engine that cannot run the language', () => {
    expect(decideRun(p(), { language: 'python', engine: 'quickjs' })).toMatchObject({
      effect: 'deny',
      code: 'LANGUAGE_UNSUPPORTED',
    })
  })

  it('denies when no allowed engine can run an allowed language', () => {
    const jsOnlyEngines = ok(resolveProfile({ ...valid, engines: ['quickjs'] }))
    expect(decideRun(jsOnlyEngines, { language: 'python' })).toMatchObject({ code: 'LANGUAGE_UNSUPPORTED' })
  })
})
