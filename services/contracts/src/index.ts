export type { ErrorBody, HttpErrorStatus, Issue } from './error-codes.ts'
export { CordonError, ErrorCode, errorStatus } from './error-codes.ts'
export type {
  EngineName,
  ExecutionRecord,
  ExecutionStatus,
  GuestError,
  JsonValue,
  Language,
  OutputFile,
  RunOutcome,
  Usage,
} from './execution.ts'
export { ENGINE_LANGUAGES, ENGINES, EXECUTION_STATUSES, GuestErrorCode, LANGUAGES } from './execution.ts'
export { type JsonBounds, parseJsonBounded, valueDepth } from './json-bounds.ts'
export {
  RUN_STATUSES,
  RunErrorCode,
  type RunRecord,
  type RunStatus,
  type RunStep,
  type RunToolCall,
  type RunToolDecision,
  type RunUsage,
} from './run.ts'
