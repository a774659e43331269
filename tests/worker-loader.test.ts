import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Miniflare } from 'miniflare'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildWorker, startWorker, workerApi } from './helpers/worker-build.ts'

// The isolate engine on the Worker build: each job in a fresh isolate loaded through the Worker Loader
// binding (Miniflare's, in workerd), with no network of its own, its binding calls coming back over
// RPC to be checked and decided by the tenant's object. (workerd run locally does not enforce a loaded
// isolate's CPU limit, so a runaway loop is not run here: on Cloudflare `limits.cpuMs` ends it.)

const dir = mkdtempSync(join(tmpdir(), 'cordon-loader-'))
const ADMIN = 'worker-admin-token-0123456789'
let mf: Miniflare
const sent: string[] = []

const call = workerApi(() => mf, ADMIN)
const run = (code: string, extra: Record<string, unknown> = {}) =>
  call('POST', '/v1/agents/iso/executions', { language: 'javascript', code, ...extra })

beforeAll(async () => {
  const out = join(dir, 'build')
  buildWorker(out)
  mf = startWorker({
    out,
    persist: join(dir, 'do'),
    bindings: { CORDON_ADMIN_TOKEN: ADMIN },
    loader: true,
    outbound: (request) => {
      sent.push(request.url)
      return Response.json({ from: new URL(request.url).hostname })
    },
  })
  const profile = {
    engines: ['isolate'],
    languages: ['javascript'],
    limits: { cpuMs: 1000, wallMs: 2000, memoryMb: 128, outputBytes: 2048, bindingCalls: 5 },
    network: { allow: [{ host: 'api.example.com' }] },
    kv: { access: 'read-write', quotaBytes: 4096 },
  }
  expect((await call('PUT', '/v1/profiles/iso', profile)).status).toBe(200)
  expect((await call('PUT', '/v1/agents/iso', { sandbox: 'iso' })).status).toBe(200)
}, 120_000)
afterAll(async () => {
  await mf?.dispose()
  rmSync(dir, { recursive: true, force: true })
})

