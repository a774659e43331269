import { type JsonValue, parseJsonBounded, type RunOutcome } from '@cordon/contracts'
import type { RunJob } from '../engine.ts'

/** The capabilities guest code can call through the bridge. `console` is the glue's own. */
export const BINDING_KINDS = ['fetch', 'kv', 'fs', 'tools'] as const
export type BindingKind = (typeof BINDING_KINDS)[number]

/** The operations of each binding; a call naming anything else is refused before it leaves the worker. */
export const BINDING_OPERATIONS: Readonly<Record<BindingKind, readonly string[]>> = {
  fetch: ['request', 'connect'],
  kv: ['get', 'set', 'delete', 'list'],
  fs: ['readFile', 'writeFile', 'readdir', 'stat', 'rm'],
  tools: ['call'],
}

/**
 * Bounds of what crosses the bridge. Arguments are copied once as JSON text of at most
 * `maxArgumentBytes` and `maxArgumentDepth`; replies (JSON plus bytes) are bounded by the host.
 */
export const BRIDGE_LIMITS = {
  maxArgumentBytes: 4 * 1024 * 1024,
  maxArgumentDepth: 32,
  /** Calls one execution may have in flight at once; more are refused with BINDING_BUSY. */
  maxPendingCalls: 32,
  maxReplyBytes: 16 * 1024 * 1024,
} as const

/** One call from guest code, as host data: a fresh copy, parsed from the guest's JSON text. */
export interface BindingCall {
  kind: BindingKind
  op: string
  args: JsonValue[]
}

/** A failure the guest sees as an `Error` with these fields (created in the guest realm). */
export interface BindingFailure {
  /** Stable code: `EGRESS_DENIED`, `KV_DENIED`, `NOT_FOUND`, `BINDING_LIMIT`, ... */
  code: string
  message: string
  /** The policy's own reason (`PRIVATE_ADDRESS`, `READ_ONLY`, ...) when a decision refused the call. */
  reason?: string
  /** The profile rule that decided it (`profiles/web-reader#/network/allow`). */
  rule?: string
}

/**
 * The host's answer to one call: JSON data, plus raw bytes (base64) for calls that return binary
 * content (a response body, a file), or a failure.
 */
export type BindingReply =
  | { ok: true; value: JsonValue; bytes?: string }
  | { ok: false; error: BindingFailure }

/**
 * Runs a job beside the calling one, in the same worker process (a tool the guest called): it has its
 * own limits and bindings, and never waits for a free worker (which could be the caller's own).
 */
export type NestedRunner = (job: RunJob, host: BindingHost) => Promise<RunOutcome>

/** Where a worker sends guest calls. The signal aborts when the execution ends, however it ends. */
export interface BindingHost {
  call(call: BindingCall, signal: AbortSignal, nest: NestedRunner): Promise<BindingReply>
  /** Hears the job's stdout and stderr as it writes them (where its engine can tell). */
  output?(stream: 'stdout' | 'stderr', text: string): void
}

/**
 * What the guest is given, decided by the harness from the profile: which globals exist, which tools
 * may be named, and the opaque placeholder of each granted secret. Plain data; the worker installs
 * only what is listed.
 */
export interface GuestGrants {
  fetch: boolean
  kv: boolean
  fs: boolean
  tools: string[]
  secrets: Record<string, string>
}

export const NO_GRANTS: GuestGrants = Object.freeze({
  fetch: false,
  kv: false,
  fs: false,
  tools: [],
  secrets: {},
}) as GuestGrants

export const failure = (
  code: string,
  message: string,
  extra: Partial<BindingFailure> = {},
): BindingReply => ({
  ok: false,
  error: { code, message, ...extra },
})

/**
 * Reads a guest call from the three strings the guest passed: the binding, the operation and the
 * arguments as JSON text. Answers the host copy, or a failure the guest will see.
 */
export function readCall(kind: string, op: string, argsJSON: string): BindingCall | BindingReply {
  if (!(BINDING_KINDS as readonly string[]).includes(kind)) {
    return failure('INVALID_ARGUMENT', `there is no binding "${kind.slice(0, 32)}"`)
  }
  const binding = kind as BindingKind
  if (!BINDING_OPERATIONS[binding].includes(op)) {
    return failure('INVALID_ARGUMENT', `${binding} has no operation "${op.slice(0, 32)}"`)
  }
  const parsed = parseJsonBounded(argsJSON, {
    maxBytes: BRIDGE_LIMITS.maxArgumentBytes,
    maxDepth: BRIDGE_LIMITS.maxArgumentDepth,
  })
  if (!parsed.ok) {
    const code = parsed.reason === 'malformed' ? 'INVALID_ARGUMENT' : 'ARGUMENT_TOO_LARGE'
    return failure(code, `the arguments of ${binding}.${op}: ${parsed.message}`)
  }
  if (!Array.isArray(parsed.value)) return failure('INVALID_ARGUMENT', 'arguments must be a list')
  return { kind: binding, op, args: parsed.value }
}

