import { CordonError, ErrorCode, LANGUAGES } from '@cordon/contracts'
import { type Harness, MAX_SESSION_IDLE_SECONDS } from '@cordon/harness'
import type { Context } from 'hono'
import { Hono } from 'hono'
import { z } from 'zod'
import {
  DOWNLOAD_HEADERS,
  type Env,
  filePath,
  nameParam,
  queryPath,
  readJson,
  requireScope,
} from '../http.ts'
import { validated } from '../validate.ts'
import { ExecuteBody } from './agents.ts'

/** `POST /v1/agents/{name}/sessions`: an optional body. */
export const OpenSessionBody = z.strictObject({
  idleTimeoutSeconds: z.number().int().min(1).max(MAX_SESSION_IDLE_SECONDS).optional(),
})

/** `POST /v1/sessions/{id}/executions`: an execution request without an engine (always container). */
export const SessionExecuteBody = ExecuteBody.omit({ engine: true }).extend({ language: z.enum(LANGUAGES) })

const SESSION_ID = /^ses_[A-Za-z0-9_-]{1,64}$/

/**
 * Container sessions: one sandbox kept across executions and file operations. Opening one runs as
 * the agent (scope `invoke`), like everything done in it. File paths are relative to `/workspace`,
 * read from the URL and decoded strictly, as in the agent files API.
 */
export function sessionRoutes(
  harness: Harness,
  maxBodyBytes: number,
): { agents: Hono<Env>; sessions: Hono<Env> } {
  const agents = new Hono<Env>()
  agents.post('/:name/sessions', async (c) => {
    const { tenant } = requireScope(c, 'invoke')
    const name = nameParam(c, 'name')
    // The body is optional: none (or only whitespace) asks for the defaults.
    const empty = (await c.req.text()).trim() === ''
    const body = validated(OpenSessionBody, empty ? {} : await readJson(c, maxBodyBytes), 'session request')
    const session = await harness.sessions.open(tenant, name, body)
    return c.json(session, 201)
  })

  const sessions = new Hono<Env>()
  sessions.get('/', (c) => {
    const { tenant } = requireScope(c, 'invoke')
    return c.json({ items: harness.sessions.list(tenant) })
  })
  sessions.get('/:id', (c) => {
    const { tenant } = requireScope(c, 'invoke')
    return c.json(harness.sessions.get(tenant, sessionId(c)))
  })
  sessions.delete('/:id', async (c) => {
    const { tenant } = requireScope(c, 'invoke')
    await harness.sessions.close(tenant, sessionId(c))
    return c.body(null, 204)
  })
  sessions.post('/:id/executions', async (c) => {
    const { tenant } = requireScope(c, 'invoke')
    const id = sessionId(c)
    const body = validated(SessionExecuteBody, await readJson(c, maxBodyBytes), 'execution request')
    const record = await harness.sessions.execute(
      tenant,
      id,
      {
        language: body.language,
        code: body.code,
        input: body.input ?? null,
        files: body.files?.map((file) => ({
          path: file.path,
          data: Buffer.from(file.content, file.encoding === 'base64' ? 'base64' : 'utf8'),
        })),
      },
      c.req.raw.signal,
    )
    return c.json(record)
  })
  sessions.get('/:id/files', async (c) => {
    const { tenant } = requireScope(c, 'invoke')
    const entries = await harness.sessions.listFiles(tenant, sessionId(c), queryPath(c))
    return c.json({ entries })
  })
  sessions.get('/:id/files/:path{.+}', async (c) => {
    const { tenant } = requireScope(c, 'invoke')
    const data = await harness.sessions.readFile(tenant, sessionId(c), urlPath(c))
    return c.body(new Uint8Array(data), 200, DOWNLOAD_HEADERS)
  })
  sessions.put('/:id/files/:path{.+}', async (c) => {
    const { tenant } = requireScope(c, 'invoke')
    const data = Buffer.from(await c.req.arrayBuffer())
    const written = await harness.sessions.writeFile(tenant, sessionId(c), urlPath(c), data)
    return c.json({ path: written.path, size: written.size }, written.created ? 201 : 200)
  })
  sessions.delete('/:id/files/:path{.+}', async (c) => {
    const { tenant } = requireScope(c, 'invoke')
    await harness.sessions.removeFile(tenant, sessionId(c), urlPath(c))
    return c.body(null, 204)
  })
  return { agents, sessions }
}

function sessionId(c: Context<Env>): string {
  const id = c.req.param('id') ?? ''
  if (!SESSION_ID.test(id))
    throw new CordonError(ErrorCode.SESSION_NOT_FOUND, `no session with id "${id.slice(0, 64)}"`)
  return id
}

const urlPath = (c: Context<Env>) => filePath(c, /\/sessions\/[^/]+/)
