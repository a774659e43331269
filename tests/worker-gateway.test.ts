import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Miniflare } from 'miniflare'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildWorker, startWorker } from './helpers/worker-build.ts'

// The Worker build (services/gateway/src/adapters/worker.ts, built by `wrangler deploy --dry-run` from
// wrangler.toml as a deployment would be) run in workerd by Miniflare: the same Hono app, one Durable
// Object per tenant on its SQLite storage, executions on QuickJS inside the tenant's object.

const dir = mkdtempSync(join(tmpdir(), 'cordon-worker-'))
const out = join(dir, 'build')
const ADMIN = 'worker-admin-token-0123456789'
const ACME = 'acme-invoke-and-deploy-token-01'
let built: string

beforeAll(() => {
  built = buildWorker(out)
}, 120_000)

afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

/** Requests guests' egress sent out (Miniflare's outbound service stands in for the Internet). */
const sent: { method: string; url: string; headers: Record<string, string>; body: string }[] = []

function start(settings: Record<string, string> = {}, persist = join(dir, 'do')): Miniflare {
  return startWorker({
    out,
    persist,
    // DNS over HTTPS, as Cloudflare's resolver would answer: one name points into a private range.
    dns: {
      'internal.example.com': ['10.1.2.3'],
      'rebound.example.com': ['93.184.215.14', '127.0.0.1'],
      'denied.example.com': ['93.184.215.99'],
    },
    bindings: {
      CORDON_ADMIN_TOKEN: ADMIN,
      CORDON_TOKENS: JSON.stringify([{ token: ACME, tenant: 'acme', scopes: ['deploy', 'invoke', 'audit'] }]),
      ...settings,
    },
    outbound: async (request) => {
      const headers: Record<string, string> = {}
      request.headers.forEach((value, name) => {
        headers[name] = value
      })
      sent.push({ method: request.method, url: request.url, headers, body: await request.text() })
      const url = new URL(request.url)
      if (url.pathname === '/redirect')
        return new Response(null, { status: 302, headers: { location: 'https://evil.example.net/' } })
      if (url.pathname === '/large') return new Response('x'.repeat(3 * 1024 * 1024))
      return Response.json({ echoed: url.pathname, method: request.method })
    },
  })
}

