import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ChildServer } from '../bench/child-server.ts'
import { serviceApi, spawnService } from './helpers/child-service.ts'
import { type ScriptedModel, type ScriptedTurn, startScriptedModel } from './helpers/scripted-model.ts'
import type { Body } from './helpers/server.ts'

// Runs across kill -9: the real service as a child process, its model a scripted OpenAI-compatible
// server in this process (which outlives it). The service dies in the middle of a run; on restart
// the run resumes from its journal: completed model calls are not made again, a completed tool call
// does not run again, and the run completes.

const TOKEN = 'runs-crash-admin-token-0123456789'

let dataDir: string
let model: ScriptedModel
let child: ChildServer | null = null
/** The script: the model's answer to each request, keyed by the user's first message. */
const answers = new Map<string, (nth: number) => ScriptedTurn>()
const calls = new Map<string, number>()

function startService(): Promise<string> {
  child = spawnService({
    dataDir,
    token: TOKEN,
    env: {
      CORDON_WORKERS: '2',
      CORDON_ENGINES: 'quickjs',
      CORDON_OPENAI_COMPATIBLE_URL: model.url,
    },
  })
  return child.ready
}

const call = serviceApi(TOKEN)

async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

/** The requests the model got for the run started with `message`. */
const requestsFor = (message: string) =>
  model.requests.filter((request) =>
    request.body?.messages?.some((m: Body) => m.role === 'user' && m.content === message),
  )

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'cordon-runs-crash-'))
  model = await startScriptedModel((request) => {
    const first = request.body.messages.find((m: Body) => m.role === 'user')?.content as string
    const nth = (calls.get(first) ?? 0) + 1
    calls.set(first, nth)
    return answers.get(first)?.(nth) ?? { text: 'unscripted' }
  })
}, 60_000)

afterAll(async () => {
  child?.killNow()
  await model?.close()
  rmSync(dataDir, { recursive: true, force: true })
})

describe('agent runs across kill -9', () => {
  it('resume from the journal without calling the model again for completed turns or running a completed tool twice', async () => {
    let base = await startService()
    const agent = await call(base, 'PUT', '/v1/agents/counter', {
      model: 'openai-compatible/scripted',
      sandbox: { extends: 'tool-runner', engines: ['quickjs'], tools: ['count'] },
      tools: [
        {
          name: 'count',
          description: 'adds one to a counter in kv, then works for a while',
          input: { type: 'object', properties: { spin: { type: 'number' } } },
          language: 'javascript',
          code: `export default async ({ spin = 0 }) => {
  const n = ((await kv.get('count')) ?? 0) + 1
  await kv.set('count', n)
  const end = Date.now() + spin
  while (Date.now() < end) {}
  return n
}`,
        },
      ],
    })
    expect(agent.status, JSON.stringify(agent.body)).toBe(200)

    // Run A: the service dies while the model is answering its second call (the first call and the
    // tool call it asked for are journaled by then).
    const releaseA: (() => void)[] = []
    answers.set('count once, A', (nth) =>
      nth === 1
        ? { text: 'Counting.', toolCalls: [{ name: 'count', input: {} }] }
        : nth === 2
          ? { text: 'never sent', hold: new Promise<void>((resolve) => releaseA.push(resolve)) }
          : { text: 'Counted: A.' },
    )
    // Run B: the service dies while its tool call runs (in the middle of the spin, after its kv write).
    answers.set('count once, B', (nth) =>
      nth === 1 ? { toolCalls: [{ name: 'count', input: { spin: 4000 } }] } : { text: 'Counted: B.' },
    )
    const runA = await call(
      base,
      'POST',
      '/v1/agents/counter/runs',
      { message: 'count once, A' },
      { prefer: 'respond-async' },
    )
    expect(runA.status).toBe(202)
    await until(() => requestsFor('count once, A').length === 2, 'run A to wait on its second model call')
    const runB = await call(
      base,
      'POST',
      '/v1/agents/counter/runs',
      { message: 'count once, B' },
      { prefer: 'respond-async' },
    )
    expect(runB.status).toBe(202)
    await until(
      async () => (await call(base, 'GET', '/v1/executions?status=running')).body.items.length === 1,
      "run B's tool call to be running",
    )
    await until(async () => {
      const check = await call(base, 'POST', '/v1/agents/counter/executions', {
        language: 'javascript',
        code: `export default await kv.get('count')`,
      })
      return check.body.result === 2
    }, "run B's tool call to have made its kv write")

    ;(child as ChildServer).killNow()
    for (const release of releaseA) release()
    const beforeRestart = { A: requestsFor('count once, A').length, B: requestsFor('count once, B').length }
    expect(beforeRestart).toEqual({ A: 2, B: 1 })

    base = await startService()
    await until(
      async () =>
        (await call(base, 'GET', `/v1/runs/${runA.body.id}`)).body.status !== 'running' &&
        (await call(base, 'GET', `/v1/runs/${runB.body.id}`)).body.status !== 'running',
      'both runs to end after the restart',
      60_000,
    )
    const a = (await call(base, 'GET', `/v1/runs/${runA.body.id}`)).body
    const b = (await call(base, 'GET', `/v1/runs/${runB.body.id}`)).body
    expect(a).toMatchObject({
      status: 'completed',
      output: 'Counted: A.',
      resumed: 1,
      usage: { steps: 2, toolCalls: 1 },
    })
    expect(b).toMatchObject({
      status: 'completed',
      output: 'Counted: B.',
      resumed: 1,
      usage: { steps: 2, toolCalls: 1 },
    })
    expect(a.steps.map((step: Body) => step.kind)).toEqual(['model', 'tool', 'model'])
    expect(b.steps.map((step: Body) => step.kind)).toEqual(['model', 'tool', 'model'])

    // Run A: after the restart the model was asked once more, for the turn that never completed, with
    // the journaled tool result in its messages; the first turn was not asked again.
    const afterA = requestsFor('count once, A').slice(beforeRestart.A)
    expect(afterA).toHaveLength(1)
    expect(afterA[0]?.body.messages.map((m: Body) => m.role)).toEqual(['user', 'assistant', 'tool'])
    // Run B: its first turn was not asked again; its tool call was resumed (its kv write answered from
    // the execution journal), not run again.
    const afterB = requestsFor('count once, B').slice(beforeRestart.B)
    expect(afterB).toHaveLength(1)
    expect(b.steps[1]).toMatchObject({ ok: true, output: { status: 'ok', result: 2 } })
    const count = await call(base, 'POST', '/v1/agents/counter/executions', {
      language: 'javascript',
      code: `export default await kv.get('count')`,
    })
    expect(count.body.result).toBe(2)
    // The audit log says what happened.
    const audit = await call(base, 'GET', '/v1/audit?kind=run.resume&limit=100')
    expect(audit.body.records.map((record: Body) => record.detail.run).sort()).toEqual(
      [runA.body.id, runB.body.id].sort(),
    )
  })
})
