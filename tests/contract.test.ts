import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Body, startTestServer, TEST_TOKEN, type TestServer } from './helpers/server.ts'
import { buildWorker, startWorker } from './helpers/worker-build.ts'

// One API contract, two targets: the Node service (real HTTP, SQLite file) and the Worker build
// (wrangler's bundle in workerd, one Durable Object per tenant). Everything here must hold the same
// on both: declarations in every format, every refusal with its status and code, tokens, built-ins,
// write-only secrets, the audit chain, and QuickJS executions with their limits and bindings.

interface Target {
  request(
    method: string,
    path: string,
    options?: { body?: unknown; raw?: string; contentType?: string; token?: string | null },
  ): Promise<{ status: number; body: Body; headers: Headers }>
  close(): Promise<void>
}

async function nodeTarget(): Promise<Target> {
  const server: TestServer = await startTestServer()
  return {
    request: (method, path, options = {}) =>
      server.request(method, path, {
        ...(options.body === undefined ? {} : { body: options.body }),
        ...(options.raw === undefined ? {} : { raw: options.raw }),
        ...(options.contentType === undefined ? {} : { contentType: options.contentType }),
        ...(options.token === undefined ? {} : { auth: options.token }),
      }),
    close: () => server.close(),
  }
}

async function workerTarget(): Promise<Target> {
  const dir = mkdtempSync(join(tmpdir(), 'cordon-contract-'))
  const out = join(dir, 'build')
  buildWorker(out)
  const mf = startWorker({ out, persist: join(dir, 'do'), bindings: { CORDON_ADMIN_TOKEN: TEST_TOKEN } })
  return {
    async request(method, path, options = {}) {
      const token = options.token === undefined ? TEST_TOKEN : options.token
      const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body))
      const response = await mf.dispatchFetch(`http://cordon.test${path}`, {
        method,
        headers: {
          ...(token === null ? {} : { authorization: `Bearer ${token}` }),
          ...(body === undefined ? {} : { 'content-type': options.contentType ?? 'application/json' }),
        },
        ...(body === undefined ? {} : { body }),
      })
      const text = await response.text()
      let parsed: unknown = text
      try {
        parsed = text.length > 0 ? JSON.parse(text) : null
      } catch {}
      return { status: response.status, body: parsed, headers: response.headers as unknown as Headers }
    },
    async close() {
      await mf.dispose()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

const LIMITS = { cpuMs: 100, wallMs: 500, memoryMb: 16, outputBytes: 1024, bindingCalls: 0 }

describe.each([
  ['the Node service', nodeTarget],
  ['the Worker build', workerTarget],
])('the API contract on %s', (_, startTarget) => {
  let t: Target
  beforeAll(async () => {
    t = await startTarget()
  }, 120_000)
  afterAll(async () => {
    await t?.close()
  })

  it('answers the public routes, and refuses requests without a valid token', async () => {
    expect(await t.request('GET', '/healthz', { token: null })).toMatchObject({
      status: 200,
      body: { ok: true },
    })
    const openapi = await t.request('GET', '/openapi.json', { token: null })
    expect(openapi.body.openapi).toMatch(/^3\./)
    for (const token of [null, 'not-a-token-anyone-has']) {
      const refused = await t.request('GET', '/v1/agents', { token })
      expect(refused.status).toBe(401)
      expect(refused.body.error.code).toBe('UNAUTHENTICATED')
      expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer/)
    }
  })

  it('stores profiles from JSON and YAML, lists the built-ins beside them, and never replaces a built-in', async () => {
    const json = await t.request('PUT', '/v1/profiles/from-json', {
      body: { engines: ['quickjs'], languages: ['javascript'], limits: LIMITS },
    })
    expect(json).toMatchObject({ status: 200, body: { name: 'from-json', limits: { cpuMs: 100 } } })
    const yaml = await t.request('PUT', '/v1/profiles/from-yaml', {
      raw: 'extends: from-json\nlimits: { cpuMs: 50, wallMs: 500, memoryMb: 16, outputBytes: 1024, bindingCalls: 0 }\n',
      contentType: 'application/yaml',
    })
    expect(yaml).toMatchObject({
      status: 200,
      body: { name: 'from-yaml', chain: ['from-yaml', 'from-json'] },
    })
    const list = await t.request('GET', '/v1/profiles')
    const names = list.body.items.map((item: { name: string }) => item.name)
    expect(names).toEqual(expect.arrayContaining(['from-json', 'from-yaml', 'strict', 'tool-runner']))
    expect((await t.request('GET', '/v1/profiles/strict')).body).toMatchObject({ builtin: true })
    const builtin = await t.request('PUT', '/v1/profiles/strict', { body: { engines: ['quickjs'] } })
    expect(builtin).toMatchObject({ status: 409, body: { error: { code: 'BUILTIN_PROFILE' } } })
  })

  it('refuses bad input with its status and code: malformed, unknown keys, widening, oversized, unknown names', async () => {
    const malformed = await t.request('PUT', '/v1/profiles/bad', {
      raw: '{"engines": [',
      contentType: 'application/json',
    })
    expect(malformed).toMatchObject({ status: 400, body: { error: { code: 'MALFORMED_BODY' } } })
    const unknown = await t.request('PUT', '/v1/agents/bad', { body: { sandbox: 'strict', surprise: true } })
    expect(unknown).toMatchObject({ status: 422, body: { error: { code: 'VALIDATION_FAILED' } } })
    expect(unknown.body.error.issues).toEqual(
      expect.arrayContaining([expect.objectContaining({ path: '$' })]),
    )
    const widening = await t.request('PUT', '/v1/profiles/wider', {
      body: { extends: 'strict', limits: { ...LIMITS, cpuMs: 10_000_000 } },
    })
    expect(widening.status).toBe(422)
    const oversized = await t.request('PUT', '/v1/profiles/huge', {
      raw: JSON.stringify({ description: 'x'.repeat(2 * 1024 * 1024) }),
    })
    expect(oversized).toMatchObject({ status: 413, body: { error: { code: 'PAYLOAD_TOO_LARGE' } } })
    expect((await t.request('GET', '/v1/agents/nobody')).body.error.code).toBe('AGENT_NOT_FOUND')
    expect((await t.request('GET', '/v1/profiles/nothing')).body.error.code).toBe('PROFILE_NOT_FOUND')
  })

  it('stores an agent from Markdown with front matter, reads it back, and deletes it', async () => {
    const stored = await t.request('PUT', '/v1/agents/writer', {
      raw: '---\nsandbox: strict\ndescription: writes things\n---\nBe brief.\n',
      contentType: 'text/markdown',
    })
    expect(stored).toMatchObject({
      status: 200,
      body: { name: 'writer', sandbox: 'strict', instructions: 'Be brief.' },
    })
    expect(
      (await t.request('GET', '/v1/agents')).body.items.map((item: { name: string }) => item.name),
    ).toContain('writer')
    expect((await t.request('DELETE', '/v1/agents/writer')).status).toBe(204)
    expect((await t.request('GET', '/v1/agents/writer')).status).toBe(404)
  })

  it('keeps secrets write-only, and the audit chain of it all intact', async () => {
    const put = await t.request('PUT', '/v1/secrets/API_KEY', { body: { value: 'sk-contract-0123456789' } })
    expect(put.status).toBe(200)
    expect(JSON.stringify(put.body)).not.toContain('sk-contract')
    const listed = await t.request('GET', '/v1/secrets')
    expect(JSON.stringify(listed.body)).not.toContain('sk-contract')
    expect(listed.body.secrets.map((secret: { name: string }) => secret.name)).toContain('API_KEY')
    const verify = await t.request('GET', '/v1/audit/verify')
    expect(verify.body).toMatchObject({ ok: true })
    const kinds = (await t.request('GET', '/v1/audit?limit=100')).body.records.map(
      (record: { kind: string }) => record.kind,
    )
    expect(kinds).toEqual(expect.arrayContaining(['profile.put', 'agent.put', 'agent.delete', 'secret.put']))
    expect(JSON.stringify(kinds)).not.toContain('sk-contract')
  })

  it('runs a QuickJS execution with input, output and result, and keeps its record', async () => {
    const profile = {
      engines: ['quickjs'],
      languages: ['javascript'],
      limits: { ...LIMITS, bindingCalls: 10 },
    }
    expect((await t.request('PUT', '/v1/profiles/runs', { body: profile })).status).toBe(200)
    expect((await t.request('PUT', '/v1/agents/runs', { body: { sandbox: 'runs' } })).status).toBe(200)
    const ran = await t.request('POST', '/v1/agents/runs/executions', {
      body: {
        language: 'javascript',
        code: 'console.log("in", input.n); export default input.n * 6',
        input: { n: 7 },
      },
    })
    expect(ran).toMatchObject({
      status: 200,
      body: { status: 'ok', engine: 'quickjs', result: 42, stdout: 'in 7\n', stderr: '', error: null },
    })
    expect((await t.request('GET', `/v1/executions/${ran.body.id}`)).body).toMatchObject({
      id: ran.body.id,
      result: 42,
    })
    const thrown = await t.request('POST', '/v1/agents/runs/executions', {
      body: { language: 'javascript', code: 'throw new TypeError("nope")' },
    })
    expect(thrown.body).toMatchObject({ status: 'error', error: { code: 'GUEST_EXCEPTION' } })
    const unknown = await t.request('POST', '/v1/agents/runs/executions', {
      body: { language: 'javascript', code: '1', surprise: true },
    })
    expect(unknown).toMatchObject({ status: 422, body: { error: { code: 'VALIDATION_FAILED' } } })
  })

  it('enforces the limits: CPU, memory and output', async () => {
    const run = async (code: string) =>
      (await t.request('POST', '/v1/agents/runs/executions', { body: { language: 'javascript', code } })).body
    expect(await run('for (;;) {}')).toMatchObject({ status: 'timeout', error: { code: 'CPU_TIME_LIMIT' } })
    expect(await run('const keep = []; for (;;) keep.push("x".repeat(1 << 16) + keep.length)')).toMatchObject(
      {
        status: 'memory_limit',
      },
    )
    expect(await run('for (let i = 0; i < 100; i++) console.log("y".repeat(100))')).toMatchObject({
      error: { code: 'OUTPUT_LIMIT' },
    })
  })

  it('serves kv and refuses egress the profile does not allow, on the audit trail', async () => {
    const profile = {
      engines: ['quickjs'],
      languages: ['javascript'],
      limits: { ...LIMITS, bindingCalls: 10 },
      network: { allow: [{ host: 'api.example.com' }] },
      kv: { access: 'read-write', quotaBytes: 4096 },
    }
    expect((await t.request('PUT', '/v1/profiles/bound', { body: profile })).status).toBe(200)
    expect((await t.request('PUT', '/v1/agents/bound', { body: { sandbox: 'bound' } })).status).toBe(200)
    const code = [
      'await kv.set("count", 1)',
      'let denied = null',
      'try { await fetch("https://elsewhere.example.org/") } catch (e) { denied = e.code }',
      'let over = null',
      'try { await kv.set("big", "z".repeat(8192)) } catch (e) { over = e.code }',
      'export default { count: await kv.get("count"), denied, over }',
    ].join('\n')
    const ran = await t.request('POST', '/v1/agents/bound/executions', {
      body: { language: 'javascript', code },
    })
    expect(ran.body).toMatchObject({
      status: 'ok',
      result: { count: 1, denied: 'EGRESS_DENIED', over: 'QUOTA_EXCEEDED' },
    })
    const kinds = (await t.request('GET', '/v1/audit?limit=200')).body.records.map(
      (record: { kind: string }) => record.kind,
    )
    expect(kinds).toEqual(
      expect.arrayContaining(['binding.kv.set', 'binding.kv.get', 'binding.fetch.request']),
    )
    expect((await t.request('GET', '/v1/audit/verify')).body).toMatchObject({ ok: true })
  })
})