describe('the isolate engine on the Worker build (Worker Loader)', () => {
  it('runs a module in an isolate of its own, with its input, output and result', async () => {
    const ran = await run(
      'console.log("in", input.n); export default async ({ n }) => ({ doubled: n * 2 })',
      {
        input: { n: 21 },
      },
    )
    expect(ran.status).toBe(200)
    expect(ran.body).toMatchObject({
      status: 'ok',
      engine: 'isolate',
      result: { doubled: 42 },
      stdout: 'in 21\n',
    })
  })

  it('serves kv and egress through the policy, over the RPC bridge', async () => {
    sent.length = 0
    const ran = await run(
      [
        'export default async () => {',
        '  await kv.set("k", { v: 1 })',
        '  const allowed = await (await fetch("https://api.example.com/x")).json()',
        '  let denied = null',
        '  try { await fetch("https://elsewhere.example.org/") } catch (e) { denied = e.code }',
        '  return { kv: await kv.get("k"), allowed, denied }',
        '}',
      ].join('\n'),
    )
    expect(ran.body).toMatchObject({
      status: 'ok',
      result: { kv: { v: 1 }, allowed: { from: 'api.example.com' }, denied: 'EGRESS_DENIED' },
    })
    expect(sent).toEqual(['https://api.example.com/x'])
  })

  it('attack: the isolate has no network of its own (no native fetch, no sockets) to get around the policy', async () => {
    sent.length = 0
    // A profile without network: the guest gets no fetch global, and the isolate's own is gone too.
    const closed = {
      engines: ['isolate'],
      languages: ['javascript'],
      limits: { cpuMs: 1000, wallMs: 2000, memoryMb: 128, outputBytes: 2048, bindingCalls: 5 },
    }
    expect((await call('PUT', '/v1/profiles/closed', closed)).status).toBe(200)
    expect((await call('PUT', '/v1/agents/closed', { sandbox: 'closed' })).status).toBe(200)
    const ran = await call('POST', '/v1/agents/closed/executions', {
      language: 'javascript',
      code: [
        'import { connect } from "cloudflare:sockets"',
        'export default async () => {',
        '  const out = { fetch: typeof fetch }',
        '  try { const socket = connect("api.example.com:443"); await socket.opened; out.socket = "open" } catch (e) { out.socket = String(e.message).slice(0, 80) }',
        '  try { await Request.prototype.constructor && (await import("cloudflare:workers")).env?.LOADER?.load; out.env = "none" } catch { out.env = "none" }',
        '  return out',
        '}',
      ].join('\n'),
    })
    expect(ran.body).toMatchObject({ status: 'ok', result: { fetch: 'undefined', env: 'none' } })
    expect(ran.body.result.socket).not.toBe('open')
    expect(ran.body.result.socket).not.toContain('global scope')
    expect(sent).toEqual([])
  })

  it('attack: binding calls past the limit are refused by the host, whatever the guest does', async () => {
    const ran = await run(
      'export default async () => { let last = null; for (let i = 0; i < 8; i++) { try { await kv.get("k") } catch (e) { last = e.code } }; return last }',
    )
    expect(ran.body).toMatchObject({ status: 'ok', result: 'BINDING_LIMIT' })
  })

  it('attack: output past the budget fails the run with OUTPUT_LIMIT, even if the guest lies about it', async () => {
    const flood = await run('for (let i = 0; i < 100; i++) console.log("z".repeat(100))')
    expect(flood.body).toMatchObject({ status: 'output_limit' })
    expect(flood.body.stdout.length).toBeLessThanOrEqual(2048)
    // The guest rewrites its own console to skip the budget: the host counts again.
    const lying = await run('export default "y".repeat(4000)')
    expect(lying.body).toMatchObject({ status: 'output_limit' })
  })

  it('reports guest errors, syntax errors and a promise that outlives the wall time', async () => {
    expect((await run('throw new TypeError("nope")')).body).toMatchObject({
      status: 'error',
      error: { code: 'GUEST_EXCEPTION' },
    })
    expect((await run('export default (')).body).toMatchObject({
      status: 'error',
      error: { code: 'SYNTAX_ERROR' },
    })
    expect(
      (await run('export default () => new Promise((resolve) => setTimeout(resolve, 10_000))')).body,
    ).toMatchObject({
      status: 'timeout',
      error: { code: 'WALL_TIME_LIMIT' },
    })
  }, 20_000)

  it('refuses I/O during module evaluation, as workerd does, saying so (it belongs in the default export)', async () => {
    const ran = await run('await kv.get("k"); export default 1')
    expect(ran.body).toMatchObject({ status: 'error', error: { code: 'GUEST_EXCEPTION' } })
    expect(ran.body.error.message).toContain('global scope')
  })

  it('refuses a profile whose memory limit a loaded isolate cannot hold (422, saying why)', async () => {
    const small = {
      engines: ['isolate'],
      languages: ['javascript'],
      limits: { cpuMs: 1000, wallMs: 2000, memoryMb: 16, outputBytes: 2048, bindingCalls: 5 },
    }
    expect((await call('PUT', '/v1/profiles/small', small)).status).toBe(200)
    expect((await call('PUT', '/v1/agents/small', { sandbox: 'small' })).status).toBe(200)
    const ran = await call('POST', '/v1/agents/small/executions', {
      language: 'javascript',
      code: 'export default 1',
    })
    expect(ran.status).toBe(422)
    expect(ran.body.error.message).toContain('memoryMb 128')
  })

  it('keeps jobs apart: a global one job sets is not there for the next', async () => {
    expect((await run('globalThis.leak = "secret"; export default 1')).body.status).toBe('ok')
    expect((await run('export default typeof globalThis.leak')).body).toMatchObject({ result: 'undefined' })
  })
})