async function call(
  mf: Miniflare,
  method: string,
  path: string,
  options: { body?: unknown; token?: string | null; headers?: Record<string, string> } = {},
) {
  const token = options.token === undefined ? ADMIN : options.token
  const response = await mf.dispatchFetch(`http://cordon.test${path}`, {
    method,
    headers: {
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
      'content-type': 'application/json',
      ...options.headers,
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  })
  const text = await response.text()
  return { status: response.status, body: text.length > 0 ? JSON.parse(text) : null }
}

const PROFILE = {
  engines: ['quickjs'],
  languages: ['javascript'],
  limits: { cpuMs: 100, wallMs: 500, memoryMb: 16, outputBytes: 1024, bindingCalls: 0 },
}

describe('the Worker build (workerd)', () => {
  it('builds with wrangler deploy --dry-run from wrangler.toml', () => {
    expect(existsSync(built)).toBe(true)
  })

  it('serves the API from each tenant’s Durable Object, keeps tenants apart, and keeps state across a restart', async () => {
    const first = start()
    try {
      expect(await call(first, 'GET', '/healthz', { token: null })).toEqual({
        status: 200,
        body: { ok: true },
      })
      expect((await call(first, 'GET', '/v1/agents', { token: null })).status).toBe(401)
      expect((await call(first, 'GET', '/v1/agents', { token: 'not-a-token-we-know' })).status).toBe(401)
      // The built-in profiles are there (bundled; the Worker reads no files).
      const profiles = await call(first, 'GET', '/v1/profiles')
      expect(
        profiles.body.items
          .filter((item: { builtin: boolean }) => item.builtin)
          .map((item: { name: string }) => item.name),
      ).toEqual(expect.arrayContaining(['strict', 'tool-runner', 'web-reader', 'data-analysis']))
      expect((await call(first, 'PUT', '/v1/profiles/p', { body: PROFILE })).status).toBe(200)
      expect((await call(first, 'PUT', '/v1/agents/a', { body: { sandbox: 'p' } })).status).toBe(200)
      expect((await call(first, 'PUT', '/v1/agents/b', { body: { sandbox: 'p', surprise: 1 } })).status).toBe(
        422,
      )
      // acme has its own object: none of the default tenant's agents, and its own chain.
      expect((await call(first, 'GET', '/v1/agents', { token: ACME })).body).toEqual({ items: [] })
      expect(
        (await call(first, 'PUT', '/v1/agents/mine', { token: ACME, body: { sandbox: 'strict' } })).status,
      ).toBe(200)
      expect((await call(first, 'GET', '/v1/agents/mine')).status).toBe(404)
      expect((await call(first, 'GET', '/v1/audit/verify', { token: ACME })).body).toMatchObject({
        ok: true,
        records: 1,
      })
      const verify = await call(first, 'GET', '/v1/audit/verify')
      expect(verify.body).toMatchObject({ ok: true, records: 2 })
      await first.dispose()
      const second = start()
      try {
        expect((await call(second, 'GET', '/v1/agents/a')).body).toEqual({ name: 'a', sandbox: 'p' })
        expect((await call(second, 'GET', '/v1/agents/mine', { token: ACME })).body).toEqual({
          name: 'mine',
          sandbox: 'strict',
        })
        expect((await call(second, 'GET', '/v1/audit/verify')).body).toEqual(verify.body)
      } finally {
        await second.dispose()
      }
    } finally {
      await first.dispose().catch(() => {})
    }
  }, 60_000)

  it('attack: a client naming another tenant in the routing header still gets only its own', async () => {
    const mf = start()
    try {
      const forged = await call(mf, 'GET', '/v1/agents', {
        token: ACME,
        headers: { 'x-cordon-tenant': 'default' },
      })
      expect(forged.status).toBe(200)
      expect(forged.body.items.map((item: { name: string }) => item.name)).not.toContain('a')
      // Without a token, naming a tenant gets nothing but the 401.
      const anonymous = await call(mf, 'GET', '/v1/agents', {
        token: null,
        headers: { 'x-cordon-tenant': 'acme' },
      })
      expect(anonymous.status).toBe(401)
    } finally {
      await mf.dispose()
    }
  }, 60_000)

  it('answers the public routes and refuses anonymous requests in the Worker itself', async () => {
    const mf = start()
    try {
      const openapi = await mf.dispatchFetch('http://cordon.test/openapi.json')
      expect(openapi.status).toBe(200)
      expect(((await openapi.json()) as { openapi: string }).openapi).toMatch(/^3\./)
      const anonymous = await mf.dispatchFetch('http://cordon.test/v1/agents')
      expect(anonymous.status).toBe(401)
      expect(anonymous.headers.get('www-authenticate')).toBe('Bearer')
      expect(await anonymous.json()).toMatchObject({ error: { code: 'UNAUTHENTICATED' } })
    } finally {
      await mf.dispose()
    }
  }, 60_000)

  it('attack: the development outbound route exists only with CORDON_SANDBOX_URL, behind its token', async () => {
    const outbound = (mf: Miniflare, authorization?: string) =>
      mf.dispatchFetch('http://cordon.test/__cordon/sandbox-outbound', {
        method: 'POST',
        headers: authorization === undefined ? {} : { authorization },
        body: JSON.stringify({ token: 'default.00000000-0000-4000-8000-000000000000', args: [] }),
      })
    const plain = start()
    try {
      expect((await outbound(plain)).status).toBe(404)
    } finally {
      await plain.dispose()
    }
    const dev = start({
      CORDON_SANDBOX_URL: 'http://127.0.0.1:9',
      CORDON_SANDBOX_TOKEN: 'sandbox-token-0123456789',
    })
    try {
      expect((await outbound(dev)).status).toBe(401)
      const stale = await outbound(dev, 'Bearer sandbox-token-0123456789')
      expect(await stale.json()).toMatchObject({ ok: false, error: { code: 'EGRESS_DENIED' } })
    } finally {
      await dev.dispose()
    }
  }, 60_000)

  it.each([
    ['CORDON_TOKENS that is not JSON', { CORDON_TOKENS: '[{"token": "x"' }, 'CORDON_TOKENS'],
    [
      'a key with a short token',
      { CORDON_TOKENS: JSON.stringify([{ token: 'short', tenant: 'acme', scopes: ['invoke'] }]) },
      'CORDON_TOKENS',
    ],
    [
      'a token listed twice',
      { CORDON_TOKENS: JSON.stringify([{ token: ADMIN, tenant: 'acme', scopes: ['invoke'] }]) },
      'twice',
    ],
    ['an audit key of the wrong size', { CORDON_AUDIT_KEY: 'not-a-key' }, 'CORDON_AUDIT_KEY'],
    ['a sandbox URL that is not http(s)', { CORDON_SANDBOX_URL: 'file:///etc/passwd' }, 'CORDON_SANDBOX_URL'],
    [
      'a sandbox URL with credentials',
      { CORDON_SANDBOX_URL: 'http://user:pass@127.0.0.1:3000' },
      'CORDON_SANDBOX_URL',
    ],
    [
      'a model endpoint that is not http(s)',
      { CORDON_OPENAI_COMPATIBLE_URL: 'file:///etc/passwd' },
      'CORDON_OPENAI_COMPATIBLE_URL',
    ],
  ])(
    'refuses to serve with %s, saying which setting is wrong and never its value',
    async (_, settings, named) => {
      const mf = start(settings)
      try {
        for (const path of ['/healthz', '/v1/agents']) {
          const response = await mf.dispatchFetch(`http://cordon.test${path}`, {
            headers: { authorization: `Bearer ${ADMIN}` },
          })
          expect(response.status).toBe(500)
          const body = (await response.json()) as { error: { code: string; message: string } }
          expect(body.error.code).toBe('INTERNAL')
          expect(body.error.message).toContain(named)
          expect(body.error.message).not.toContain(ADMIN)
        }
      } finally {
        await mf.dispose()
      }
    },
    60_000,
  )
})

/** A profile for the Worker's QuickJS: kv, egress to one host with one secret for it. */
const RUNNER = {
  engines: ['quickjs'],
  languages: ['javascript', 'typescript'],
  limits: { cpuMs: 300, wallMs: 5000, memoryMb: 32, outputBytes: 65536, bindingCalls: 20 },
  filesystem: { access: 'read-write', quotaBytes: 4 * 1024 * 1024 },
  network: { allow: [{ host: 'api.example.com', methods: ['GET', 'POST'] }] },
  secrets: { TOKEN: { from: 'store:api-token', hosts: ['api.example.com'] } },
  kv: { access: 'read-write', quotaBytes: 65536 },
}

describe('executions on the Worker build (QuickJS in the tenant’s Durable Object)', () => {
  let mf: Miniflare
  const persist = join(dir, 'do-executions')
  const run = async (
    code: string,
    options: { token?: string; agent?: string; language?: string; input?: unknown } = {},
  ) =>
    call(mf, 'POST', `/v1/agents/${options.agent ?? 'runner'}/executions`, {
      ...(options.token === undefined ? {} : { token: options.token }),
      body: {
        language: options.language ?? 'javascript',
        code,
        ...(options.input === undefined ? {} : { input: options.input }),
      },
    })

  beforeAll(async () => {
    mf = start({}, persist)
    for (const token of [ADMIN, ACME]) {
      expect((await call(mf, 'PUT', '/v1/profiles/runner', { token, body: RUNNER })).status).toBe(200)
      expect(
        (await call(mf, 'PUT', '/v1/agents/runner', { token, body: { sandbox: 'runner' } })).status,
      ).toBe(200)
    }
    expect(
      (await call(mf, 'PUT', '/v1/secrets/api-token', { body: { value: 'sk-worker-secret-value' } })).status,
    ).toBe(200)
  }, 60_000)
  afterAll(async () => {
    await mf?.dispose()
  })

  it('runs a QuickJS execution with its input, output and result, and records it', async () => {
    const ran = await run('console.log("hello", input.n); export default input.n * 6', { input: { n: 7 } })
    expect(ran.status).toBe(200)
    expect(ran.body).toMatchObject({ status: 'ok', engine: 'quickjs', result: 42, stdout: 'hello 7\n' })
    expect((await call(mf, 'GET', `/v1/executions/${ran.body.id}`)).body).toMatchObject({
      id: ran.body.id,
      result: 42,
    })
  })

  it('serves kv through the policy and keeps it in the object’s storage, apart from other tenants', async () => {
    const set = await run('await kv.set("visits", { n: 1 }); export default await kv.get("visits")')
    expect(set.body).toMatchObject({ status: 'ok', result: { n: 1 } })
    // acme's object has a kv of its own: the default tenant's key is not there.
    expect((await run('export default await kv.get("visits")', { token: ACME })).body).toMatchObject({
      status: 'ok',
      result: null,
    })
  })

  it('sends egress through the policy: the allowed host gets the request with the secret put in', async () => {
    sent.length = 0
    const ran = await run(
      'const r = await fetch("https://api.example.com/v1/items?page=2", { headers: { authorization: "Bearer " + secrets.TOKEN } }); export default { status: r.status, body: await r.json() }',
    )
    expect(ran.body).toMatchObject({
      status: 'ok',
      result: { status: 200, body: { echoed: '/v1/items', method: 'GET' } },
    })
    expect(sent).toHaveLength(1)
    expect(sent[0]?.url).toBe('https://api.example.com/v1/items?page=2')
    expect(sent[0]?.headers.authorization).toBe('Bearer sk-worker-secret-value')
    // The guest saw only the placeholder: the value is in no record.
    expect(JSON.stringify(ran.body)).not.toContain('sk-worker-secret-value')
  })

  it.each([
    ['a host the profile does not allow', '"https://evil.example.net/"', 'EGRESS_DENIED'],
    [
      'a method the profile does not allow',
      '"https://api.example.com/x", { method: "DELETE" }',
      'EGRESS_DENIED',
    ],
    ['a private address', '"https://10.0.0.1/"', 'EGRESS_DENIED'],
    [
      'a redirect to a host the profile does not allow',
      '"https://api.example.com/redirect"',
      'EGRESS_DENIED',
    ],
    ['a body past the response cap', '"https://api.example.com/large"', 'RESPONSE_TOO_LARGE'],
  ])('attack: egress to %s is refused (%s), and nothing else leaves', async (_, args, code) => {
    sent.length = 0
    const ran = await run(
      `let outcome = "sent"; try { await fetch(${args}) } catch (e) { outcome = e.code }; export default outcome`,
    )
    expect(ran.body).toMatchObject({ status: 'ok', result: code })
    expect(sent.every((request) => new URL(request.url).hostname === 'api.example.com')).toBe(true)
  })

  it('attack: names that resolve to private or denied addresses are refused, though the Worker connects by name', async () => {
    const profile = {
      ...RUNNER,
      network: {
        allow: [
          { host: 'internal.example.com' },
          { host: 'rebound.example.com' },
          { host: 'denied.example.com' },
        ],
        deny: [{ host: '93.184.215.99' }],
      },
    }
    expect((await call(mf, 'PUT', '/v1/profiles/names', { body: profile })).status).toBe(200)
    expect((await call(mf, 'PUT', '/v1/agents/names', { body: { sandbox: 'names' } })).status).toBe(200)
    sent.length = 0
    const ran = await run(
      [
        'const out = {}',
        'for (const host of ["internal", "rebound", "denied"]) {',
        '  try { await fetch("https://" + host + ".example.com/"); out[host] = "sent" } catch (e) { out[host] = e.reason }',
        '}',
        'export default out',
      ].join('\n'),
      { agent: 'names' },
    )
    expect(ran.body).toMatchObject({
      status: 'ok',
      result: { internal: 'PRIVATE_ADDRESS', rebound: 'PRIVATE_ADDRESS', denied: 'EGRESS_DENIED' },
    })
    expect(sent).toEqual([])
  })

  it('keeps a record whose output JSON-escapes to six times its size (the object’s values are at most 2 MB)', async () => {
    const wide = { ...RUNNER, limits: { ...RUNNER.limits, outputBytes: 256 * 1024 } }
    expect((await call(mf, 'PUT', '/v1/profiles/wide', { body: wide })).status).toBe(200)
    expect((await call(mf, 'PUT', '/v1/agents/wide', { body: { sandbox: 'wide' } })).status).toBe(200)
    const ran = await run('console.log("\\u0001".repeat(250 * 1024))', { agent: 'wide' })
    expect(ran.status).toBe(200)
    expect(ran.body.status).toBe('ok')
    const stored = await call(mf, 'GET', `/v1/executions/${ran.body.id}`)
    expect(stored.status).toBe(200)
    expect(stored.body.stdout.length).toBe(250 * 1024 + 1)
  })

  it('attack: a secret sent to a host it is not granted for is refused and never leaves', async () => {
    sent.length = 0
    const ran = await run(
      'let code; try { await fetch("https://api.example.com/steal/" + secrets.TOKEN) } catch (e) { code = e.code }; export default code',
    )
    expect(ran.body).toMatchObject({ status: 'ok', result: 'SECRET_DENIED' })
    expect(sent).toHaveLength(0)
  })

  it('attack: a runaway loop is stopped at the CPU budget, counted without a CPU clock', async () => {
    const ran = await run('let i = 0; for (;;) { i++ }')
    expect(ran.body).toMatchObject({ status: 'timeout', error: { code: 'CPU_TIME_LIMIT' } })
  })

  it('attack: a guest allocating without end is stopped at its memory limit', async () => {
    const ran = await run('const keep = []; for (;;) keep.push("x".repeat(1 << 16) + keep.length)')
    expect(ran.body).toMatchObject({ status: 'memory_limit', error: { code: 'MEMORY_LIMIT' } })
  })

  it('refuses what this target cannot run with 422 ENGINE_UNAVAILABLE, saying why', async () => {
    const typescript = await run('export default 1 as number', { language: 'typescript' })
    expect(typescript.status).toBe(422)
    expect(typescript.body.error).toMatchObject({ code: 'ENGINE_UNAVAILABLE' })
    expect(typescript.body.error.message).toContain('typescript')
    const big = { ...RUNNER, limits: { ...RUNNER.limits, memoryMb: 128 } }
    expect((await call(mf, 'PUT', '/v1/profiles/big', { body: big })).status).toBe(200)
    expect((await call(mf, 'PUT', '/v1/agents/big', { body: { sandbox: 'big' } })).status).toBe(200)
    const refused = await run('export default 1', { agent: 'big' })
    expect(refused.status).toBe(422)
    expect(refused.body.error.message).toContain('64 MiB')
    const loud = { ...RUNNER, limits: { ...RUNNER.limits, outputBytes: 4 * 1024 * 1024 } }
    expect((await call(mf, 'PUT', '/v1/profiles/loud', { body: loud })).status).toBe(200)
    expect((await call(mf, 'PUT', '/v1/agents/loud', { body: { sandbox: 'loud' } })).status).toBe(200)
    const tooLoud = await run('export default 1', { agent: 'loud' })
    expect(tooLoud.status).toBe(422)
    expect(tooLoud.body.error.message).toContain('262144 bytes of output')
    // No Worker Loader binding here: the isolate engine is reported unavailable.
    const isolate = { ...RUNNER, engines: ['isolate'] }
    expect((await call(mf, 'PUT', '/v1/profiles/isolated', { body: isolate })).status).toBe(200)
    expect((await call(mf, 'PUT', '/v1/agents/isolated', { body: { sandbox: 'isolated' } })).status).toBe(200)
    const isolated = await run('export default 1', { agent: 'isolated' })
    expect(isolated.status).toBe(422)
    expect(isolated.body.error).toMatchObject({ code: 'ENGINE_UNAVAILABLE' })
    expect(isolated.body.error.message).toContain('isolate')
  })

  it('holds files to what the object’s storage takes (1 MiB), refusing a larger one by name', async () => {
    const ran = await run(
      [
        'await fs.writeFile("/workspace/ok.txt", "a".repeat(1024 * 1024))',
        'let code = null',
        'try { await fs.writeFile("/workspace/big.txt", "b".repeat(1024 * 1024 + 1)) } catch (e) { code = e.code + " " + e.message }',
        'export default { size: (await fs.stat("/workspace/ok.txt")).size, code }',
      ].join('\n'),
    )
    expect(ran.body).toMatchObject({ status: 'ok', result: { size: 1024 * 1024 } })
    expect(ran.body.result.code).toBe('FILE_TOO_LARGE FILE_TOO_LARGE: a file may hold at most 1048576 bytes')
  })

  it('keeps executions, kv and the audit chain across a restart of the object', async () => {
    const before = await call(mf, 'GET', '/v1/audit/verify')
    expect(before.body).toMatchObject({ ok: true })
    const listed = await call(mf, 'GET', '/v1/executions?agent=runner')
    await mf.dispose()
    mf = start({}, persist)
    expect((await call(mf, 'GET', '/v1/audit/verify')).body).toEqual(before.body)
    expect((await call(mf, 'GET', '/v1/executions?agent=runner')).body).toEqual(listed.body)
    expect((await run('export default await kv.get("visits")')).body).toMatchObject({ result: { n: 1 } })
    const audit = await call(mf, 'GET', '/v1/audit?kind=binding.kv.get')
    expect(audit.status).toBe(200)
  }, 60_000)
})
