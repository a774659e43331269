import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { LanguageModelV4CallOptions, LanguageModelV4StreamPart } from '@ai-sdk/provider'
import { Supervisor } from '@cordon/executor'
import { Harness, type ModelCatalog } from '@cordon/harness'
import { loadBuiltinProfiles, SqliteStore } from '@cordon/harness/node'
import { MockLanguageModelV4, simulateReadableStream } from 'ai/test'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Body } from './helpers/server.ts'

// The run loop's journal at the points a crash can hit, through the harness with the AI SDK's test
// model: a process dies when a store write fails (the run stays `running`, as after kill -9), and a
// second Harness on the same store resumes it. Also the model's invalid tool calls, the prompt
// estimate against the token budget, and skills that stay active across a conversation.

const REPO = fileURLToPath(new URL('../', import.meta.url))

type Turn = { text?: string; calls?: { name: string; input: string }[]; cut?: boolean }

/** The scripted answer to a prompt: `script` reads the prompt and says what the model says. */
let script: (prompt: LanguageModelV4CallOptions['prompt']) => Turn = () => ({ text: 'ok' })
let modelCalls = 0

function parts(turn: Turn): LanguageModelV4StreamPart[] {
  const out: LanguageModelV4StreamPart[] = [{ type: 'stream-start', warnings: [] }]
  if (turn.text !== undefined) {
    out.push(
      { type: 'text-start', id: 't' },
      { type: 'text-delta', id: 't', delta: turn.text },
      { type: 'text-end', id: 't' },
    )
  }
  for (const [i, call] of (turn.calls ?? []).entries()) {
    out.push({ type: 'tool-call', toolCallId: `c${modelCalls}_${i}`, toolName: call.name, input: call.input })
  }
  const calls = (turn.calls ?? []).length > 0
  out.push({
    type: 'finish',
    finishReason: turn.cut
      ? { unified: 'length', raw: 'length' }
      : { unified: calls ? 'tool-calls' : 'stop', raw: calls ? 'tool_calls' : 'stop' },
    usage: {
      inputTokens: { total: 10, noCache: 10, cacheRead: 0, cacheWrite: 0 },
      outputTokens: { total: 5, text: 5, reasoning: 0 },
    },
  })
  return out
}

const mock = new MockLanguageModelV4({
  doStream: async (options) => {
    modelCalls++
    return { stream: simulateReadableStream({ chunks: parts(script(options.prompt)) }) }
  },
})
const models: ModelCatalog = { open: () => ({ ok: true, model: mock }) }

let supervisor: Supervisor
let store: SqliteStore
const builtinProfiles = loadBuiltinProfiles(join(REPO, 'sandbox-profiles'))
const harnessOn = () => new Harness({ store, supervisor, builtinProfiles, engines: ['quickjs'], models })

const COUNTER = {
  model: 'mock/model',
  sandbox: { extends: 'tool-runner', engines: ['quickjs'], tools: ['count'] },
  tools: [
    {
      name: 'count',
      description: 'adds one to a counter',
      input: { type: 'object' },
      language: 'javascript',
      code: `export default async () => { const n = ((await kv.get('n')) ?? 0) + 1; await kv.set('n', n); return n }`,
    },
  ],
  skills: [
    {
      name: 'counting-only',
      description: 'only counts',
      'allowed-tools': 'count',
      body: 'Count, nothing else.',
    },
    {
      name: 'reference',
      description: 'a long reference',
      body: 'Read refs/long.md.',
      files: [{ path: 'refs/long.md', content: 'r'.repeat(40 * 1024) }],
    },
  ],
}

async function counted(harness: Harness): Promise<unknown> {
  const record = await harness.execute('default', 'counter', {
    language: 'javascript',
    code: `export default await kv.get('n')`,
    input: null,
  })
  return record.result
}

/** Makes the store's `method` of runs throw while `when` holds: the process "dies" there. */
function failing<K extends 'update' | 'step'>(
  method: K,
  when: (...args: Parameters<SqliteStore['runs'][K]>) => boolean,
) {
  const runs = store.runs as unknown as Record<string, (...args: unknown[]) => unknown>
  const original = runs[method] as (...args: unknown[]) => unknown
  runs[method] = (...args: unknown[]) => {
    if (when(...(args as Parameters<SqliteStore['runs'][K]>))) throw new Error('simulated crash')
    return original.apply(store.runs, args)
  }
  return () => {
    runs[method] = original
  }
}

beforeAll(async () => {
  supervisor = new Supervisor({ workers: 1 })
  await supervisor.start()
  store = new SqliteStore(':memory:')
  harnessOn().putAgent('default', 'counter', JSON.stringify(COUNTER), 'json')
})
afterAll(async () => {
  await supervisor.stop()
  store.close()
})

