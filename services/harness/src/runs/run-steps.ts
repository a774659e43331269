import {
  type ExecutionRecord,
  type JsonValue,
  RunErrorCode,
  type RunRecord,
  type RunStep,
  type RunToolCall,
  type RunToolDecision,
} from '@cordon/contracts'
import type { AgentDeclaration } from '@cordon/policy'
import type { ModelMessage } from 'ai'

// The pure parts of a run's steps: numbering, what stopped calls are answered, usage, outputs and
// estimates (see `AgentRuns`, which journals and drives them).

/** Largest `activate_skill` answer (a skill's body is at most 64 KiB, plus its file list). */
export const MAX_SKILL_OUTPUT_CHARS = 96 * 1024
/** Largest tool output (JSON characters) handed back to the model. */
export const MAX_TOOL_OUTPUT_CHARS = 16 * 1024

export function userMessage(text: string): ModelMessage {
  return { role: 'user', content: text }
}

/** The tool calls of the last model step that have no tool step yet. */
export function unanswered(steps: readonly RunStep[]): RunToolCall[] {
  const lastModel = steps.findLast((step) => step.kind === 'model')
  if (lastModel === undefined || lastModel.kind !== 'model') return []
  const answered = new Set(
    steps
      .filter((step) => step.kind === 'tool' && step.seq > lastModel.seq)
      .map((step) => (step.kind === 'tool' ? step.call.id : '')),
  )
  return lastModel.toolCalls.filter((call) => !answered.has(call.id))
}

export function toDecision(
  decision:
    | { effect: 'allow'; rule: string }
    | { effect: 'deny'; code: string; rule: string; message: string },
): RunToolDecision {
  return decision.effect === 'allow'
    ? { effect: 'allow', code: 'ALLOWED', rule: decision.rule }
    : { effect: 'deny', code: decision.code, rule: decision.rule, reason: decision.message }
}

/** What the model is told of an execution: its status, result, output and error. */
export function executionOutput(record: ExecutionRecord): {
  ok: boolean
  execution: string
  output: JsonValue
} {
  const output: { [key: string]: JsonValue } = { status: record.status, result: record.result ?? null }
  if (record.stdout.length > 0) output.stdout = record.stdout.slice(0, 4096)
  if (record.stderr.length > 0) output.stderr = record.stderr.slice(0, 4096)
  if (record.error !== null && record.error !== undefined)
    output.error = { code: record.error.code, message: record.error.message }
  return { ok: record.status === 'ok', execution: record.id, output }
}

/** A tool output cut to what the model is handed (its JSON text at most `max` characters). */
export function boundedOutput(output: JsonValue, max: number): JsonValue {
  const text = JSON.stringify(output)
  if (text.length <= max) return output
  return { truncated: true, text: text.slice(0, max) }
}

/** What running (or not running) one tool call came to. */
export interface CallOutcome {
  ok: boolean
  execution: string | null
  output: JsonValue
  /** The skill it activated. */
  activated?: string
  /** Most characters of output handed to the model (default MAX_TOOL_OUTPUT_CHARS). */
  bound?: number
}

/** The skills activated in these steps, in order. */
export function activatedIn(steps: readonly RunStep[]): string[] {
  const names: string[] = []
  for (const step of steps) {
    if (step.kind === 'tool' && step.activated !== undefined && !names.includes(step.activated)) {
      names.push(step.activated)
    }
  }
  return names
}

/** What a call the run stopped before is answered: it never began, or it may have begun before a crash. */
export const NOT_RUN = 'not run: the run stopped first'
export const MAY_HAVE_RUN = 'interrupted: the service restarted while this call was open; it may have run'

/** A run's usage as its journaled steps add it up (the wall time as stored). */
export function usageOf(stored: RunRecord['usage'], steps: readonly RunStep[]): RunRecord['usage'] {
  const models = steps.flatMap((step) => (step.kind === 'model' ? [step] : []))
  return {
    ...stored,
    steps: models.length,
    toolCalls: steps.length - models.length,
    inputTokens: models.reduce((sum, step) => sum + step.usage.inputTokens, 0),
    outputTokens: models.reduce((sum, step) => sum + step.usage.outputTokens, 0),
  }
}

/** The error of a run whose final answer the provider cut at `cap` output tokens. */
export function cutAnswer(cap: number): NonNullable<RunRecord['error']> {
  return {
    code: RunErrorCode.TOKEN_BUDGET,
    message: `the model's answer was cut at ${cap} output tokens (budget.maxOutputTokens, or what the run's tokens left)`,
  }
}

/** How long text deltas gather before they go out as one event (fewer events, same text). */
const TEXT_BATCH_MS = 50

/** Gathers a model call's text deltas into events at most every TEXT_BATCH_MS; `flush` sends the rest. */
export function batchedText(send: (delta: string) => void): {
  add: (delta: string) => void
  flush: () => void
} {
  let pending = ''
  let timer: ReturnType<typeof setTimeout> | undefined
  const flush = () => {
    clearTimeout(timer)
    timer = undefined
    if (pending.length > 0) send(pending)
    pending = ''
  }
  return {
    add: (delta) => {
      pending += delta
      timer ??= setTimeout(flush, TEXT_BATCH_MS)
    },
    flush,
  }
}

/** The seq of a run's next step: one past its last journaled one (no gaps, so idempotency keys hold). */
export function nextSeq(steps: readonly RunStep[]): number {
  return (steps.at(-1)?.seq ?? -1) + 1
}

/** Tool steps answering the open calls of the last model step `RUN_STOPPED`, numbered on from the last. */
export function stoppedCalls(
  steps: readonly RunStep[],
  why: string,
): { step: RunStep; messages: ModelMessage[] }[] {
  const first = nextSeq(steps)
  return unanswered(steps).map((call, index) => {
    const step: RunStep = {
      seq: first + index,
      kind: 'tool',
      call: { id: call.id, name: call.name },
      decision: { effect: 'deny', code: 'RUN_STOPPED', rule: null, reason: why },
      execution: null,
      ok: false,
      output: { error: why },
    }
    const messages: ModelMessage[] = [
      {
        role: 'tool',
        content: [
          {
            type: 'tool-result',
            toolCallId: call.id,
            toolName: call.name,
            output: { type: 'json', value: step.output },
          },
        ],
      },
    ]
    return { step, messages }
  })
}

/**
 * About how many tokens a prompt holds (4 characters a token, the usual rule of thumb for English
 * and JSON), to stop before a call whose prompt alone would take the run past its token budget.
 */
export function estimateTokens(
  system: string,
  messages: readonly ModelMessage[],
  agent: AgentDeclaration,
): number {
  const tools = JSON.stringify((agent.tools ?? []).map((tool) => [tool.name, tool.description, tool.input]))
  return Math.ceil((system.length + JSON.stringify(messages).length + tools.length) / 4)
}
