import type { EngineName, Language, RunOutcome } from '@cordon/contracts'
import type { Limits } from '@cordon/policy'

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
}

/**
 * An engine runs one job to completion and reports the outcome as a value: a guest exception, a
 * timeout or a memory kill is a `RunOutcome` status, never a thrown host error. Engines enforce the
 * job's limits themselves as a first line; the supervisor enforces wall time and RSS from outside.
 */
export interface Engine {
  readonly name: EngineName
  run(job: RunJob): Promise<RunOutcome>
  /** Releases everything the engine holds (wasm modules, isolates). */
  dispose(): void
}
