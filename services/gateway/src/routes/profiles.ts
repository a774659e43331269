import { CordonError, ErrorCode } from '@cordon/contracts'
import type { Harness, ProfileView, ReviewTarget } from '@cordon/harness'
import { type DocumentFormat, formatReviewText, NAME_PATTERN, parseDocument, toSARIF } from '@cordon/policy'
import { Hono } from 'hono'
import { type Env, nameParam, readDocument, requireScope } from '../http.ts'

const view = ({ profile, builtin }: ProfileView) => ({ ...profile, builtin })
const REVIEW_FORMATS = ['json', 'sarif', 'text'] as const
type ReviewFormat = (typeof REVIEW_FORMATS)[number]
const REVIEWER_VERSION = '0.1.0'

export function profileRoutes(harness: Harness): Hono<Env> {
  const app = new Hono<Env>()
  app.get('/', (c) => {
    const { tenant } = requireScope(c, 'invoke')
    return c.json({ items: harness.listProfiles(tenant).map(view) })
  })
  // Review: a profile document, { "name": profile } or { "agent": agent }; ?format=json|sarif|text.
  app.post('/review', async (c) => {
    const { tenant } = requireScope(c, 'invoke')
    const format = reviewFormat(c.req.query('format'), c.req.header('accept'))
    const { text, format: documentFormat } = await readDocument(c, ['json', 'yaml'])
    const report = harness.review(tenant, reviewTarget(text, documentFormat))
    if (format === 'text') return c.text(formatReviewText(report))
    if (format === 'sarif') {
      return c.body(JSON.stringify(toSARIF(report, REVIEWER_VERSION)), 200, {
        'content-type': 'application/sarif+json',
      })
    }
    return c.json(report)
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

/** `?format=` wins; otherwise an Accept of SARIF or plain text picks that format; JSON by default. */
function reviewFormat(query: string | undefined, accept: string | undefined): ReviewFormat {
  if (query !== undefined) {
    if ((REVIEW_FORMATS as readonly string[]).includes(query)) return query as ReviewFormat
    throw new CordonError(ErrorCode.BAD_REQUEST, `format must be one of ${REVIEW_FORMATS.join(', ')}`)
  }
  if (accept?.includes('application/sarif+json')) return 'sarif'
  if (accept?.startsWith('text/plain')) return 'text'
  return 'json'
}

/** `{ "name": "x" }` reviews a stored or built-in profile, `{ "agent": "x" }` an agent; anything else is a profile. */
function reviewTarget(text: string, format: DocumentFormat): ReviewTarget {
  const parsed = parseDocument(text, format)
  if (!parsed.ok) throw new CordonError(ErrorCode.MALFORMED_BODY, parsed.message)
  const value = parsed.value
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value)
    const only = keys.length === 1 ? keys[0] : undefined
    const named = (value as Record<string, unknown>)[only ?? '']
    if ((only === 'name' || only === 'agent') && typeof named === 'string') {
      if (!NAME_PATTERN.test(named))
        throw new CordonError(ErrorCode.BAD_REQUEST, `invalid ${only}: "${named.slice(0, 64)}"`)
      return only === 'name' ? { kind: 'profile', name: named } : { kind: 'agent', name: named }
    }
  }
  return { kind: 'document', text, format, value }
}