/** True for a reply the supervisor or worker may pass on (guards what arrives over IPC). */
export function isBindingReply(value: unknown): value is BindingReply {
  if (value === null || typeof value !== 'object') return false
  const reply = value as Record<string, unknown>
  if (reply.ok === true) return reply.bytes === undefined || typeof reply.bytes === 'string'
  if (reply.ok !== false) return false
  const error = reply.error as Record<string, unknown> | null
  return (
    error !== null &&
    typeof error === 'object' &&
    typeof error.code === 'string' &&
    typeof error.message === 'string'
  )
}

/** What one run has used of the bridge when a new call arrives. */
export interface CallCounts {
  /** Calls this run has made, this one included. */
  made: number
  /** The run's limit (the profile's `bindingCalls`). */
  max: number
  /** Calls awaiting their reply. */
  pending: number
}

/**
 * Admits one guest call: the three texts (null when the guest passed something other than a string
 * of bounded length), the run's counts, then `readCall`. The same rules for every engine.
 */
export function admitCall(
  kind: string | null,
  op: string | null,
  argsJSON: string | null,
  counts: CallCounts,
): BindingCall | BindingReply {
  if (kind === null || op === null || kind.length > 32 || op.length > 32) {
    return failure('INVALID_ARGUMENT', 'malformed call')
  }
  if (argsJSON === null || argsJSON.length > BRIDGE_LIMITS.maxArgumentBytes) {
    return failure(
      'ARGUMENT_TOO_LARGE',
      `the arguments of ${kind}.${op} exceed ${BRIDGE_LIMITS.maxArgumentBytes} bytes`,
    )
  }
  if (counts.made > counts.max) {
    return failure('BINDING_LIMIT', `this execution may make at most ${counts.max} binding calls`)
  }
  if (counts.pending >= BRIDGE_LIMITS.maxPendingCalls) {
    return failure('BINDING_BUSY', `at most ${BRIDGE_LIMITS.maxPendingCalls} binding calls may be in flight`)
  }
  return readCall(kind, op, argsJSON)
}

/**
 * Bytes of reply bodies one run may hold in the guest, for every engine (on QuickJS they live in the
 * module's linear memory outside QuickJS's own accounting, so they must be bounded well inside the
 * room the module has above the guest's memory limit).
 */
export const MAX_REPLY_BYTES_PER_RUN = 4 * 1024 * 1024
/** Longest reply text handed to the guest. */
export const MAX_REPLY_TEXT = 1024 * 1024

/** The refusal of a body past the run's `MAX_REPLY_BYTES_PER_RUN`. */
export function bodiesTooLarge(): BindingReply {
  return failure(
    'REPLY_TOO_LARGE',
    `the bodies of this execution's binding calls exceed ${MAX_REPLY_BYTES_PER_RUN} bytes`,
  )
}

/**
 * The reply as the guest API reads it: JSON `{ ok, value, bytes? }` (`bytes` the id the guest takes
 * its body by) or `{ ok: false, error }`; a text past `MAX_REPLY_TEXT` becomes a REPLY_TOO_LARGE.
 */
export function replyJSON(answer: BindingReply, bytesId: number | undefined): string {
  const json = JSON.stringify(
    answer.ok ? { ok: true, value: answer.value, bytes: bytesId } : { ok: false, error: answer.error },
  )
  if (json.length <= MAX_REPLY_TEXT) return json
  return JSON.stringify(failure('REPLY_TOO_LARGE', `the reply exceeds ${MAX_REPLY_TEXT} characters`))
}

/**
 * The HTTP status a client of the container's egress (a proxy, an outbound handler) gets for a
 * refused request: 403 for the policy's refusals, 429 past the call limits, 504 for a timeout, 413
 * for a body too large, 400 for a malformed request, 502 for the rest.
 */
export function egressStatus(code: string): number {
  if (code === 'EGRESS_DENIED' || code === 'SECRET_DENIED' || code === 'NOT_GRANTED') return 403
  if (code === 'BINDING_LIMIT' || code === 'BINDING_BUSY') return 429
  if (code === 'FETCH_TIMEOUT') return 504
  if (code === 'REQUEST_TOO_LARGE') return 413
  if (code.startsWith('INVALID')) return 400
  return 502
}
