import { CordonError, ErrorCode } from '@cordon/contracts'
import {
  CONVERSATION_ID,
  type Harness,
  MAX_RUN_LISTENERS,
  MAX_RUN_MESSAGE_CHARS,
  RUN_ID,
  recordEvents,
} from '@cordon/harness'
import type { Context } from 'hono'
import { Hono } from 'hono'
import { streamSSE } from 'hono/streaming'
import { z } from 'zod'
import { type Env, nameParam, readJson, requireScope } from '../http.ts'
import { validated } from '../validate.ts'
import { followEvents, lastEventId, send, wantsEventStream } from './event-stream.ts'

/** `POST /v1/agents/{name}/runs`: a message, and the conversation it continues. */
export const RunBody = z.strictObject({
  message: z.string().min(1, 'must not be empty').max(MAX_RUN_MESSAGE_CHARS),
  conversation: z.string().regex(CONVERSATION_ID, 'must be a conversation id (conv_...)').optional(),
})

/**
 * Agent runs (scope `invoke`). Starting one answers its final record (200) once it ends; with
 * `Accept: text/event-stream`, its events as they happen; with `Prefer: respond-async`, 202 and the
 * running record at once. A client going away never stops a run: it is read back by id, its events
 * reattached, and it is stopped only by `POST /v1/runs/{id}/cancel`.
 */
export function runRoutes(harness: Harness, maxBodyBytes: number): { agents: Hono<Env>; runs: Hono<Env> } {
  const agents = new Hono<Env>()
  agents.post('/:name/runs', async (c) => {
    const { tenant } = requireScope(c, 'invoke')
    const name = nameParam(c, 'name')
    const body = validated(RunBody, await readJson(c, maxBodyBytes), 'run request')
    const { promise: started, resolve } = Promise.withResolvers<string>()
    const done = harness.runs.start(tenant, name, body, (record) => resolve(record.id))
    done.catch(() => {})
    const first = await Promise.race([started.then((id) => ({ id })), done.then((record) => ({ record }))])
    const id = 'id' in first ? first.id : first.record.id
    if (wantsEventStream(c)) return runStream(c, harness, tenant, id, 0)
    if (/\brespond-async\b/i.test(c.req.header('prefer') ?? '')) {
      return c.json(harness.runs.get(tenant, id), 202, { location: `/v1/runs/${id}` })
    }
    return c.json(await done)
  })

  const runs = new Hono<Env>()
  runs.get('/:id', (c) => {
    const { tenant } = requireScope(c, 'invoke')
    return c.json(harness.runs.get(tenant, runId(c)))
  })
  runs.get('/:id/events', (c) => {
    const { tenant } = requireScope(c, 'invoke')
    return runStream(c, harness, tenant, runId(c), lastEventId(c))
  })
  runs.post('/:id/cancel', async (c) => {
    const { tenant } = requireScope(c, 'invoke')
    return c.json(await harness.runs.cancel(tenant, runId(c)))
  })
  return { agents, runs }
}

function runId(c: Context<Env>): string {
  const id = c.req.param('id') ?? ''
  if (!RUN_ID.test(id)) throw new CordonError(ErrorCode.RUN_NOT_FOUND, `no run with id "${id.slice(0, 64)}"`)
  return id
}

/**
 * A run's events after `after`: live from its log while it runs here (and on as they come, until
 * `end`), else rebuilt from its stored record. A run that is running but not in this process (it
 * waits to be resumed) has no stream yet: 409.
 */
function runStream(c: Context<Env>, harness: Harness, tenant: string, id: string, after: number): Response {
  const log = harness.runs.events(tenant, id)
  if (log === undefined) {
    const record = harness.runs.get(tenant, id)
    if (record.status === 'running') {
      throw new CordonError(
        ErrorCode.RUN_NOT_RUNNING,
        `run "${id}" is not running in this process yet; read it again shortly`,
      )
    }
    const events = recordEvents(record)
    const from = after > 0 ? events.filter((event) => event.event === 'end') : events
    return streamSSE(c, async (stream) => {
      for (const event of from) await send(stream, event)
    })
  }
  if (after >= log.lastId && log.ended) return c.body(null, 204)
  if (after > log.lastId) {
    throw new CordonError(
      ErrorCode.BAD_REQUEST,
      `Last-Event-ID ${after} is past this stream's newest event (${log.lastId})`,
    )
  }
  if (!log.ended && log.listeners >= MAX_RUN_LISTENERS) {
    throw new CordonError(
      ErrorCode.TOO_MANY_STREAMS,
      `this run has ${MAX_RUN_LISTENERS} streams attached already`,
    )
  }
  return streamSSE(c, (stream) => followEvents(c, stream, log, after))
}
