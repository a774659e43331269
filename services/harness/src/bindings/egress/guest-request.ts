import type { JsonValue } from '@cordon/contracts'
import { type Handled, refused } from '../binding-context.ts'
import type { EgressLimits } from './egress-options.ts'

/** A guest's request after validation: the host's own copy, nothing the guest can still change. */
export interface GuestRequest {
  url: string
  method: string
  headers: [string, string][]
  body: Buffer | null
  redirect: 'follow' | 'manual' | 'error'
}

const MAX_HEADERS = 100
const MAX_HEADER_BYTES = 64 * 1024
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing CR, LF and NUL is the point
const UNSAFE_VALUE = /[\r\n\u0000]/

/**
 * Headers the guest may not set: hop-by-hop headers, `Host` (always the URL's), forwarding and proxy
 * headers (an upstream must not be told a made-up client), and the ones the host computes itself.
 */
const DROPPED = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'forwarded',
  'via',
  'expect',
  'http2-settings',
  'content-length',
  'accept-encoding',
])

const dropped = (name: string) =>
  DROPPED.has(name) || name.startsWith('x-forwarded-') || name.startsWith('proxy-')

/** Reads and validates the guest's request argument; answers a refusal for anything malformed. */
export function readRequest(arg: JsonValue | undefined, limits: EgressLimits): GuestRequest | Handled {
  if (arg === null || typeof arg !== 'object' || Array.isArray(arg)) {
    return refused('INVALID_ARGUMENT', 'fetch: malformed request')
  }
  const { url, method, headers, body, bodyBytes, redirect } = arg
  if (typeof url !== 'string' || typeof method !== 'string' || !Array.isArray(headers)) {
    return refused('INVALID_ARGUMENT', 'fetch: malformed request')
  }
  if (!TOKEN.test(method) || method.length > 20) return refused('INVALID_ARGUMENT', 'fetch: invalid method')
  const upper = method.toUpperCase()
  if (redirect !== 'follow' && redirect !== 'manual' && redirect !== 'error') {
    return refused('INVALID_ARGUMENT', 'fetch: redirect must be "follow", "manual" or "error"')
  }
  if (headers.length > MAX_HEADERS) return refused('INVALID_HEADER', `fetch: at most ${MAX_HEADERS} headers`)
  const pairs: [string, string][] = []
  let headerBytes = 0
  for (const pair of headers) {
    if (!Array.isArray(pair) || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      return refused('INVALID_HEADER', 'fetch: headers must be name/value pairs of strings')
    }
    const name = pair[0].toLowerCase()
    const value = pair[1].trim()
    headerBytes += name.length + value.length
    if (!TOKEN.test(name))
      return refused('INVALID_HEADER', `fetch: invalid header name "${name.slice(0, 64)}"`)
    // CR/LF would start a header or a request of the guest's own on the wire: refused, never cleaned.
    if (UNSAFE_VALUE.test(value) || !isLatin1(value)) {
      return refused('INVALID_HEADER', `fetch: header "${name}" has CR, LF, NUL or non-Latin-1 characters`)
    }
    pairs.push([name, value])
  }
  if (headerBytes > MAX_HEADER_BYTES) {
    return refused('INVALID_HEADER', `fetch: headers exceed ${MAX_HEADER_BYTES} bytes`)
  }
  // Headers the Connection header names are hop-by-hop too.
  const named = new Set(
    pairs
      .filter(([name]) => name === 'connection')
      .flatMap(([, value]) => value.split(',').map((token) => token.trim().toLowerCase())),
  )
  const kept = pairs.filter(([name]) => !dropped(name) && !named.has(name))
  kept.push(['accept-encoding', 'gzip, deflate, br'])
  if (!kept.some(([name]) => name === 'user-agent')) kept.push(['user-agent', 'cordon-fetch/0.1'])

  let payload: Buffer | null = null
  if (typeof body === 'string') payload = Buffer.from(body, 'utf8')
  else if (typeof bodyBytes === 'string') {
    if (!isLatin1(bodyBytes)) return refused('INVALID_ARGUMENT', 'fetch: malformed binary body')
    payload = Buffer.from(bodyBytes, 'latin1')
  } else if (body !== undefined && body !== null) return refused('INVALID_ARGUMENT', 'fetch: malformed body')
  if (payload !== null && (upper === 'GET' || upper === 'HEAD')) {
    return refused('INVALID_ARGUMENT', `fetch: a ${upper} request cannot have a body`)
  }
  if (payload !== null && payload.length > limits.maxRequestBytes) {
    return refused('REQUEST_TOO_LARGE', `the request body exceeds ${limits.maxRequestBytes} bytes`, {
      decision: 'error',
      bytes: payload.length,
    })
  }
  return { url, method: upper, headers: kept, body: payload, redirect }
}

/**
 * The request a redirect leads to (fetch's rules): 303, and 301/302 after a POST, become a GET
 * without body; 307/308 keep method and body (the next hop's policy check decides whether the new
 * target allows them). Credentials do not cross to another origin. Null for an unusable location.
 */
export function redirectTarget(current: GuestRequest, status: number, location: string): GuestRequest | null {
  let next: URL
  try {
    next = new URL(location, current.url)
  } catch {
    return null
  }
  const toGet =
    status === 303
      ? current.method !== 'HEAD'
      : (status === 301 || status === 302) && current.method === 'POST'
  const crossOrigin = next.origin !== new URL(current.url).origin
  const headers = current.headers.filter(
    ([name]) =>
      !(toGet && name.startsWith('content-')) &&
      !(crossOrigin && (name === 'authorization' || name === 'cookie')),
  )
  return {
    url: next.href,
    method: toGet ? 'GET' : current.method,
    headers,
    body: toGet ? null : current.body,
    redirect: current.redirect,
  }
}

function isLatin1(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0xff) return false
  return true
}
