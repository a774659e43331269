import {
  type ExecutionStatus,
  type GuestError,
  GuestErrorCode,
  type JsonValue,
  parseJsonBounded,
} from '@cordon/contracts'
import type { Limits } from '@cordon/policy'

/** Results nest at most this deep. */
export const MAX_RESULT_DEPTH = 64

/** How QuickJS and V8 word a stack overflow. */
const STACK_OVERFLOW = /stack overflow|^Maximum call stack size exceeded$/

/** Why the host stopped a run: decided by the host's own flags, never by what the guest says. */
export type Stop = 'cpu' | 'wall' | 'output' | null

export interface Outcome {
  status: ExecutionStatus
  error: GuestError | null
  result: JsonValue
}

/** `{ name, message }` of a guest error, as the guest library described it (or a fallback). */
export interface Description {
  name: string
  message: string
  /** The start of the guest's `stack`: used only to tell a parse error from a thrown SyntaxError. */
  stack?: string
}

const outputLimit = (): Outcome => ({
  status: 'output_limit',
  error: {
    code: GuestErrorCode.OUTPUT_LIMIT,
    message: 'stdout, stderr and result together exceed outputBytes',
  },
  result: null,
})

export const memoryLimit = (limits: Limits): Outcome => ({
  status: 'memory_limit',
  error: { code: GuestErrorCode.MEMORY_LIMIT, message: `memory limit of ${limits.memoryMb} MiB exceeded` },
  result: null,
})

const guestError = (code: GuestErrorCode, message: string): Outcome => ({
  status: 'error',
  error: { code, message },
  result: null,
})

/**
 * Classifies a run that did not produce a result: limit hits first (decided by the host), then the
 * guest's own error. `syntax` says whether the source failed to compile (checked by the engine).
 */
export function classifyFailure(
  description: Description | null,
  stop: Stop,
  limits: Limits,
  syntax = false,
): Outcome {
  if (stop === 'cpu') {
    return {
      ...guestError(GuestErrorCode.CPU_TIME_LIMIT, `CPU time limit of ${limits.cpuMs} ms exceeded`),
      status: 'timeout',
    }
  }
  if (stop === 'wall') {
    return {
      ...guestError(GuestErrorCode.WALL_TIME_LIMIT, `wall time limit of ${limits.wallMs} ms exceeded`),
      status: 'timeout',
    }
  }
  if (stop === 'output') return outputLimit()
  const { name, message } = description ?? { name: 'Error', message: '' }
  const text = name === 'null' ? 'null was thrown' : message ? `${name}: ${message}` : name
  if (name === 'InternalError' && message === 'out of memory') return memoryLimit(limits)
  if (/^(InternalError|RangeError|SyntaxError)$/.test(name) && STACK_OVERFLOW.test(message)) {
    return guestError(GuestErrorCode.STACK_OVERFLOW, text)
  }
  if (syntax) return guestError(GuestErrorCode.SYNTAX_ERROR, text)
  if (name === 'ReferenceError' && /could not load module/.test(message)) {
    return guestError(GuestErrorCode.IMPORT_NOT_ALLOWED, 'imports are not available in the sandbox')
  }
  return guestError(GuestErrorCode.GUEST_EXCEPTION, text)
}

/** A result that `JSON.stringify` refused (the guest's error, as described). */
export function classifyUnserializable(description: Description | null, limits: Limits): Outcome {
  const { name, message } = description ?? { name: 'Error', message: '' }
  if (name === 'InternalError' && message === 'out of memory') return memoryLimit(limits)
  if (STACK_OVERFLOW.test(message)) {
    return guestError(GuestErrorCode.RESULT_TOO_DEEP, `result nests too deeply to serialise (${message})`)
  }
  return guestError(
    GuestErrorCode.RESULT_NOT_SERIALIZABLE,
    name === 'null' ? 'result is not JSON: null was thrown' : `result is not JSON: ${name}: ${message}`,
  )
}

/**
 * Reads the result's JSON text (`null` when it did not fit the output budget): it must fit what is
 * left of the budget and nest at most 64 levels.
 */
export function classifyResult(json: string | null, remainingBytes: number): Outcome {
  if (json === null) return outputLimit()
  const parsed = parseJsonBounded(json, { maxBytes: Math.max(0, remainingBytes), maxDepth: MAX_RESULT_DEPTH })
  if (parsed.ok) return { status: 'ok', error: null, result: parsed.value }
  if (parsed.reason === 'too_large') return outputLimit()
  return guestError(
    parsed.reason === 'too_deep' ? GuestErrorCode.RESULT_TOO_DEEP : GuestErrorCode.RESULT_NOT_SERIALIZABLE,
    parsed.message,
  )
}

/** Parses the guest library's `{ name, message, stack }` JSON; anything else becomes a plain `Error`. */
export function describe(json: string): Description {
  const parsed = parseJsonBounded(json, { maxBytes: 16 * 1024, maxDepth: 2 })
  if (
    parsed.ok &&
    parsed.value !== null &&
    typeof parsed.value === 'object' &&
    !Array.isArray(parsed.value)
  ) {
    const { name, message, stack } = parsed.value
    return {
      name: typeof name === 'string' ? name.slice(0, 200) : 'Error',
      message: typeof message === 'string' ? message.slice(0, 4000) : '',
      ...(typeof stack === 'string' ? { stack: stack.slice(0, 200) } : {}),
    }
  }
  return { name: 'Error', message: '' }
}

/**
 * Whether a SyntaxError came from parsing the module itself: QuickJS gives a parse error exactly one
 * frame with no function name (`at main.js:1:17`), while anything thrown at run time has `<anonymous>`,
 * a function name or `(native)` frames.
 */
export function isParseError(description: Description | null, filename: string): boolean {
  if (description?.name !== 'SyntaxError' || description.stack === undefined) return false
  const frame = description.stack.trim()
  return frame === `at ${filename}:${/\d+:\d+$/.exec(frame)?.[0] ?? ''}` && /:\d+:\d+$/.test(frame)
}

/** A failure that memory exhaustion may have caused, however the guest's error reads. */
export function mayBeMemoryExhaustion(outcome: Outcome): boolean {
  const code = outcome.error?.code
  return (
    outcome.status === 'error' &&
    (code === GuestErrorCode.GUEST_EXCEPTION ||
      code === GuestErrorCode.RESULT_NOT_SERIALIZABLE ||
      code === GuestErrorCode.UNSETTLED_PROMISE)
  )
}

/**
 * Outcomes that QuickJS produces when an allocation fails where it cannot even build an error: a
 * thrown `null`, or a promise chain whose failed job left it unsettled.
 */
export function lostToMemory(outcome: Outcome): boolean {
  return (
    outcome.error?.code === GuestErrorCode.UNSETTLED_PROMISE ||
    outcome.error?.message.endsWith('null was thrown') === true
  )
}
