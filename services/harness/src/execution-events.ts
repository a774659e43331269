import type { ExecutionRecord } from '@cordon/contracts'
import { LiveLog } from './live-log.ts'

export { RESUMED_ID_BASE } from './live-log.ts'

/**
 * What an execution's event stream carries, in order: `started` once it is recorded, `stdout` and
 * `stderr` chunks as the guest writes them (secret values redacted; together they add up to the
 * final record's stdout and stderr), and `end` with the final record. Each has the next `id` of its
 * execution (1, 2, ...), for `Last-Event-ID`. An execution resumed after a crash streams again from
 * its start: a `started` that says `resumed` (the attempt), with ids from 1 000 000 × the attempt,
 * so that a client's Last-Event-ID from before the crash asks for all of it.
 */
export type ExecutionEvent =
  | {
      id: number
      event: 'started'
      data: Pick<ExecutionRecord, 'id' | 'agent' | 'engine' | 'language' | 'createdAt'> & { resumed?: number }
    }
  | { id: number; event: 'stdout' | 'stderr'; data: { text: string } }
  | { id: number; event: 'end'; data: ExecutionRecord }

/** Listeners one execution's stream may have at once (clients reattached to it). */
export const MAX_LISTENERS = 16

/** One execution's events, kept while it runs and for a while after, for clients to (re)attach. */
export class EventLog extends LiveLog<ExecutionEvent> {
  /** Characters of output held. */
  bytes = 0

  /** 0 for a first run, n for its n-th resumption after a crash. */
  readonly attempt: number

  constructor(attempt = 0) {
    super(attempt)
    this.attempt = attempt
  }

  started(record: ExecutionRecord): void {
    const { id, agent, engine, language, createdAt } = record
    const resumed = this.attempt > 0 ? { resumed: this.attempt } : {}
    this.append({ id: 0, event: 'started', data: { id, agent, engine, language, createdAt, ...resumed } })
  }

  chunk(stream: 'stdout' | 'stderr', text: string): void {
    if (text.length === 0 || this.ended) return
    this.bytes += text.length
    // Consecutive pieces of one stream that nobody has been sent yet go out as one event.
    const last = this.events.at(-1)
    if (this.subscribers.size === 0 && last?.event === stream && !this.watched) {
      last.data = { text: last.data.text + text }
      return
    }
    this.append({ id: 0, event: stream, data: { text } })
  }

  end(record: ExecutionRecord): void {
    if (!this.ended) this.append({ id: 0, event: 'end', data: record })
    this.subscribers.clear()
  }
}

/** How long, how many, and how much output of ended streams that a client watched is kept for reattaching. */
const KEEP_ENDED_MS = 5 * 60_000
const KEEP_ENDED = 256
const KEEP_ENDED_BYTES = 64 * 1024 * 1024

/**
 * The event logs of executions running in this process (and of watched ones that ended not long
 * ago), by tenant and id. A stream no longer here is answered from the stored record (see
 * `Harness.events`).
 */
export class ExecutionStreams {
  readonly #logs = new Map<string, EventLog>()
  /** Ended, watched logs in the order they ended, with when and their size. */
  readonly #ended: { key: string; at: number; bytes: number }[] = []
  #endedBytes = 0

  open(tenant: string, record: ExecutionRecord, attempt = 0): EventLog {
    const log = new EventLog(attempt)
    log.started(record)
    this.#logs.set(`${tenant}\u0000${record.id}`, log)
    return log
  }

  get(tenant: string, id: string): EventLog | undefined {
    this.#expire()
    return this.#logs.get(`${tenant}\u0000${id}`)
  }

  /** Ends an execution's stream; a watched one is kept a while for clients that reattach. */
  end(tenant: string, record: ExecutionRecord): void {
    const key = `${tenant}\u0000${record.id}`
    const log = this.#logs.get(key)
    if (log === undefined) return
    log.end(record)
    if (!log.watched) {
      this.#logs.delete(key)
      return
    }
    // Its output counts twice: in its chunks and in the record of its end.
    this.#ended.push({ key, at: Date.now(), bytes: 2 * log.bytes })
    this.#endedBytes += 2 * log.bytes
    this.#expire()
  }

  #expire(): void {
    const now = Date.now()
    for (let oldest = this.#ended[0]; oldest !== undefined; oldest = this.#ended[0]) {
      const keep =
        this.#ended.length <= KEEP_ENDED &&
        this.#endedBytes <= KEEP_ENDED_BYTES &&
        now - oldest.at < KEEP_ENDED_MS
      if (keep) break
      this.#ended.shift()
      this.#endedBytes -= oldest.bytes
      if (this.#logs.get(oldest.key)?.ended === true) this.#logs.delete(oldest.key)
    }
  }
}
