/** The engines Cordon knows. Which ones a deployment actually offers is the executor's business. */
export const ENGINES = ['quickjs', 'isolate', 'container'] as const
export type EngineName = (typeof ENGINES)[number]

export const LANGUAGES = ['javascript', 'typescript', 'python', 'bash'] as const
export type Language = (typeof LANGUAGES)[number]

export const EXECUTION_STATUSES = [
  'ok',
  'error',
  'timeout',
  'memory_limit',
  'output_limit',
  'killed',
] as const
export type ExecutionStatus = (typeof EXECUTION_STATUSES)[number]

/**
 * Why a guest run did not end with `ok`. These describe what the guest did (or what was done to it);
 * they are carried inside a 200 execution record, never as an HTTP error.
 */
export const GuestErrorCode = {
  /** The guest threw (or its promise rejected). `message` is `Name: message` of the guest's error. */
  GUEST_EXCEPTION: 'GUEST_EXCEPTION',
  SYNTAX_ERROR: 'SYNTAX_ERROR',
  CPU_TIME_LIMIT: 'CPU_TIME_LIMIT',
  WALL_TIME_LIMIT: 'WALL_TIME_LIMIT',
  MEMORY_LIMIT: 'MEMORY_LIMIT',
  STACK_OVERFLOW: 'STACK_OVERFLOW',
  OUTPUT_LIMIT: 'OUTPUT_LIMIT',
  RESULT_NOT_SERIALIZABLE: 'RESULT_NOT_SERIALIZABLE',
  RESULT_TOO_DEEP: 'RESULT_TOO_DEEP',
  UNSETTLED_PROMISE: 'UNSETTLED_PROMISE',
  IMPORT_NOT_ALLOWED: 'IMPORT_NOT_ALLOWED',
  WORKER_CRASHED: 'WORKER_CRASHED',
  /** QuickJS itself faulted (an emscripten abort) while running the guest; the module was discarded. */
  ENGINE_FAULT: 'ENGINE_FAULT',
  /** A container-engine command exited with a status other than 0 (the record's `exitCode`). */
  EXIT_NONZERO: 'EXIT_NONZERO',
  /** A container-engine command was ended by a signal it did not get from Cordon (`SIGSEGV`, its own `kill`). */
  KILLED_BY_SIGNAL: 'KILLED_BY_SIGNAL',
  /** A container-engine command wrote a file beyond the largest file size the profile allows. */
  FILE_SIZE_LIMIT: 'FILE_SIZE_LIMIT',
  /**
   * The service restarted while the execution was running and it could not be resumed; also the
   * code of a binding call a resumed execution may not repeat (its outcome was left unknown and it is
   * not replay-safe, or the run left its journal).
   */
  INTERRUPTED: 'INTERRUPTED',
  CANCELLED: 'CANCELLED',
} as const
export type GuestErrorCode = (typeof GuestErrorCode)[keyof typeof GuestErrorCode]

export interface GuestError {
  code: GuestErrorCode
  message: string
}

export interface Usage {
  cpuMs: number
  wallMs: number
  memoryBytes: number
}

/**
 * A file a container-engine command left in `/workspace` (new or changed): its content inline as
 * UTF-8 text or base64, or `omitted` with the reason when it did not fit the record's file budget.
 */
export interface OutputFile {
  /** Absolute, under `/workspace`. */
  path: string
  size: number
  encoding?: 'utf8' | 'base64'
  content?: string
  /** Too large for the record's budget, past the count, or a name that is not clean UTF-8 text. */
  omitted?: 'size' | 'count' | 'name'
}

/** What an engine reports for one run: everything of the record that the engine knows. */
export interface RunOutcome {
  status: ExecutionStatus
  result: JsonValue
  stdout: string
  stderr: string
  error: GuestError | null
  usage: Usage
  /** Container engine only: the command's exit status (null when a signal ended it). */
  exitCode?: number | null
  /** Container engine only: files the command left in `/workspace`. */
  files?: OutputFile[]
}

/** The public execution record (DESIGN.md, contract v1), answered with 200 whatever the guest did. */
export interface ExecutionRecord extends RunOutcome {
  id: string
  agent: string
  engine: EngineName
  language: Language
  createdAt: string
  finishedAt: string | null
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

/** Which languages each engine can run at all (a profile may allow fewer). */
export const ENGINE_LANGUAGES: Readonly<Record<EngineName, readonly Language[]>> = {
  quickjs: ['javascript', 'typescript'],
  isolate: ['javascript', 'typescript'],
  container: ['python', 'bash'],
}
