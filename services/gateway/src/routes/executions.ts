import type { Harness } from '@cordon/harness'
import { Hono } from 'hono'
import { type Env, requireScope } from '../http.ts'

export function executionRoutes(harness: Harness): Hono<Env> {
  const app = new Hono<Env>()
  app.get('/:id', (c) => {
    const { tenant } = requireScope(c, 'invoke')
    return c.json(harness.getExecution(tenant, c.req.param('id')))
  })
  return app
}
