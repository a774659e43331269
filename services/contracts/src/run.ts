import type { JsonValue } from './execution.ts'

/** How a run ended, or `running`. */
export const RUN_STATUSES = ['running', 'completed', 'failed', 'budget_exceeded', 'cancelled'] as const
export type RunStatus = (typeof RUN_STATUSES)[number]

/** Why a run did not complete; carried inside its record (a 200), never as an HTTP error. */
export const RunErrorCode = {
  /** The run made as many model calls as its budget allows and the model still wanted more. */
  STEP_BUDGET: 'STEP_BUDGET',
  /** The tokens its model calls used reached the budget. */
  TOKEN_BUDGET: 'TOKEN_BUDGET',
  /** The run's wall time reached the budget. */
  TIME_BUDGET: 'TIME_BUDGET',
  /** The model provider failed (an HTTP error, a malformed answer, a network failure). */
  MODEL_ERROR: 'MODEL_ERROR',
  /** The service restarted while the run was running, and it could not be resumed. */
  INTERRUPTED: 'INTERRUPTED',
  CANCELLED: 'CANCELLED',
  /** The service failed while the run was running (its store, say); the run was ended. */
  INTERNAL: 'INTERNAL',
} as const
export type RunErrorCode = (typeof RunErrorCode)[keyof typeof RunErrorCode]

/** A tool call the model made. */
export interface RunToolCall {
  id: string
  name: string
  input: JsonValue
  /** Why the call is invalid (an unknown tool, arguments that do not parse): it is answered, never run. */
  invalid?: string
}

/** The policy's decision on a tool call (`reason` says why a denial denied). */
export interface RunToolDecision {
  effect: 'allow' | 'deny'
  code: string
  rule: string | null
  reason?: string
}

/** One journaled step of a run: a model call, or one tool call's outcome. */
export type RunStep =
  | {
      seq: number
      kind: 'model'
      text: string
      toolCalls: RunToolCall[]
      finishReason: string
      usage: { inputTokens: number; outputTokens: number }
    }
  | {
      seq: number
      kind: 'tool'
      call: { id: string; name: string }
      decision: RunToolDecision
      /** The execution that ran it, if one ran. */
      execution: string | null
      ok: boolean
      /** What the model was told (JSON). */
      output: JsonValue
      /** The skill this call activated (`activate_skill`), if it did. */
      activated?: string
    }

export interface RunUsage {
  /** Model calls made (each is a step of the budget). */
  steps: number
  toolCalls: number
  inputTokens: number
  outputTokens: number
  wallMs: number
}

/** A run of an agent: one user message answered by the agent loop, as `GET /v1/runs/{id}` shows it. */
export interface RunRecord {
  id: string
  agent: string
  conversation: string
  model: string
  status: RunStatus
  message: string
  /** The model's final text, once the run completed. */
  output: string | null
  error: { code: RunErrorCode; message: string } | null
  budget: { steps: number; tokens: number; wallMs: number; maxOutputTokens: number }
  usage: RunUsage
  steps: RunStep[]
  /** Skills the model activated in this run, in order. */
  skills: string[]
  createdAt: string
  finishedAt: string | null
  /** Times the run was resumed after the service restarted. */
  resumed: number
}
