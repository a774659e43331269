import { CordonError, ErrorCode } from '@cordon/contracts'
import type { Harness } from '@cordon/harness'
import type { MiddlewareHandler } from 'hono'
import { Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { type Authenticator, bearerToken } from './auth.ts'
import { type Env, errorBody } from './http.ts'
import { docsPage, openAPIDocument } from './openapi.ts'
import { agentRoutes } from './routes/agents.ts'
import { auditRoutes } from './routes/audit.ts'
import { executionRoutes } from './routes/executions.ts'
import { fileRoutes } from './routes/files.ts'
import { mcpRoutes } from './routes/mcp.ts'
import { profileRoutes } from './routes/profiles.ts'
import { runRoutes } from './routes/runs.ts'
import { secretRoutes } from './routes/secrets.ts'
import { sessionRoutes } from './routes/sessions.ts'

export interface AppOptions {
  harness: Harness
  auth: Authenticator
  /** Largest request body accepted, in bytes (default 1 MiB). */
  maxBodyBytes?: number
}

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024

/**
 * The HTTP API as one Hono app, runtime-neutral: Node and Workers adapters serve the same app.
 * Every route but `/healthz`, `/openapi.json` and `/docs` needs a bearer token; every error is `{ error: { code, message } }`;
 * an unexpected failure is a bare INTERNAL 500 with nothing of the request or stack in it.
 */
export function createApp(options: AppOptions): Hono<Env> {
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES
  const app = new Hono<Env>()

  app.onError((error, c) => {
    if (error instanceof CordonError) {
      // A known key that lacks the scope for what it asked is audited for its tenant.
      const principal = c.get('principal') as Env['Variables']['principal'] | undefined
      if (error.code === ErrorCode.FORBIDDEN && principal !== undefined) {
        options.harness.recordAuthFailure(principal.tenant, {
          method: c.req.method,
          path: c.req.routePath,
          reason: error.message,
        })
      }
      return c.json(errorBody(error), error.status)
    }
    console.error(
      `cordon: unhandled ${error instanceof Error ? error.name : 'error'} on ${c.req.method} ${c.req.routePath}`,
    )
    return c.json(errorBody(new CordonError(ErrorCode.INTERNAL, 'internal error')), 500)
  })
  app.notFound((c) =>
    c.json(
      errorBody(new CordonError(ErrorCode.NOT_FOUND, `no route for ${c.req.method} ${c.req.path}`)),
      404,
    ),
  )

  addPublicRoutes(app)

  const authenticate: MiddlewareHandler<Env> = async (c, next) => {
    const token = bearerToken(c.req.header('authorization'))
    const principal = token === undefined ? null : options.auth.authenticate(token)
    if (principal === null) {
      const refusal = unauthenticated(token === undefined)
      c.header('WWW-Authenticate', refusal.challenge)
      throw refusal.error
    }
    c.set('principal', principal)
    await next()
  }
  for (const path of ['/v1/*', '/mcp/*']) {
    app.use(path, authenticate)
    app.use(path, limitBody(maxBodyBytes))
    app.use(path, refuseDotSegments)
  }

  app.route('/v1/profiles', profileRoutes(options.harness))
  app.route('/v1/agents', agentRoutes(options.harness, maxBodyBytes))
  app.route('/v1/agents', fileRoutes(options.harness))
  const sessions = sessionRoutes(options.harness, maxBodyBytes)
  app.route('/v1/agents', sessions.agents)
  app.route('/v1/sessions', sessions.sessions)
  const runs = runRoutes(options.harness, maxBodyBytes)
  app.route('/v1/agents', runs.agents)
  app.route('/v1/runs', runs.runs)
  app.route('/v1/executions', executionRoutes(options.harness))
  app.route('/v1/secrets', secretRoutes(options.harness, maxBodyBytes))
  app.route('/v1/audit', auditRoutes(options.harness))
  app.route('/mcp', mcpRoutes(options.harness, maxBodyBytes))
  return app
}

/** The routes that need no token: liveness, and the API's own description. */
// biome-ignore lint/suspicious/noExplicitAny: any app may carry them, whatever its variables
export function addPublicRoutes(app: Hono<any>): void {
  // Liveness only: pool state (busy workers, restarts) would tell anyone about other tenants' load.
  app.get('/healthz', (c) => c.json({ ok: true }))
  const openapi = openAPIDocument()
  const docs = docsPage(openapi)
  app.get('/openapi.json', (c) => c.json(openapi))
  app.get('/docs', (c) => c.html(docs))
}

/** The refusal of a request without a token (`anonymous`) or with one nobody has: error and challenge. */
export function unauthenticated(anonymous: boolean): { error: CordonError; challenge: string } {
  return anonymous
    ? {
        error: new CordonError(
          ErrorCode.UNAUTHENTICATED,
          'missing bearer token: send "Authorization: Bearer <token>"',
        ),
        challenge: 'Bearer',
      }
    : {
        error: new CordonError(ErrorCode.UNAUTHENTICATED, 'invalid bearer token'),
        challenge: 'Bearer error="invalid_token"',
      }
}

/**
 * Refuses bodies over `maxBytes`. A request that declares its length (and is not chunked) is decided
 * from the header alone, which keeps the Node adapter's direct body read (Node's parser never
 * delivers more than Content-Length); any other body is counted as it streams in.
 */
function limitBody(maxBytes: number): MiddlewareHandler {
  const tooLarge = () => {
    throw new CordonError(ErrorCode.PAYLOAD_TOO_LARGE, `request body exceeds ${maxBytes} bytes`)
  }
  const streamed = bodyLimit({ maxSize: maxBytes, onError: tooLarge })
  return async (c, next) => {
    const length = c.req.header('content-length')
    if (length !== undefined && c.req.header('transfer-encoding') === undefined && /^\d+$/.test(length)) {
      if (Number(length) > maxBytes) tooLarge()
      return next()
    }
    return streamed(c, next)
  }
}

/** A `.` or `..` path segment, written plainly or percent-encoded. */
const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|\?|#|$)/i

/**
 * Refuses a request whose target, as sent, has dot segments. URL parsers resolve them before routing
 * (`/v1/agents/a/files/%2e%2e/%2e%2e/b/files/x` would reach agent b), so a proxy or WAF that filters
 * on the path as sent would see another resource than the one served. On Node the raw target is the
 * incoming request's; elsewhere the platform has already normalised it.
 */
const refuseDotSegments: MiddlewareHandler = async (c, next) => {
  const raw = (c.env as { incoming?: { url?: unknown } } | undefined)?.incoming?.url
  if (typeof raw === 'string' && DOT_SEGMENT.test(raw.split('?', 1)[0] ?? '')) {
    throw new CordonError(ErrorCode.BAD_REQUEST, 'the request path has "." or ".." segments')
  }
  await next()
}
