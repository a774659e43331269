import type { Harness } from '@cordon/harness'
import { Hono } from 'hono'
import { z } from 'zod'
import { type Env, readJson, requireScope } from '../http.ts'
import { validated } from '../validate.ts'

const SecretBody = z.strictObject({ value: z.string() })

/**
 * The tenant's secrets store (`store:NAME` sources). Write-only: no route ever answers a value, only
 * names and times.
 */
export function secretRoutes(harness: Harness, maxBodyBytes: number): Hono<Env> {
  const app = new Hono<Env>()
  app.get('/', (c) => {
    const { tenant } = requireScope(c, 'deploy')
    return c.json({ secrets: harness.secrets.list(tenant) })
  })
  app.get('/:name', (c) => {
    const { tenant } = requireScope(c, 'deploy')
    return c.json(harness.secrets.get(tenant, c.req.param('name')))
  })
  app.put('/:name', async (c) => {
    const { tenant } = requireScope(c, 'deploy')
    const body = validated(SecretBody, await readJson(c, maxBodyBytes), 'secret')
    return c.json(harness.secrets.put(tenant, c.req.param('name'), body.value))
  })
  app.delete('/:name', (c) => {
    const { tenant } = requireScope(c, 'deploy')
    harness.secrets.delete(tenant, c.req.param('name'))
    return c.body(null, 204)
  })
  return app
}
