import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { sarifValidator } from './helpers/sarif.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'

let t: TestServer
beforeAll(async () => {
  t = await startTestServer()
})
afterAll(async () => {
  await t.close()
})

const limits = { cpuMs: 500, wallMs: 2000, memoryMb: 32, outputBytes: 4096, bindingCalls: 20 }
const reader = {
  engines: ['quickjs'],
  languages: ['javascript'],
  limits,
  network: { allow: [{ host: 'api.example.com', methods: ['GET'], paths: ['/v1/**'] }] },
}

describe('profiles resolve through extends', () => {
  it('stores a child of a built-in and answers its resolved form, every limit explicit', async () => {
    const res = await t.request('PUT', '/v1/profiles/quick', {
      raw: 'extends: strict\nlimits: { cpuMs: 200 }\n',
      contentType: 'application/yaml',
    })
    expect(res.status).toBe(200)
    const got = await t.request('GET', '/v1/profiles/quick')
    expect(got.body).toMatchObject({
      name: 'quick',
      chain: ['quick', 'strict'],
      engines: ['quickjs'],
      limits: {
        cpuMs: 200,
        wallMs: 5000,
        memoryMb: 64,
        outputBytes: 65536,
        bindingCalls: 0,
        processes: 32,
        openFiles: 64,
      },
      network: { allow: [], deny: [], allowPrivateAddresses: false },
      builtin: false,
    })
  })

  it('refuses a child that widens its parent with a 422 naming the field and the parent value', async () => {
    const res = await t.request('PUT', '/v1/profiles/greedy', {
      body: { extends: 'strict', limits: { cpuMs: 5000 } },
    })
    expect(res.status).toBe(422)
    expect(res.body.error).toMatchObject({
      code: 'VALIDATION_FAILED',
      message: 'invalid profile: $.limits.cpuMs 5000 is wider than parent "strict" (1000)',
      issues: [{ path: '$.limits.cpuMs' }],
    })
    const host = await t.request('PUT', '/v1/profiles/greedy', {
      body: { extends: 'web-reader', network: { allow: [{ host: 'evil.example' }] } },
    })
    expect(host.status).toBe(422)
    expect(host.body.error.issues[0].path).toBe('$.network.allow[0].host')
    expect(host.body.error.message).toContain('en.wikipedia.org')
  })

  it('refuses a missing parent and a cycle at $.extends', async () => {
    const missing = await t.request('PUT', '/v1/profiles/orphan', { body: { extends: 'nobody' } })
    expect(missing.status).toBe(422)
    expect(missing.body.error.issues).toEqual([
      { path: '$.extends', message: 'parent profile "nobody" does not exist' },
    ])
    const self = await t.request('PUT', '/v1/profiles/loop', { body: { extends: 'loop' } })
    expect(self.status).toBe(422)
    expect(self.body.error.message).toContain('is a cycle')
  })

  it('refuses to narrow a parent below a child that extends it (409 PROFILE_IN_USE), and allows it once the child is narrowed', async () => {
    expect((await t.request('PUT', '/v1/profiles/base', { body: reader })).status).toBe(200)
    const child = await t.request('PUT', '/v1/profiles/base-child', {
      body: { extends: 'base', limits: { cpuMs: 400 } },
    })
    expect(child.status).toBe(200)
    const narrowed = await t.request('PUT', '/v1/profiles/base', {
      body: { ...reader, limits: { ...limits, cpuMs: 300 } },
    })
    expect(narrowed.status).toBe(409)
    expect(narrowed.body.error).toMatchObject({
      code: 'PROFILE_IN_USE',
      message: expect.stringContaining('profile "base-child" depends on profile "base"'),
    })
    expect((await t.request('GET', '/v1/profiles/base')).body.limits.cpuMs).toBe(500)
    await t.request('PUT', '/v1/profiles/base-child', { body: { extends: 'base', limits: { cpuMs: 300 } } })
    expect(
      (
        await t.request('PUT', '/v1/profiles/base', {
          body: { ...reader, limits: { ...limits, cpuMs: 300 } },
        })
      ).status,
    ).toBe(200)
  })

  it('lets an agent inline a sandbox that extends a named profile, and runs under it', async () => {
    const put = await t.request('PUT', '/v1/agents/inline-child', {
      body: { sandbox: { extends: 'strict', limits: { cpuMs: 300 } } },
    })
    expect(put.status).toBe(200)
    const run = await t.execute('export default 6 * 7', {}, 'inline-child')
    expect(run.body).toMatchObject({ status: 'ok', result: 42 })
    const wide = await t.request('PUT', '/v1/agents/inline-wide', {
      body: { sandbox: { extends: 'strict', engines: ['container'] } },
    })
    expect(wide.status).toBe(422)
    expect(wide.body.error.issues[0].path).toBe('$.sandbox.engines[0]')
  })

  it('refuses an inline sandbox that takes the name of an existing profile', async () => {
    const named = await t.request('PUT', '/v1/agents/impostor', {
      body: { sandbox: { name: 'web-reader', extends: 'strict' } },
    })
    expect(named.status).toBe(422)
    expect(named.body.error.issues[0]).toEqual({
      path: '$.sandbox.name',
      message: '"web-reader" is the name of an existing profile; give the inline sandbox a name of its own',
    })
    await t.request('PUT', '/v1/agents/bot', { body: { sandbox: { extends: 'strict' } } })
    const taken = await t.request('PUT', '/v1/profiles/bot', { body: { extends: 'strict' } })
    expect(taken.status).toBe(409)
    expect(taken.body.error).toMatchObject({
      code: 'PROFILE_IN_USE',
      message: expect.stringContaining('agent "bot" has an inline sandbox named "bot"'),
    })
    expect((await t.execute('export default 1', {}, 'bot')).body).toMatchObject({ status: 'ok' })
    const namesake = await t.request('PUT', '/v1/agents/strict', { body: { sandbox: { extends: 'strict' } } })
    expect(namesake.status).toBe(422)
    expect(namesake.body.error.issues[0].path).toBe('$.sandbox.name')
  })
})

