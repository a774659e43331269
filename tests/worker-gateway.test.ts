import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Miniflare } from 'miniflare'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

// The Worker build (services/gateway/src/adapters/worker.ts, built by `wrangler deploy --dry-run` from
// wrangler.toml as a deployment would be) run in workerd by Miniflare: the same Hono app, one Durable
// Object per tenant on its SQLite storage. No engine runs there yet: executions answer ENGINE_UNAVAILABLE.

const REPO = fileURLToPath(new URL('..', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'cordon-worker-'))
const ADMIN = 'worker-admin-token-0123456789'
const ACME = 'acme-invoke-and-deploy-token-01'
let built: string

beforeAll(() => {
  const out = join(dir, 'build')
  const result = spawnSync(
    process.execPath,
    [join(REPO, 'node_modules/wrangler/bin/wrangler.js'), 'deploy', '--dry-run', '--outdir', out],
    { cwd: REPO, encoding: 'utf8', env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true' } },
  )
  if (result.status !== 0)
    throw new Error(`wrangler deploy --dry-run failed:\n${result.stdout}\n${result.stderr}`)
  built = join(out, 'worker.js')
}, 120_000)

afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

function start(settings: Record<string, string> = {}): Miniflare {
  return new Miniflare({
    modules: true,
    scriptPath: built,
    // Module names are relative to this (the build is outside the working directory).
    modulesRoot: join(dir, 'build'),
    compatibilityDate: '2026-07-30',
    compatibilityFlags: ['nodejs_compat'],
    durableObjects: { TENANTS: { className: 'TenantObject', useSQLite: true } },
    durableObjectsPersist: join(dir, 'do'),
    bindings: {
      CORDON_ADMIN_TOKEN: ADMIN,
      CORDON_TOKENS: JSON.stringify([{ token: ACME, tenant: 'acme', scopes: ['deploy', 'invoke', 'audit'] }]),
      ...settings,
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
      expect(
        (
          await call(first, 'POST', '/v1/agents/a/executions', {
            body: { language: 'javascript', code: '1' },
          })
        ).body,
      ).toMatchObject({ error: { code: 'ENGINE_UNAVAILABLE' } })
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
