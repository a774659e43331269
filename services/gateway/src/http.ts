import { CordonError, type ErrorBody, ErrorCode, type JsonValue, parseJsonBounded } from '@cordon/contracts'
import { type DocumentFormat, NAME_PATTERN } from '@cordon/policy'
import type { Context } from 'hono'
import type { Principal, Scope } from './auth.ts'
import { hasScope } from './auth.ts'

export type Env = { Variables: { principal: Principal } }

/** JSON error body of the contract: `{ error: { code, message } }`. */
export function errorBody(error: CordonError): ErrorBody {
  return {
    error: {
      code: error.code,
      message: error.message,
      ...(error.issues === undefined ? {} : { issues: error.issues }),
    },
  }
}

export function requireScope(c: Context<Env>, scope: Scope): Principal {
  const principal = c.get('principal')
  if (!hasScope(principal, scope)) {
    throw new CordonError(ErrorCode.FORBIDDEN, `this API key lacks the "${scope}" scope`)
  }
  return principal
}

/** A resource name from the URL, checked against the one naming rule. */
export function nameParam(c: Context<Env>, param: string): string {
  const name = c.req.param(param) ?? ''
  if (!NAME_PATTERN.test(name)) {
    throw new CordonError(
      ErrorCode.BAD_REQUEST,
      `invalid ${param} name: use 1-63 characters of a-z, 0-9, "-" or "_", starting with a letter or digit`,
    )
  }
  return name
}

const FORMATS: Record<string, DocumentFormat> = {
  'application/json': 'json',
  'application/yaml': 'yaml',
  'application/x-yaml': 'yaml',
  'text/yaml': 'yaml',
  'text/x-yaml': 'yaml',
  'text/markdown': 'markdown',
  'text/x-markdown': 'markdown',
}
/** Content types that say nothing about the document (curl's default for -d, for instance). */
const UNSPECIFIED = new Set([
  '',
  'application/x-www-form-urlencoded',
  'text/plain',
  'application/octet-stream',
])

/** Reads a declaration body and its format (from Content-Type, or sniffed when none is given). */
export async function readDocument(
  c: Context<Env>,
  allowed: readonly DocumentFormat[],
): Promise<{ text: string; format: DocumentFormat }> {
  const type = (c.req.header('content-type') ?? '').split(';', 1)[0]?.trim().toLowerCase() ?? ''
  const text = await c.req.text()
  let format = FORMATS[type]
  if (format === undefined) {
    if (!UNSPECIFIED.has(type)) throw unsupported(type, allowed)
    format = sniff(text)
  }
  if (!allowed.includes(format)) throw unsupported(type, allowed)
  if (text.trim().length === 0) throw new CordonError(ErrorCode.MALFORMED_BODY, 'the request body is empty')
  return { text, format }
}

/** The request's media type, lowercased, without parameters ('' when absent). */
function mediaType(c: Context<Env>): string {
  return (c.req.header('content-type') ?? '').split(';', 1)[0]?.trim().toLowerCase() ?? ''
}

function sniff(text: string): DocumentFormat {
  const start = text.trimStart()
  if (start.startsWith('{')) return 'json'
  if (start.startsWith('---')) return 'markdown'
  return 'yaml'
}

function unsupported(type: string, allowed: readonly DocumentFormat[]): CordonError {
  const names = { json: 'application/json', yaml: 'application/yaml', markdown: 'text/markdown' }
  return new CordonError(
    ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    `unsupported content type "${type}"; send one of ${allowed.map((f) => names[f]).join(', ')}`,
  )
}

/** Maximum nesting of any JSON request body. */
export const MAX_JSON_DEPTH = 64

/** Reads a JSON request body, bounded in size (by the body limit) and depth. */
export async function readJson(c: Context<Env>, maxBytes: number): Promise<JsonValue> {
  const type = mediaType(c)
  if (type !== 'application/json' && !UNSPECIFIED.has(type)) {
    throw new CordonError(
      ErrorCode.UNSUPPORTED_MEDIA_TYPE,
      `unsupported content type "${type}"; send application/json`,
    )
  }
  const parsed = parseJsonBounded(await c.req.text(), { maxBytes, maxDepth: MAX_JSON_DEPTH })
  if (parsed.ok) return parsed.value
  if (parsed.reason === 'too_large') throw new CordonError(ErrorCode.PAYLOAD_TOO_LARGE, parsed.message)
  throw new CordonError(ErrorCode.MALFORMED_BODY, `malformed JSON: ${parsed.message}`)
}

/** Headers of a file download: bytes as an attachment, never rendered as a page of this origin. */
export const DOWNLOAD_HEADERS = {
  'content-type': 'application/octet-stream',
  'content-disposition': 'attachment',
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
} as const

/** The part of the URL after `/files/` (as `prefix` matches it), as the client encoded it, decoded strictly. */
export function filePath(c: Context<Env>, prefix: RegExp): string {
  const { pathname } = new URL(c.req.url)
  const match = new RegExp(`${prefix.source}\\/files\\/(.+)$`).exec(pathname)
  return strictDecode(match?.[1] ?? '')
}

/** `?path=` (empty or absent: the root), given at most once, decoded strictly. */
export function queryPath(c: Context<Env>): string {
  const { search } = new URL(c.req.url)
  const found = search
    .slice(1)
    .split('&')
    .filter((pair) => pair === 'path' || pair.startsWith('path='))
  if (found.length > 1) throw new CordonError(ErrorCode.BAD_REQUEST, 'give "path" at most once')
  return strictDecode((found[0] ?? '').slice('path='.length).replaceAll('+', ' '))
}

function strictDecode(text: string): string {
  try {
    return decodeURIComponent(text)
  } catch {
    throw new CordonError(ErrorCode.PATH_INVALID, 'the path has a malformed percent-encoding')
  }
}
