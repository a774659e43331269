// `npm run bench:runs` (and the last part of `npm run bench`): what the run loop costs around the
// model. The model is the AI SDK's own test model (MockLanguageModelV4, answering at once), so that
// the figures are Cordon's, not a provider's. Two ways of driving the same four-call conversation
// (three tool calls of `activate_skill`, which runs no guest code, then a final answer), measured in
// the same process and alternating round by round:
//   - baseline: a bare loop over the AI SDK's `streamText` (the calls, their tool results appended
//     by hand, nothing stored);
//   - Cordon: `harness.runs.start`, which decides every call against the policy, journals every
//     model and tool step to SQLite on disk (synchronous = FULL: each step is on disk before the next
//     one), audits, and keeps the run's event log.
// Each figure is the median over BENCH_RUNS_ROUNDS rounds (default 7) of the mean of 20 runs.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { LanguageModelV4StreamPart } from '@ai-sdk/provider'
import { Supervisor } from '@cordon/executor'
import { Harness, type ModelCatalog } from '@cordon/harness'
import { SqliteStore } from '@cordon/harness/node'
import { jsonSchema, type ModelMessage, streamText } from 'ai'
import { MockLanguageModelV4, simulateReadableStream } from 'ai/test'

const ROUNDS = Number(process.env.BENCH_RUNS_ROUNDS ?? 7)
const RUNS = 20
const TOOL_CALLS = 3
const TENANT = 'bench'

let call = 0
function turn(prompt: readonly { role: string }[]): LanguageModelV4StreamPart[] {
  const tools = prompt.filter((message) => message.role === 'tool').length
  const usage = {
    inputTokens: { total: 100, noCache: 100, cacheRead: 0, cacheWrite: 0 },
    outputTokens: { total: 10, text: 10, reasoning: 0 },
  }
  if (tools < TOOL_CALLS) {
    return [
      { type: 'stream-start', warnings: [] },
      { type: 'tool-call', toolCallId: `c${call++}`, toolName: 'activate_skill', input: '{"name":"notes"}' },
      { type: 'finish', finishReason: { unified: 'tool-calls', raw: 'tool_calls' }, usage },
    ]
  }
  return [
    { type: 'stream-start', warnings: [] },
    { type: 'text-start', id: 't' },
    { type: 'text-delta', id: 't', delta: 'done' },
    { type: 'text-end', id: 't' },
    { type: 'finish', finishReason: { unified: 'stop', raw: 'stop' }, usage },
  ]
}

const model = new MockLanguageModelV4({
  doStream: async (options) => ({ stream: simulateReadableStream({ chunks: turn(options.prompt) }) }),
})
const models: ModelCatalog = { open: () => ({ ok: true, model }) }

const dir = mkdtempSync(join(tmpdir(), 'cordon-bench-runs-'))
const supervisor = new Supervisor({ workers: 1 })
await supervisor.start()
const store = new SqliteStore(join(dir, 'runs.sqlite'))
const harness = new Harness({ store, supervisor, builtinProfiles: new Map(), engines: ['quickjs'], models })
harness.putProfile(
  TENANT,
  'bench',
  JSON.stringify({
    engines: ['quickjs'],
    languages: ['javascript'],
    limits: { cpuMs: 1000, wallMs: 5000, memoryMb: 64, outputBytes: 65536, bindingCalls: 0 },
  }),
  'json',
)
harness.putAgent(
  TENANT,
  'bench',
  JSON.stringify({
    sandbox: 'bench',
    model: 'mock/model',
    instructions: 'You take notes.',
    skills: [{ name: 'notes', description: 'Takes notes.', body: 'Write short notes.' }],
  }),
  'json',
)

/** The same conversation through a bare AI SDK loop: no policy, journal, audit or events. */
async function bare(): Promise<void> {
  const messages: ModelMessage[] = [{ role: 'user', content: 'take a note' }]
  const tools = {
    activate_skill: { description: 'load a skill', inputSchema: jsonSchema({ type: 'object' }) },
  }
  for (;;) {
    const result = streamText({ model, system: 'You take notes.', messages, tools, maxRetries: 0 })
    for await (const _ of result.fullStream) {
      // drained
    }
    const response = await result.response
    messages.push(...response.messages.filter((message) => message.role === 'assistant'))
    const calls = await result.toolCalls
    if (calls.length === 0) return
    for (const toolCall of calls) {
      messages.push({
        role: 'tool',
        content: [
          {
            type: 'tool-result',
            toolCallId: toolCall.toolCallId,
            toolName: toolCall.toolName,
            output: { type: 'json', value: { instructions: 'Write short notes.' } },
          },
        ],
      })
    }
  }
}

async function cordon(): Promise<void> {
  const record = await harness.runs.start(TENANT, 'bench', { message: 'take a note' })
  if (record.status !== 'completed' || record.usage.steps !== TOOL_CALLS + 1) {
    throw new Error(`bench run did not complete as scripted: ${JSON.stringify(record.error)}`)
  }
}

/** The mean wall time (ms) of one run over RUNS sequential runs. */
async function perRun(run: () => Promise<void>): Promise<number> {
  const start = performance.now()
  for (let i = 0; i < RUNS; i++) await run()
  return (performance.now() - start) / RUNS
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

try {
  // Warm both paths (module loading, the statement cache) before measuring.
  await perRun(bare)
  await perRun(cordon)
  const bareMs: number[] = []
  const cordonMs: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    bareMs.push(await perRun(bare))
    cordonMs.push(await perRun(cordon))
  }
  const baseline = median(bareMs)
  const measured = median(cordonMs)
  const steps = 2 * TOOL_CALLS + 1
  console.log(
    `run loop, ${TOOL_CALLS + 1} model calls and ${TOOL_CALLS} tool calls per run (${ROUNDS} rounds of ${RUNS} runs):`,
  )
  console.log(`  bare AI SDK loop (baseline)   ${baseline.toFixed(2)} ms per run`)
  console.log(
    `  Cordon run (policy, journal)  ${measured.toFixed(2)} ms per run   ${(measured / baseline).toFixed(2)}x baseline`,
  )
  console.log(
    `  Cordon's own cost per journaled step: ${((measured - baseline) / steps).toFixed(2)} ms (${steps} steps)`,
  )
} finally {
  await supervisor.stop()
  store.close()
  rmSync(dir, { recursive: true, force: true })
}
