import { CordonError, ErrorCode } from '@cordon/contracts'
import type { Harness } from '@cordon/harness'
import { Hono } from 'hono'
import { type Env, requireScope } from '../http.ts'

const MAX_LIMIT = 1000

/**
 * `GET /v1/audit`: the tenant's audit records, oldest first. Filters: `agent`, `kind` (exact, or a
 * prefix such as `binding` for `binding.fetch.request`), `execution`, `since` (ISO time), `after` (the
 * `next` cursor of the previous page), `limit` (1-1000, default 100).
 */
export function auditRoutes(harness: Harness): Hono<Env> {
  const app = new Hono<Env>()
  app.get('/', (c) => {
    const { tenant } = requireScope(c, 'audit')
    const query = (name: string) => {
      const value = c.req.query(name)
      if (value !== undefined && value.length > 256) {
        throw new CordonError(ErrorCode.BAD_REQUEST, `the "${name}" filter is too long`)
      }
      return value === '' ? undefined : value
    }
    const limit = wholeNumber(query('limit'), 'limit', 100)
    if (limit < 1 || limit > MAX_LIMIT) {
      throw new CordonError(ErrorCode.BAD_REQUEST, `limit must be from 1 to ${MAX_LIMIT}`)
    }
    const since = query('since')
    if (since !== undefined && Number.isNaN(Date.parse(since))) {
      throw new CordonError(ErrorCode.BAD_REQUEST, 'since must be an ISO 8601 time')
    }
    const records = harness.audit(tenant, {
      agent: query('agent'),
      kind: query('kind'),
      execution: query('execution'),
      since: since === undefined ? undefined : new Date(since).toISOString(),
      after: wholeNumber(query('after'), 'after', 0),
      limit,
    })
    const last = records.at(-1)
    return c.json({ records, next: records.length === limit && last !== undefined ? last.seq : null })
  })
  // The tenant's hash chain, checked from its first record to the newest link the store kept.
  app.get('/verify', (c) => {
    const { tenant } = requireScope(c, 'audit')
    return c.json(harness.verifyAudit(tenant))
  })
  // Every record of the tenant as JSON Lines, oldest first, read and sent a page at a time.
  app.get('/export', (c) => {
    const { tenant } = requireScope(c, 'audit')
    let after = 0
    const encoder = new TextEncoder()
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const page = harness.audit(tenant, { after, limit: MAX_LIMIT })
        if (page.length === 0) {
          controller.close()
          return
        }
        after = (page.at(-1) as { seq: number }).seq
        controller.enqueue(encoder.encode(page.map((record) => `${JSON.stringify(record)}\n`).join('')))
      },
    })
    return c.body(body, 200, {
      'content-type': 'application/x-ndjson; charset=utf-8',
      'content-disposition': 'attachment; filename="audit.jsonl"',
      'cache-control': 'no-store',
    })
  })
  return app
}

function wholeNumber(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (!/^\d{1,15}$/.test(value))
    throw new CordonError(ErrorCode.BAD_REQUEST, `${name} must be a whole number`)
  return Number(value)
}
