import type { RunRecord } from '@cordon/contracts'
import { LiveLog } from '../live-log.ts'

/**
 * What a run's event stream carries, in order: `started`; for each model call its `text` deltas and
 * then `step` (its usage); each tool call the model made with the policy's decision (`tool_call`) and
 * its outcome (`tool_result`); `message` with the final text; and `end` with the run's record. Each
 * event has the next `id` of its run, for `Last-Event-ID`; a run resumed after a restart streams
 * again from ids 1 000 000 × the attempt.
 */
export type RunEvent =
  | {
      id: number
      event: 'started'
      data: { id: string; agent: string; conversation: string; resumed?: number }
    }
  | { id: number; event: 'text'; data: { step: number; delta: string } }
  | {
      id: number
      event: 'step'
      data: { step: number; usage: { inputTokens: number; outputTokens: number } }
    }
  | {
      id: number
      event: 'tool_call'
      data: { step: number; id: string; name: string; input: unknown; decision: unknown }
    }
  | {
      id: number
      event: 'tool_result'
      data: { step: number; id: string; name: string; ok: boolean; output: unknown }
    }
  | { id: number; event: 'message'; data: { text: string } }
  | { id: number; event: 'end'; data: RunRecord }

export type RunEventInput = RunEvent extends infer E
  ? E extends { id: number }
    ? Omit<E, 'id'>
    : never
  : never

/** Clients one run's stream may have at once. */
export const MAX_RUN_LISTENERS = 16
/**
 * Events kept per run (text goes out in batches of 50 ms, so a run needs over 8 minutes of streaming
 * to reach it). Past it, a text delta is joined into the last kept event and sent live under that
 * event's id: a client reattaching with that id misses what was joined after it.
 */
const MAX_EVENTS = 10_000

/** One run's events, kept while it runs and a while after its end, for clients to (re)attach. */
export class RunEventLog extends LiveLog<RunEvent> {
  push(input: RunEventInput): void {
    if (this.ended) return
    const last = this.events.at(-1)
    if (input.event === 'text' && last?.event === 'text' && this.events.length >= MAX_EVENTS) {
      last.data = { step: last.data.step, delta: last.data.delta + input.data.delta }
      const live: RunEvent = { id: last.id, event: 'text', data: input.data }
      for (const listener of this.subscribers) listener(live)
      return
    }
    this.append({ ...input, id: 0 } as RunEvent)
  }
}

/** The events of an ended run whose log is gone, rebuilt from its record. */
export function recordEvents(record: RunRecord): RunEvent[] {
  const events: RunEventInput[] = [
    { event: 'started', data: { id: record.id, agent: record.agent, conversation: record.conversation } },
  ]
  const inputs = new Map<string, unknown>()
  for (const step of record.steps) {
    if (step.kind === 'model') {
      if (step.text.length > 0) events.push({ event: 'text', data: { step: step.seq, delta: step.text } })
      events.push({ event: 'step', data: { step: step.seq, usage: step.usage } })
      for (const call of step.toolCalls) inputs.set(call.id, call.input)
    } else {
      const { id, name } = step.call
      const input = inputs.get(id) ?? null
      events.push({ event: 'tool_call', data: { step: step.seq, id, name, input, decision: step.decision } })
      events.push({
        event: 'tool_result',
        data: { step: step.seq, id, name, ok: step.ok, output: step.output },
      })
    }
  }
  if (record.output !== null) events.push({ event: 'message', data: { text: record.output } })
  events.push({ event: 'end', data: record })
  return events.map((event, index) => ({ ...event, id: index + 1 }) as RunEvent)
}