describe('a run resumed from each point a crash can hit', () => {
  it('after its final answer was journaled: completes with it, without calling the model again', async () => {
    script = () => ({ text: 'the final answer' })
    const restore = failing('update', () => true)
    await expect(
      harnessOn().runs.start('default', 'counter', { message: 'answer once' }, remember('answer once')),
    ).rejects.toThrow()
    restore()
    const before = modelCalls
    const resumed = harnessOn()
    // Completed from its journal at once: nothing is left to resume or to give up.
    const { resumed: count, abandoned, idle } = resumed.runs.resumeInterrupted()
    expect([count, abandoned]).toEqual([0, 0])
    await idle
    expect(store.runs.interrupted()).toEqual([])
    expect(modelCalls).toBe(before)
    const record = lastRun(resumed, 'answer once')
    expect(record).toMatchObject({
      status: 'completed',
      output: 'the final answer',
      usage: { steps: 1 },
    })
  })

  it('with a tool call open and the agent changed since: given up, its call answered, its conversation still usable', async () => {
    script = (prompt) =>
      prompt.some((m) => m.role === 'tool')
        ? { text: 'carried on' }
        : { calls: [{ name: 'count', input: '{}' }] }
    // The tool runs; the process dies before its step is journaled.
    const restore = failing('step', (_tenant, _run, step) => step.kind === 'tool')
    const first = harnessOn()
    await expect(
      first.runs.start('default', 'counter', { message: 'count, then crash' }, remember('count, then crash')),
    ).rejects.toThrow()
    restore()
    const countAfterCrash = await counted(first)
    const second = harnessOn()
    second.putAgent('default', 'counter', JSON.stringify({ ...COUNTER, description: 'changed' }), 'json')
    const { abandoned, idle } = second.runs.resumeInterrupted()
    expect(abandoned).toBe(1)
    await idle
    const crashed = lastRun(second, 'count, then crash')
    expect(crashed).toMatchObject({ status: 'failed', error: { code: 'INTERRUPTED' } })
    expect(crashed.error?.message).toContain('changed')
    expect(crashed.steps.at(-1)).toMatchObject({
      kind: 'tool',
      decision: { code: 'RUN_STOPPED' },
      output: { error: expect.stringContaining('it may have run') },
    })
    // The tool did not run a second time; the conversation takes its next turn.
    expect(await counted(second)).toBe(countAfterCrash)
    const next = await second.runs.start('default', 'counter', {
      message: 'and now?',
      conversation: crashed.conversation,
    })
    expect(next).toMatchObject({ status: 'completed', output: 'carried on' })
  })
})

describe('the model’s tool calls', () => {
  it('answers invalid calls (an unknown tool, arguments that do not parse) once each, and runs none of them', async () => {
    const harness = harnessOn()
    const before = await counted(harness)
    let seen: LanguageModelV4CallOptions['prompt'] = []
    script = (prompt) => {
      if (!prompt.some((m) => m.role === 'tool')) {
        return {
          calls: [
            { name: 'nope', input: '{}' },
            { name: 'count', input: '{"broken' },
          ],
        }
      }
      seen = prompt
      return { text: 'understood' }
    }
    const run = await harness.runs.start('default', 'counter', { message: 'call badly' })
    expect(run.status).toBe('completed')
    const tools = run.steps.filter((step) => step.kind === 'tool')
    expect(tools.map((step) => (step.kind === 'tool' ? step.decision.code : ''))).toEqual([
      'INVALID_TOOL_CALL',
      'INVALID_TOOL_CALL',
    ])
    expect(await counted(harness)).toBe(before)
    const results = seen
      .filter((m) => m.role === 'tool')
      .flatMap((m) => m.content)
      .map((part) => (part as Body).toolCallId)
    expect(results).toHaveLength(2)
    expect(new Set(results).size).toBe(2)
  })

  it('keeps a skill’s allowed-tools in force for the rest of the conversation', async () => {
    const harness = harnessOn()
    let turns = 0
    script = (prompt) =>
      turns++ === 0 && prompt.every((m) => m.role !== 'tool')
        ? { calls: [{ name: 'activate_skill', input: '{"name":"counting-only"}' }] }
        : { text: 'activated' }
    const first = await harness.runs.start('default', 'counter', { message: 'use the skill' })
    expect(first.skills).toEqual(['counting-only'])
    turns = 0
    script = () =>
      turns++ === 0
        ? { calls: [{ name: 'execute_code', input: '{"language":"javascript","code":"export default 1"}' }] }
        : { text: 'refused' }
    const second = await harness.runs.start('default', 'counter', {
      message: 'run code',
      conversation: first.conversation,
    })
    expect(second.steps[1]).toMatchObject({
      kind: 'tool',
      decision: { effect: 'deny', code: 'SKILL_TOOL_NOT_ALLOWED' },
    })
  })
})

