import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Miniflare } from 'miniflare'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ScriptedModel, startScriptedModel } from './helpers/scripted-model.ts'
import { buildWorker, forward, startWorker, workerApi } from './helpers/worker-build.ts'

// Agent runs in the Worker build (workerd through Miniflare): the tenant's Durable Object runs the
// loop with the real Anthropic provider; its requests leave through the Worker's fetch to
// Miniflare's outbound service, which hands them to a scripted model in this process. The run's
// code runs on QuickJS inside the object.

const dir = mkdtempSync(join(tmpdir(), 'cordon-worker-runs-'))
const ADMIN = 'worker-runs-admin-token-0123456789'
const KEY = 'sk-ant-worker-operator-key'
let model: ScriptedModel
let mf: Miniflare
const seenKeys: string[] = []

beforeAll(async () => {
  model = await startScriptedModel([
    {
      text: 'Computing.',
      toolCalls: [{ name: 'execute_code', input: { language: 'javascript', code: 'export default 6 * 7' } }],
    },
    { text: 'It is 42.' },
  ])
  buildWorker(join(dir, 'build'))
  mf = startWorker({
    out: join(dir, 'build'),
    persist: join(dir, 'do'),
    bindings: {
      CORDON_ADMIN_TOKEN: ADMIN,
      ANTHROPIC_API_KEY: KEY,
      CORDON_ANTHROPIC_URL: 'https://models.example.com/v1',
    },
    outbound: (request) => {
      const url = new URL(request.url)
      if (url.hostname !== 'models.example.com') return new Response(null, { status: 502 })
      seenKeys.push(request.headers.get('x-api-key') ?? '')
      const local = new URL(`${model.url}${url.pathname.slice('/v1'.length)}`)
      return forward(new Request(local, request))
    },
  })
}, 120_000)

afterAll(async () => {
  await mf?.dispose()
  await model?.close()
  rmSync(dir, { recursive: true, force: true })
})

describe('agent runs on Cloudflare (Worker build)', () => {
  it('runs the agent loop in the tenant object: model through the Worker fetch, code on QuickJS, audited', async () => {
    const api = workerApi(() => mf, ADMIN)
    const put = await api('PUT', '/v1/agents/reckoner', {
      model: 'anthropic/claude-test',
      sandbox: 'strict',
      instructions: 'You compute.',
    })
    expect(put.status, JSON.stringify(put.body)).toBe(200)
    const { status, body } = await api('POST', '/v1/agents/reckoner/runs', { message: 'six times seven?' })
    expect(status, JSON.stringify(body)).toBe(200)
    expect(body).toMatchObject({
      status: 'completed',
      output: 'It is 42.',
      usage: { steps: 2, toolCalls: 1 },
    })
    expect(body.steps[1]).toMatchObject({ call: { name: 'execute_code' }, ok: true, output: { result: 42 } })
    expect(seenKeys).toEqual([KEY, KEY])
    expect(model.requests[0]?.body.model).toBe('claude-test')
    // Stored in the object: read back, and its requests to the provider audited without the key.
    expect((await api('GET', `/v1/runs/${body.id}`)).body.status).toBe('completed')
    const audit = await api('GET', '/v1/audit?kind=model.request&limit=10')
    expect(audit.body.records).toHaveLength(2)
    expect(audit.body.records[0]).toMatchObject({ decision: 'allow', detail: { host: 'models.example.com' } })
    expect(JSON.stringify(audit.body)).not.toContain(KEY)
  })
})