describe('POST /v1/profiles/review', () => {
  const validate = sarifValidator()

  it('reviews a posted profile document: findings with rule, severity, pointer and remediation, and reach', async () => {
    const res = await t.request('POST', '/v1/profiles/review', {
      raw: 'name: risky\nengines: [quickjs]\nlanguages: [javascript]\nlimits: { cpuMs: 100, wallMs: 500, memoryMb: 16, outputBytes: 1024, bindingCalls: 5 }\nnetwork:\n  allow:\n    - { host: "*" }\n',
      contentType: 'application/yaml',
    })
    expect(res.status).toBe(200)
    expect(res.body.findings[0]).toMatchObject({
      ruleId: 'CORDON-NET-001',
      severity: 'critical',
      pointer: '/network/allow/0/host',
      remediation: expect.any(String),
      location: { file: 'request', line: 7 },
    })
    expect(res.body.summary).toMatchObject({ subjects: 1, critical: 1 })
    expect(res.body.reach[0].entries[0].egress).toEqual(['GET,HEAD https://*:443/**'])
    expect((await t.request('GET', '/v1/profiles/risky')).status).toBe(404)
  })

  it('reviews a stored or built-in profile by name, and an agent with its tools', async () => {
    const builtin = await t.request('POST', '/v1/profiles/review', { body: { name: 'web-reader' } })
    expect(builtin.status).toBe(200)
    expect(
      builtin.body.findings.filter(
        (f: { severity: string }) => f.severity === 'high' || f.severity === 'critical',
      ),
    ).toEqual([])
    await t.request('PUT', '/v1/agents/reviewed', {
      body: {
        sandbox: 'strict',
        tools: [
          {
            name: 'lookup',
            description: 'Looks a word up',
            language: 'javascript',
            code: 'export default async ({ w }) => (await fetch("https://dict.example.com/" + w)).json()',
            sandbox: {
              extends: 'web-reader',
              network: { allow: [{ host: 'api.github.com', paths: ['/repos/**'] }] },
            },
          },
        ],
      },
    })
    const agent = await t.request('POST', '/v1/profiles/review', { body: { agent: 'reviewed' } })
    expect(agent.status).toBe(200)
    expect(agent.body.reach[0]).toMatchObject({ agent: 'reviewed', profile: 'strict' })
  })

  it('answers SARIF 2.1.0 that validates against the schema, and a text table', async () => {
    const body = {
      name: 'risky2',
      ...reader,
      network: { allow: [{ host: '*.workers.dev', methods: ['GET', 'POST'] }] },
    }
    const sarif = await t.request('POST', '/v1/profiles/review?format=sarif', { body })
    expect(sarif.status).toBe(200)
    expect(sarif.headers.get('content-type')).toContain('application/sarif+json')
    expect(validate(sarif.body)).toEqual([])
    expect(sarif.body.runs[0].results.map((r: { ruleId: string }) => r.ruleId)).toContain('CORDON-NET-002')
    const text = await t.request('POST', '/v1/profiles/review?format=text', { body })
    expect(text.headers.get('content-type')).toContain('text/plain')
    expect(text.body).toContain('HIGH      CORDON-NET-002')
  })

  it('refuses a profile that does not resolve (422 naming the field), an unknown format and an unknown name', async () => {
    const bad = await t.request('POST', '/v1/profiles/review', {
      body: { extends: 'strict', limits: { cpuMs: 99999 } },
    })
    expect(bad.status).toBe(422)
    expect(bad.body.error.issues[0].path).toBe('$.limits.cpuMs')
    expect(
      (await t.request('POST', '/v1/profiles/review?format=pdf', { body: { name: 'strict' } })).status,
    ).toBe(400)
    const badName = await t.request('POST', '/v1/profiles/review', { body: { name: '../strict' } })
    expect(badName.status).toBe(400)
    expect(badName.body.error.code).toBe('BAD_REQUEST')
    expect((await t.request('POST', '/v1/profiles/review', { body: { name: 'nope' } })).body.error.code).toBe(
      'PROFILE_NOT_FOUND',
    )
    expect(
      (await t.request('POST', '/v1/profiles/review', { raw: '{"name": ', contentType: 'application/json' }))
        .status,
    ).toBe(400)
  })
})

describe('built-in profiles', () => {
  it('are listed for every tenant with their resolved form', async () => {
    const res = await t.request('GET', '/v1/profiles')
    const names = res.body.items
      .filter((p: { builtin: boolean }) => p.builtin)
      .map((p: { name: string }) => p.name)
    expect(names.sort()).toEqual(['data-analysis', 'strict', 'tool-runner', 'web-reader'])
  })

  it('are each documented in one line of the README', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    for (const name of ['strict', 'web-reader', 'tool-runner', 'data-analysis']) {
      expect(readme).toMatch(new RegExp(`^- \`${name}\`: .+$`, 'm'))
    }
  })
})
