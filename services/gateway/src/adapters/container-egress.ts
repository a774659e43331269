import { type JsonValue, parseJsonBounded } from '@cordon/contracts'
import {
  type BindingChannel,
  type BindingReply,
  egressStatus,
  failure,
  isBindingReply,
} from '@cordon/executor/portable'

// Container egress on Cloudflare: each outbound request of a job's container reaches the Worker (the
// container's outbound handler, or in development the local sandbox server's proxy), travels to the
// tenant's object with the job's egress grant, and is decided there by the job's fetch binding (the
// same policy, secret injection and audit as a guest's `fetch`); the reply goes back as the response.

/** The tenant object's internal path for a container's outbound request (never routed from clients). */
export const EGRESS_PATH = '/__cordon/egress'
/** Development: where the local sandbox server sends its sandboxes' requests (CORDON_SANDBOX_URL set). */
export const SANDBOX_OUTBOUND_PATH = '/__cordon/sandbox-outbound'
/** Paths under this prefix are Cordon's own, between its parts: a client's request for one is a 404. */
export const INTERNAL_PREFIX = '/__cordon/'

/** Request body bytes one outbound request may carry (the fetch binding's own default cap). */
const MAX_BODY_BYTES = 1024 * 1024
/**
 * Bytes of an egress message between the Worker and the object (a grant and one request): the body
 * travels as a byte string in JSON, where a control byte takes six (`\u0000`).
 */
export const MAX_MESSAGE_BYTES = 6 * MAX_BODY_BYTES + 256 * 1024

/** A grant: `<tenant>.<random>`, naming the tenant whose object holds the job. */
export function newEgressGrant(tenant: string): string {
  return `${tenant}.${crypto.randomUUID()}`
}

/** The tenant a grant names, or null for anything that is not a grant. */
export function grantTenant(grant: unknown): string | null {
  if (typeof grant !== 'string') return null
  const match = /^([a-z0-9][a-z0-9-]{0,62})\.[0-9a-f-]{36}$/.exec(grant)
  return match?.[1] ?? null
}

/** The fetch binding's arguments for an intercepted request, or why it cannot be sent. */
export async function requestArgs(request: Request): Promise<unknown[] | string> {
  const body = await request.arrayBuffer()
  if (body.byteLength > MAX_BODY_BYTES) return `the request body exceeds ${MAX_BODY_BYTES} bytes`
  const headers: [string, string][] = []
  request.headers.forEach((value, name) => {
    headers.push([name, value])
  })
  return [
    {
      url: request.url,
      method: request.method,
      headers,
      ...(body.byteLength > 0 ? { bodyBytes: Buffer.from(body).toString('latin1') } : {}),
      // The container's client follows redirects itself: each comes back here, decided afresh.
      redirect: 'manual',
    },
  ]
}

/** The binding's reply as the response the container's client reads. */
export function replyResponse(reply: BindingReply): Response {
  if (!reply.ok) {
    const { code, message, reason } = reply.error
    return new Response(`cordon: ${code}${reason === undefined ? '' : ` (${reason})`}: ${message}\n`, {
      status: egressStatus(code),
      headers: { 'content-type': 'text/plain; charset=utf-8', 'x-cordon-error': code },
    })
  }
  const value = reply.value as { status?: unknown; headers?: unknown }
  const status =
    typeof value.status === 'number' && value.status >= 200 && value.status <= 599 ? value.status : 502
  const headers = new Headers()
  if (Array.isArray(value.headers)) {
    for (const pair of value.headers) {
      if (Array.isArray(pair) && typeof pair[0] === 'string' && typeof pair[1] === 'string') {
        try {
          headers.append(pair[0], pair[1])
        } catch {}
      }
    }
  }
  const bytes = reply.bytes === undefined ? null : Buffer.from(reply.bytes, 'base64')
  const nullBody = status === 204 || status === 205 || status === 304
  return new Response(nullBody || bytes === null ? null : bytes, { status, headers })
}

interface Tenants {
  idFromName(name: string): unknown
  get(id: unknown): { fetch(request: Request): Promise<Response> }
}

/** Sends one outbound request of a job's container to the tenant's object; answers the response. */
export async function sendToTenant(tenants: Tenants, grant: string, args: unknown[]): Promise<Response> {
  return replyResponse(await askTenant(tenants, grant, args))
}

/** The binding's reply for one outbound request, from the object of the tenant the grant names. */
export async function askTenant(tenants: Tenants, grant: string, args: unknown[]): Promise<BindingReply> {
  const tenant = grantTenant(grant)
  if (tenant === null) return failure('EGRESS_DENIED', 'no egress grant')
  const answer = await tenants.get(tenants.idFromName(tenant)).fetch(
    new Request(`https://cordon.internal${EGRESS_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-cordon-tenant': tenant },
      body: JSON.stringify({ grant, args }),
    }),
  )
  const parsed = parseJsonBounded(await answer.text(), { maxBytes: 2 * MAX_MESSAGE_BYTES, maxDepth: 16 })
  if (!parsed.ok || !isBindingReply(parsed.value)) {
    return failure('FETCH_FAILED', 'the tenant did not answer the request')
  }
  return parsed.value
}

/**
 * The object's side: the job holding `grant` decides the request with its fetch binding. A grant
 * that no running job holds is refused; so is anything malformed.
 */
export async function decideEgress(
  grants: ReadonlyMap<string, BindingChannel>,
  request: Request,
): Promise<Response> {
  const text = await request.text()
  const parsed = parseJsonBounded(text, { maxBytes: MAX_MESSAGE_BYTES, maxDepth: 16 })
  const message = parsed.ok ? (parsed.value as { grant?: unknown; args?: unknown }) : null
  const channel = typeof message?.grant === 'string' ? grants.get(message.grant) : undefined
  const reply: BindingReply = !parsed.ok
    ? failure('INVALID_ARGUMENT', 'the egress message is malformed or too large')
    : channel === undefined
      ? failure('EGRESS_DENIED', 'no running job holds this egress grant')
      : !Array.isArray(message?.args)
        ? failure('INVALID_ARGUMENT', 'malformed egress request')
        : await channel({ kind: 'fetch', op: 'request', args: message.args as JsonValue[] })
  return Response.json(reply)
}
