import { CordonError, ErrorCode } from '@cordon/contracts'
import type { Harness } from '@cordon/harness'
import type { Context } from 'hono'
import { Hono } from 'hono'
import { DOWNLOAD_HEADERS, type Env, filePath, nameParam, queryPath, requireScope } from '../http.ts'

/**
 * The files API over an agent's kept filesystem (`agent:<name>#<incarnation>`, what executions under
 * `filesystem.scope: agent` see): `PUT`, `GET`, `DELETE /v1/agents/{name}/files/{path}` and
 * `GET /v1/agents/{name}/files?path=` for a listing. Paths are relative to `/workspace`, taken from
 * the URL (a target with dot segments never gets here: the app refuses it) and percent-decoded strictly (a malformed escape is refused, never kept as
 * literal text), then normalised by the policy's rules. Uploads and removals need the `deploy`
 * scope, downloads and listings `invoke`. Downloads are `application/octet-stream` with `nosniff`
 * and as an attachment, so that no browser renders an agent's output as a page of this origin.
 */
export function fileRoutes(harness: Harness): Hono<Env> {
  const app = new Hono<Env>()
  app.get('/:name/files', (c) => {
    const { tenant } = requireScope(c, 'invoke')
    const files = harness.agentFiles(tenant, nameParam(c, 'name'))
    const entries = files
      .list(queryPath(c))
      .map(({ name, type, size, mtime }) => ({ name, type, size, mtime }))
    return c.json({ entries })
  })
  app.get('/:name/files/:path{.+}', (c) => {
    const { tenant } = requireScope(c, 'invoke')
    const { data } = harness.agentFiles(tenant, nameParam(c, 'name')).get(urlPath(c))
    return c.body(new Uint8Array(data), 200, DOWNLOAD_HEADERS)
  })
  app.put('/:name/files/:path{.+}', async (c) => {
    const { tenant } = requireScope(c, 'deploy')
    const files = harness.agentFiles(tenant, nameParam(c, 'name'))
    const path = urlPath(c)
    const data = new Uint8Array(await c.req.arrayBuffer())
    const written = files.put(path, data)
    return c.json({ path: written.path, size: written.size }, written.created ? 201 : 200)
  })
  app.delete('/:name/files/:path{.+}', (c) => {
    const { tenant } = requireScope(c, 'deploy')
    const recursive = c.req.query('recursive')
    if (recursive !== undefined && recursive !== 'true' && recursive !== 'false') {
      throw new CordonError(ErrorCode.BAD_REQUEST, 'recursive must be "true" or "false"')
    }
    harness.agentFiles(tenant, nameParam(c, 'name')).remove(urlPath(c), recursive === 'true')
    return c.body(null, 204)
  })
  return app
}

const urlPath = (c: Context<Env>) => filePath(c, /\/agents\/[^/]+/)
