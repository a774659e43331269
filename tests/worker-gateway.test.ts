import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'esbuild'
import { Miniflare } from 'miniflare'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TOKENS } from './workers/gateway-probe.ts'

// The gateway's Hono app and the Harness in a Durable Object, in workerd (Miniflare): the same code as
// the Node service, the store on the object's SQLite storage. No engine runs there yet, so this covers
// the declarations, the audit chain, tenants and a restart; executions answer ENGINE_UNAVAILABLE.

const dir = mkdtempSync(join(tmpdir(), 'cordon-worker-'))
let script: string

beforeAll(async () => {
  const bundle = await build({
    entryPoints: [new URL('./workers/gateway-probe.ts', import.meta.url).pathname],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2023',
    conditions: ['workerd', 'worker', 'import'],
    mainFields: ['module', 'main'],
    external: ['node:*'],
    write: false,
  })
  script = bundle.outputFiles[0]?.text ?? ''
}, 60_000)

afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

function start(): Miniflare {
  return new Miniflare({
    modules: true,
    script,
    compatibilityDate: '2026-07-30',
    compatibilityFlags: ['nodejs_compat'],
    durableObjects: { GATEWAY: { className: 'GatewayProbe', useSQLite: true } },
    durableObjectsPersist: join(dir, 'do'),
  })
}

async function call(
  mf: Miniflare,
  method: string,
  path: string,
  body?: unknown,
  token: string = TOKENS.acme,
) {
  const response = await mf.dispatchFetch(`http://cordon.test${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await response.text()
  return { status: response.status, body: text.length > 0 ? JSON.parse(text) : null }
}

const PROFILE = {
  engines: ['quickjs'],
  languages: ['javascript'],
  limits: { cpuMs: 100, wallMs: 500, memoryMb: 16, outputBytes: 1024, bindingCalls: 0 },
}

describe('the gateway in a Durable Object (workerd)', () => {
  it('serves declarations, refusals, the audit chain and tenants, and keeps them across a restart', async () => {
    const first = start()
    try {
      expect(await call(first, 'GET', '/healthz')).toEqual({ status: 200, body: { ok: true } })
      expect((await call(first, 'PUT', '/v1/profiles/p', PROFILE)).status).toBe(200)
      expect((await call(first, 'PUT', '/v1/agents/a', { sandbox: 'p' })).body).toEqual({
        name: 'a',
        sandbox: 'p',
      })
      // Bad input is refused the same way as on Node.
      expect((await call(first, 'PUT', '/v1/agents/b', { sandbox: 'p', surprise: 1 })).status).toBe(422)
      expect((await call(first, 'GET', '/v1/agents', undefined, 'not-a-token')).status).toBe(401)
      expect(
        (await call(first, 'POST', '/v1/agents/a/executions', { language: 'javascript', code: '1' })).body,
      ).toMatchObject({
        error: { code: 'ENGINE_UNAVAILABLE' },
      })
      // The other tenant sees none of it.
      expect((await call(first, 'GET', '/v1/agents', undefined, TOKENS.umbrella)).body).toEqual({ items: [] })
      expect((await call(first, 'GET', '/v1/agents/a', undefined, TOKENS.umbrella)).status).toBe(404)
      const verify = await call(first, 'GET', '/v1/audit/verify')
      expect(verify.body).toMatchObject({ ok: true, records: 2 })
      await first.dispose()
      const second = start()
      try {
        expect((await call(second, 'GET', '/v1/agents/a')).body).toEqual({ name: 'a', sandbox: 'p' })
        expect((await call(second, 'GET', '/v1/audit/verify')).body).toEqual(verify.body)
        const audit = await call(second, 'GET', '/v1/audit?limit=10')
        expect(audit.body.records.map((record: { kind: string }) => record.kind)).toEqual([
          'profile.put',
          'agent.put',
        ])
      } finally {
        await second.dispose()
      }
    } finally {
      await first.dispose().catch(() => {})
    }
  }, 60_000)
})