describe('the token budget', () => {
  it('stops before a model call whose prompt alone would pass it', async () => {
    const harness = harnessOn()
    harness.putAgent('default', 'thrifty', JSON.stringify({ ...COUNTER, budget: { tokens: 1000 } }), 'json')
    const before = modelCalls
    const run = await harness.runs.start('default', 'thrifty', { message: 'x'.repeat(8000) })
    expect(run).toMatchObject({
      status: 'budget_exceeded',
      error: { code: 'TOKEN_BUDGET' },
      usage: { steps: 0 },
    })
    expect(modelCalls).toBe(before)
  })
})

/** Ids of the runs started, by their message (a run whose start failed has one too). */
const runIds = new Map<string, string>()
const remember = (message: string) => (record: { id: string }) => runIds.set(message, record.id)

function lastRun(harness: Harness, message: string) {
  const id = runIds.get(message)
  if (id === undefined) throw new Error(`no run for "${message}"`)
  return harness.runs.get('default', id)
}

describe('what the second review found', () => {
  it('keeps step numbers whole when a step write and the failure record both fail, so the resumed run loses no step', async () => {
    script = (prompt) =>
      prompt.some((m) => m.role === 'tool')
        ? { text: 'after the gap' }
        : { calls: [{ name: 'count', input: '{}' }] }
    let failStep = true
    const restoreStep = failing('step', (_tenant, _run, step) => {
      const fail = failStep && step.kind === 'tool' && step.decision.effect === 'allow'
      if (fail) failStep = false
      return fail
    })
    const restoreUpdate = failing('update', (_tenant, record) => record.status === 'failed')
    await expect(
      harnessOn().runs.start('default', 'counter', { message: 'gap' }, remember('gap')),
    ).rejects.toThrow()
    restoreStep()
    restoreUpdate()
    const second = harnessOn()
    await second.runs.resumeInterrupted().idle
    const run = lastRun(second, 'gap')
    expect(run).toMatchObject({ status: 'completed', output: 'after the gap' })
    expect(run.steps.map((step) => step.seq)).toEqual(run.steps.map((_, i) => i))
    expect(run.steps.map((step) => step.kind)).toEqual(['model', 'tool', 'model'])
  })

  it('hands a skill file of 40 KiB to the model whole', async () => {
    let turns = 0
    script = () =>
      turns++ === 0
        ? { calls: [{ name: 'activate_skill', input: '{"name":"reference","file":"refs/long.md"}' }] }
        : { text: 'read it' }
    const run = await harnessOn().runs.start('default', 'counter', { message: 'read the reference' })
    const read = run.steps.find((step) => step.kind === 'tool')
    expect(read?.kind === 'tool' && (read.output as { content?: string }).content?.length).toBe(40 * 1024)
  })

  it('says so when the final answer was cut at the output cap, and keeps what there is', async () => {
    script = () => ({ text: 'the beginning of a long', cut: true })
    const run = await harnessOn().runs.start('default', 'counter', { message: 'write a lot' })
    expect(run).toMatchObject({
      status: 'budget_exceeded',
      error: { code: 'TOKEN_BUDGET', message: expect.stringContaining('cut at') },
      output: 'the beginning of a long',
    })
  })

  it('keeps a completed run completed when a write after its record (its audit) fails', async () => {
    script = () => ({ text: 'done' })
    const audit = store.audit as unknown as { append: (...args: unknown[]) => void }
    const original = audit.append
    audit.append = (...args: unknown[]) => {
      if ((args[1] as { kind?: string }).kind === 'run.end') throw new Error('simulated audit failure')
      return original.apply(store.audit, args)
    }
    try {
      const harness = harnessOn()
      const message = 'finish despite audit'
      const run = await harness.runs.start('default', 'counter', { message }, remember(message))
      expect(run).toMatchObject({ status: 'completed', output: 'done' })
      expect(lastRun(harness, message)).toMatchObject({ status: 'completed', output: 'done' })
    } finally {
      audit.append = original
    }
  })

  it('starts and resumes nothing once the service is stopping', async () => {
    const harness = harnessOn()
    await harness.runs.stopAll(0)
    await expect(harness.runs.start('default', 'counter', { message: 'too late' })).rejects.toMatchObject({
      code: 'SHUTTING_DOWN',
    })
    expect(harness.runs.resumeInterrupted().resumed).toBe(0)
  })
})
