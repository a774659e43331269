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
export type { BindingChannel, Engine, RunJob } from './engine.ts'
export { IsolateEngine } from './engines/isolate/isolate-engine.ts'
export { MAX_RESULT_DEPTH } from './engines/quickjs/classify.ts'
export { MAX_REPLY_BYTES_PER_RUN, MAX_REPLY_TEXT } from './engines/quickjs/guest-glue.ts'
export { QUICKJS_STACK_BYTES, QuickJSEngine } from './engines/quickjs/quickjs-engine.ts'
export { Supervisor, type SupervisorOptions, type SupervisorStats } from './supervisor/supervisor.ts'

/** Engines this build can run locally. */
export const AVAILABLE_ENGINES = ['quickjs', 'isolate'] as const
