import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Miniflare } from 'miniflare'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Body, startTestServer, TEST_TOKEN, type TestServer } from './helpers/server.ts'

// One API contract, two targets: the Node service (real HTTP, SQLite file) and the Worker build
// (wrangler's bundle in workerd, one Durable Object per tenant). Everything here must hold the same
// on both: declarations in every format, every refusal with its status and code, tokens, built-ins,
// write-only secrets, the audit chain. (Executions are not here: no engine runs on the Worker yet.)

const REPO = fileURLToPath(new URL('..', import.meta.url))

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
  const built = spawnSync(
    process.execPath,
    [join(REPO, 'node_modules/wrangler/bin/wrangler.js'), 'deploy', '--dry-run', '--outdir', out],
    { cwd: REPO, encoding: 'utf8', env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true' } },
  )
  if (built.status !== 0)
    throw new Error(`wrangler deploy --dry-run failed:\n${built.stdout}\n${built.stderr}`)
  const mf = new Miniflare({
    modules: true,
    scriptPath: join(out, 'worker.js'),
    modulesRoot: out,
    compatibilityDate: '2026-07-30',
    compatibilityFlags: ['nodejs_compat'],
    durableObjects: { TENANTS: { className: 'TenantObject', useSQLite: true } },
    durableObjectsPersist: join(dir, 'do'),
    bindings: { CORDON_ADMIN_TOKEN: TEST_TOKEN },
  })
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
})
