import type { EngineName, Language, RunOutcome } from '@cordon/contracts'
import type { Access, Limits } from '@cordon/policy'
import type { BindingCall, BindingHost, BindingReply, GuestGrants } from './bridge/bridge.ts'
import type { OutputListener } from './output-buffer.ts'

/**
 * One unit of guest work as it travels to a worker process: plain data only. `inputJSON` is the
 * guest's `input` as JSON text, parsed afresh inside the guest. `tenantKey` keeps engine state of one
 * tenant away from every other (engines never reuse an instance across keys).
 */
export interface RunJob {
  engine: EngineName
  language: Language
  code: string
  inputJSON: string
  limits: Limits
  tenantKey: string
  /** The globals the guest gets (default: none but `console` and `input`). */
  grants?: GuestGrants
  /** Container engine: the sandbox's `/workspace` (default: none) and the files put in it first. */
  workspace?: WorkspaceSpec
}

/** A container sandbox's `/workspace`: how the profile lets the command use it, its size, its input files. */
export interface WorkspaceSpec {
  access: Access
  quotaBytes: number
  /** Paths relative to `/workspace`; content as base64. */
  files: { path: string; content: string }[]
}

/**
 * What runs jobs for the harness: on Node, the `Supervisor` (worker processes, limits enforced from
 * outside); on another runtime, whatever runs an engine there. Queues the job and answers its outcome;
 * throws `CordonError` synchronously when it cannot take it (QUEUE_FULL, SHUTTING_DOWN). Aborting
 * `signal` cancels the job; its binding calls go to `host`.
 */
export interface JobRunner {
  run(job: RunJob, tenant: string, signal?: AbortSignal, host?: BindingHost): Promise<RunOutcome>
  /**
   * Why this runner cannot take a job of this engine, language and limits, or null when it can (a
   * runtime may lack a language, or cap memory below what a profile gives). Asked before a job is made.
   */
  refusal?(
    engine: EngineName,
    language: Language,
    limits: Pick<Limits, 'memoryMb' | 'outputBytes'>,
  ): string | null
}

/** Carries one guest binding call to the host and back (in a worker: over IPC to the supervisor). */
export type BindingChannel = (call: BindingCall) => Promise<BindingReply>

/**
 * An engine runs one job to completion and reports the outcome as a value: a guest exception, a
 * timeout or a memory kill is a `RunOutcome` status, never a thrown host error. Engines enforce the
 * job's limits themselves as a first line; the supervisor enforces wall time and RSS from outside.
 */
export interface Engine {
  readonly name: EngineName
  /**
   * `signal` stops the run early (a tool whose caller ended); its outcome is then of no interest.
   * `output` hears the guest's stdout and stderr as they are kept, where the engine can tell (the
   * outcome still carries all of it).
   */
  run(
    job: RunJob,
    channel?: BindingChannel,
    signal?: AbortSignal,
    output?: OutputListener,
  ): Promise<RunOutcome>
  /** Releases everything the engine holds (wasm modules, isolates). */
  dispose(): void
}
