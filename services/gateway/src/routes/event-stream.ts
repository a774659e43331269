import { CordonError, ErrorCode, type ExecutionRecord } from '@cordon/contracts'
import { type EventLog, type ExecutionEvent, type Harness, MAX_LISTENERS } from '@cordon/harness'
import type { Context } from 'hono'
import { type SSEStreamingApi, streamSSE } from 'hono/streaming'
import type { Env } from '../http.ts'

/** How often an idle stream sends a comment, so that proxies and clients know it is alive. */
const HEARTBEAT_MS = 15_000

/** Whether the client asked for an event stream (`Accept: text/event-stream`). */
export function wantsEventStream(c: Context<Env>): boolean {
  return (c.req.header('accept') ?? '').toLowerCase().includes('text/event-stream')
}

/**
 * Answers an execution request with its event stream: `begin` starts it (and reports its id once it
 * runs). A request refused before it runs (403, 404, 422, 429...) is an ordinary JSON error; after
 * that, everything is on the stream, ending with the final record. The client going away detaches it
 * and nothing else: the execution runs on (reattach with `GET /v1/executions/{id}/events`).
 */
export async function streamExecution(
  c: Context<Env>,
  harness: Harness,
  tenant: string,
  begin: (onStart: (id: string) => void) => Promise<ExecutionRecord>,
): Promise<Response> {
  const { promise: started, resolve } = Promise.withResolvers<string>()
  const done = begin(resolve)
  done.catch(() => {})
  const first = await Promise.race([started.then((id) => ({ id })), done.then((record) => ({ record }))])
  const source = 'id' in first ? harness.executionEvents(tenant, first.id) : { record: first.record }
  return eventStream(c, source, 0)
}

/** The `Last-Event-ID` a reattaching client sends: the last event it has, or 0 (from the start). */
export function lastEventId(c: Context<Env>): number {
  const header = c.req.header('last-event-id')
  if (header === undefined || header.trim() === '') return 0
  if (!/^\d{1,9}$/.test(header.trim())) {
    throw new CordonError(ErrorCode.BAD_REQUEST, 'Last-Event-ID must be the id of an event (a whole number)')
  }
  return Number(header.trim())
}

/**
 * Sends the events after `after`: live from the execution's log (and on as they come, until the
 * end event), or, when the log is gone, from its stored record: the whole of it for a client that
 * has nothing yet, only the end event for one that has some (the record holds all of the output).
 */
export function eventStream(
  c: Context<Env>,
  source: { log: EventLog } | { record: ExecutionRecord },
  after: number,
): Response {
  if ('log' in source && after >= source.log.lastId && source.log.ended) {
    // A client that has the whole of an ended stream (EventSource reconnects by itself): 204 stops it.
    return c.body(null, 204)
  }
  if ('log' in source && after > source.log.lastId) {
    throw new CordonError(
      ErrorCode.BAD_REQUEST,
      `Last-Event-ID ${after} is past this stream's newest event (${source.log.lastId})`,
    )
  }
  if ('log' in source && !source.log.ended && source.log.listeners >= MAX_LISTENERS) {
    throw new CordonError(
      ErrorCode.TOO_MANY_STREAMS,
      `this execution has ${MAX_LISTENERS} streams attached already; close one first`,
    )
  }
  if ('record' in source && source.record.status === ('running' as ExecutionRecord['status'])) {
    // Running, but not as an execution of this process's (a session's command): only its end is known.
    throw new CordonError(
      ErrorCode.EXECUTION_NOT_RUNNING,
      `execution "${source.record.id}" has no event stream here; read its record once it has ended`,
    )
  }
  return streamSSE(c, async (stream) => {
    if ('record' in source) {
      for (const event of recordEvents(source.record, after)) await send(stream, event)
      return
    }
    await followEvents(c, stream, source.log, after)
  })
}

/** An event as a stream sends it: its id, its name, and its data (JSON). */
interface StreamEvent {
  id: number
  event: string
  data: unknown
}

/**
 * Sends the events of `log` after `after`, then each new one as it comes, until its `end` event, the
 * client going away, or the stream closing; an idle stream gets a `: keep-alive` comment every 15 s.
 */
export async function followEvents<E extends StreamEvent>(
  c: Context<Env>,
  stream: SSEStreamingApi,
  log: { attach(after: number, listener: (event: E) => void): () => void },
  after: number,
): Promise<void> {
  const queue: E[] = []
  let wake: (() => void) | null = null
  const detach = log.attach(after, (event) => {
    queue.push(event)
    wake?.()
  })
  const gone = () => {
    detach()
    wake?.()
  }
  stream.onAbort(gone)
  c.req.raw.signal.addEventListener('abort', gone, { once: true })
  try {
    for (let ended = false; !ended && !stream.aborted && !c.req.raw.signal.aborted; ) {
      for (let event = queue.shift(); event !== undefined; event = queue.shift()) {
        await send(stream, event)
        if (event.event === 'end') ended = true
      }
      if (ended) break
      const timer = { id: undefined as NodeJS.Timeout | undefined, beat: false }
      await new Promise<void>((resolve) => {
        wake = resolve
        timer.id = setTimeout(() => {
          timer.beat = true
          resolve()
        }, HEARTBEAT_MS)
      })
      clearTimeout(timer.id)
      wake = null
      if (timer.beat && queue.length === 0) await stream.write(': keep-alive\n\n')
    }
  } finally {
    detach()
  }
}

/** Writes one event: its id (for Last-Event-ID), name and JSON data. */
export function send(stream: SSEStreamingApi, event: StreamEvent): Promise<void> {
  return stream.writeSSE({ id: String(event.id), event: event.event, data: JSON.stringify(event.data) })
}

/** The events of an ended execution whose log is gone, rebuilt from its record. */
function recordEvents(record: ExecutionRecord, after: number): ExecutionEvent[] {
  if (after > 0) return [{ id: after + 1, event: 'end', data: record }]
  const { id, agent, engine, language, createdAt } = record
  const events: ExecutionEvent[] = [
    { id: 1, event: 'started', data: { id, agent, engine, language, createdAt } },
  ]
  if (record.stdout.length > 0) events.push({ id: 0, event: 'stdout', data: { text: record.stdout } })
  if (record.stderr.length > 0) events.push({ id: 0, event: 'stderr', data: { text: record.stderr } })
  events.push({ id: 0, event: 'end', data: record })
  return events.map((event, index) => ({ ...event, id: index + 1 }) as ExecutionEvent)
}
