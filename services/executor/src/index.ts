export {
  BINDING_KINDS,
  BINDING_OPERATIONS,
  type BindingCall,
  type BindingFailure,
  type BindingHost,
  type BindingKind,
  type BindingReply,
  BRIDGE_LIMITS,
  failure,
  type GuestGrants,
  type NestedRunner,
  NO_GRANTS,
} from './bridge/bridge.ts'
export type { BindingChannel, Engine, JobRunner, RunJob, WorkspaceSpec } from './engine.ts'

import type { EngineName } from '@cordon/contracts'
import type { Limits } from '@cordon/policy'
import { sandboxAvailability } from './engines/container/sandbox.ts'
import { MIN_ISOLATE_MEMORY_MB } from './engines/isolate/prepared-isolate.ts'

export { ContainerEngine } from './engines/container/container-engine.ts'
export type { FileReply, WorkspaceEntry } from './engines/container/init-messages.ts'
export { sandboxAvailability } from './engines/container/sandbox.ts'
export { MAX_WAITING_OPERATIONS, SandboxSessions, type SessionSandbox } from './engines/container/sessions.ts'
export { IsolateEngine } from './engines/isolate/isolate-engine.ts'
export { MAX_RESULT_DEPTH } from './engines/quickjs/classify.ts'
export { MAX_REPLY_BYTES_PER_RUN, MAX_REPLY_TEXT } from './engines/quickjs/guest-glue.ts'
export { QUICKJS_STACK_BYTES, QuickJSEngine } from './engines/quickjs/quickjs-engine.ts'
export { Supervisor, type SupervisorOptions, type SupervisorStats } from './supervisor/supervisor.ts'

/** Engines this build can always run locally. */
export const AVAILABLE_ENGINES = ['quickjs', 'isolate'] as const

/**
 * The engines this machine can run: the in-process ones, and `container` where bubblewrap, cgroups
 * and user namespaces let a test sandbox run (checked once per process). `problems` says why an
 * engine is missing, for the operator.
 */
export function availableEngines(): { engines: EngineName[]; problems: Partial<Record<EngineName, string>> } {
  const container = sandboxAvailability()
  return container.ok
    ? { engines: [...AVAILABLE_ENGINES, 'container'], problems: {} }
    : { engines: [...AVAILABLE_ENGINES], problems: { container: container.problem } }
}

/**
 * Why `engine` cannot run under these limits as stated, or null when it can: isolated-vm's smallest
 * heap is 8 MiB, so the isolate engine refuses a smaller `memoryMb` rather than quietly granting more.
 */
export function engineLimitProblem(engine: EngineName, limits: Pick<Limits, 'memoryMb'>): string | null {
  if (engine === 'isolate' && limits.memoryMb < MIN_ISOLATE_MEMORY_MB) {
    return `the isolate engine needs memoryMb of at least ${MIN_ISOLATE_MEMORY_MB} (the profile gives ${limits.memoryMb})`
  }
  return null
}
