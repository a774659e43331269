// `@cordon/executor/portable`: what the harness needs of the executor on any runtime (Node, or a
// Worker): the binding bridge's contract, the engine and runner interfaces and the engines' limits.
// No engine, no process, nothing that only Node can load.
export {
  BINDING_KINDS,
  BINDING_OPERATIONS,
  type BindingCall,
  type BindingFailure,
  type BindingHost,
  type BindingKind,
  type BindingReply,
  BRIDGE_LIMITS,
  egressStatus,
  failure,
  type GuestGrants,
  isBindingReply,
  MAX_REPLY_BYTES_PER_RUN,
  MAX_REPLY_TEXT,
  type NestedRunner,
  NO_GRANTS,
} from './bridge/bridge.ts'
export type { BindingChannel, Engine, JobRunner, RunJob, WorkspaceSpec } from './engine.ts'
export {
  EGRESS_TOKEN_VARIABLE,
  type SandboxControl,
  SandboxControlEngine,
  type SandboxLease,
  type SandboxOpener,
} from './engines/cloudflare-sandbox/sandbox-control-engine.ts'
export {
  type BridgeFactory,
  WorkerLoaderEngine,
  type WorkerLoaderEngineOptions,
  type WorkerLoaderLike,
} from './engines/worker-loader/worker-loader-engine.ts'
export { type InProcessEngine, InProcessRunner, type InProcessRunnerOptions } from './in-process-runner.ts'
export { engineLimitProblem, MIN_ISOLATE_MEMORY_MB } from './limits.ts'
export type { OutputListener } from './output-buffer.ts'
