/**
 * The one registry of API error codes. Every code has exactly one HTTP status; adding a code without
 * a status does not compile. Codes are stable: clients branch on them, so never rename one.
 */
export const ErrorCode = {
  BAD_REQUEST: 'BAD_REQUEST',
  MALFORMED_BODY: 'MALFORMED_BODY',
  VALIDATION_FAILED: 'VALIDATION_FAILED',
  NAME_MISMATCH: 'NAME_MISMATCH',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  AGENT_NOT_FOUND: 'AGENT_NOT_FOUND',
  PROFILE_NOT_FOUND: 'PROFILE_NOT_FOUND',
  EXECUTION_NOT_FOUND: 'EXECUTION_NOT_FOUND',
  SESSION_NOT_FOUND: 'SESSION_NOT_FOUND',
  SESSION_LIMIT: 'SESSION_LIMIT',
  SESSION_BUSY: 'SESSION_BUSY',
  TOO_MANY_STREAMS: 'TOO_MANY_STREAMS',
  IDEMPOTENCY_KEY_REUSED: 'IDEMPOTENCY_KEY_REUSED',
  EXECUTION_NOT_RUNNING: 'EXECUTION_NOT_RUNNING',
  TOOL_NOT_FOUND: 'TOOL_NOT_FOUND',
  FILE_NOT_FOUND: 'FILE_NOT_FOUND',
  PATH_INVALID: 'PATH_INVALID',
  IS_DIRECTORY: 'IS_DIRECTORY',
  NOT_DIRECTORY: 'NOT_DIRECTORY',
  NOT_EMPTY: 'NOT_EMPTY',
  NO_AGENT_FILESYSTEM: 'NO_AGENT_FILESYSTEM',
  QUOTA_EXCEEDED: 'QUOTA_EXCEEDED',
  FILE_TOO_LARGE: 'FILE_TOO_LARGE',
  SECRET_NOT_FOUND: 'SECRET_NOT_FOUND',
  METHOD_NOT_ALLOWED: 'METHOD_NOT_ALLOWED',
  BUILTIN_PROFILE: 'BUILTIN_PROFILE',
  PROFILE_IN_USE: 'PROFILE_IN_USE',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  LANGUAGE_NOT_ALLOWED: 'LANGUAGE_NOT_ALLOWED',
  ENGINE_NOT_ALLOWED: 'ENGINE_NOT_ALLOWED',
  ENGINE_UNAVAILABLE: 'ENGINE_UNAVAILABLE',
  LANGUAGE_UNSUPPORTED: 'LANGUAGE_UNSUPPORTED',
  QUEUE_FULL: 'QUEUE_FULL',
  SHUTTING_DOWN: 'SHUTTING_DOWN',
  QUEUE_TIMEOUT: 'QUEUE_TIMEOUT',
  INTERNAL: 'INTERNAL',
} as const

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

export type HttpErrorStatus = 400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 422 | 429 | 500 | 503

export const errorStatus: Record<ErrorCode, HttpErrorStatus> = {
  BAD_REQUEST: 400,
  MALFORMED_BODY: 400,
  VALIDATION_FAILED: 422,
  NAME_MISMATCH: 422,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  AGENT_NOT_FOUND: 404,
  PROFILE_NOT_FOUND: 404,
  EXECUTION_NOT_FOUND: 404,
  SESSION_NOT_FOUND: 404,
  SESSION_LIMIT: 429,
  SESSION_BUSY: 429,
  TOO_MANY_STREAMS: 429,
  IDEMPOTENCY_KEY_REUSED: 409,
  EXECUTION_NOT_RUNNING: 409,
  TOOL_NOT_FOUND: 404,
  FILE_NOT_FOUND: 404,
  PATH_INVALID: 400,
  IS_DIRECTORY: 409,
  NOT_DIRECTORY: 409,
  NOT_EMPTY: 409,
  NO_AGENT_FILESYSTEM: 409,
  QUOTA_EXCEEDED: 413,
  FILE_TOO_LARGE: 413,
  SECRET_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  BUILTIN_PROFILE: 409,
  PROFILE_IN_USE: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  LANGUAGE_NOT_ALLOWED: 403,
  ENGINE_NOT_ALLOWED: 403,
  ENGINE_UNAVAILABLE: 422,
  LANGUAGE_UNSUPPORTED: 422,
  QUEUE_FULL: 429,
  SHUTTING_DOWN: 503,
  QUEUE_TIMEOUT: 503,
  INTERNAL: 500,
}

/** One problem found while validating input: where (a JSON path) and what. */
export interface Issue {
  path: string
  message: string
}

/**
 * An expected, client-facing failure. Services throw it; only the gateway turns it into HTTP.
 * `message` must never contain secrets, guest payloads or stack traces.
 */
export class CordonError extends Error {
  readonly code: ErrorCode
  readonly issues: readonly Issue[] | undefined

  constructor(code: ErrorCode, message: string, issues?: readonly Issue[]) {
    super(message)
    this.name = 'CordonError'
    this.code = code
    this.issues = issues
  }

  get status(): HttpErrorStatus {
    return errorStatus[this.code]
  }
}

/** The JSON body of every error response. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; issues?: readonly Issue[] }
}
