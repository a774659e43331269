import type { Harness, ProfileView } from '@cordon/harness'
import { Hono } from 'hono'
import { type Env, nameParam, readDocument, requireScope } from '../http.ts'

const view = ({ profile, builtin }: ProfileView) => ({ ...profile, builtin })

export function profileRoutes(harness: Harness): Hono<Env> {
  const app = new Hono<Env>()
  app.get('/', (c) => {
    const { tenant } = requireScope(c, 'invoke')
    return c.json({ items: harness.listProfiles(tenant).map(view) })
  })
  app.get('/:name', (c) => {
    const { tenant } = requireScope(c, 'invoke')
    return c.json(view(harness.getProfile(tenant, nameParam(c, 'name'))))
  })
  app.put('/:name', async (c) => {
    const { tenant } = requireScope(c, 'deploy')
    const name = nameParam(c, 'name')
    const { text, format } = await readDocument(c, ['json', 'yaml'])
    return c.json(view(harness.putProfile(tenant, name, text, format)))
  })
  return app
}
