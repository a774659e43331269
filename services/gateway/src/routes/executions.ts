import { CordonError, ErrorCode } from '@cordon/contracts'
import type { Harness } from '@cordon/harness'
import { Hono } from 'hono'
import { type Env, requireScope } from '../http.ts'
import { eventStream, lastEventId } from './event-stream.ts'

export function executionRoutes(harness: Harness): Hono<Env> {
  const app = new Hono<Env>()
  // The executions running (or queued) now; finished ones are read by id or found in the audit log.
  app.get('/', (c) => {
    const { tenant } = requireScope(c, 'invoke')
    if (c.req.query('status') !== 'running') {
      throw new CordonError(ErrorCode.BAD_REQUEST, 'list executions with status=running')
    }
    const agent = c.req.query('agent')
    if (agent !== undefined && agent.length > 63)
      throw new CordonError(ErrorCode.BAD_REQUEST, 'agent is too long')
    return c.json({ items: harness.runningExecutions(tenant, { agent, limit: 1000 }) })
  })
  // Its event stream: reattach after a disconnect (Last-Event-ID), or follow it from the start.
  app.get('/:id/events', (c) => {
    const { tenant } = requireScope(c, 'invoke')
    const after = lastEventId(c)
    return eventStream(c, harness.executionEvents(tenant, c.req.param('id')), after)
  })
  app.get('/:id', (c) => {
    const { tenant } = requireScope(c, 'invoke')
    return c.json(harness.getExecution(tenant, c.req.param('id')))
  })
  // Cancels an execution that runs (or waits in the queue); answers its final record.
  app.post('/:id/cancel', async (c) => {
    const { tenant } = requireScope(c, 'invoke')
    return c.json(await harness.cancelExecution(tenant, c.req.param('id')))
  })
  return app
}
