export type { Engine, RunJob } from './engine.ts'
export { MAX_RESULT_DEPTH } from './engines/quickjs/classify.ts'
export { QUICKJS_STACK_BYTES, QuickJSEngine } from './engines/quickjs/quickjs-engine.ts'
export { Supervisor, type SupervisorOptions, type SupervisorStats } from './supervisor/supervisor.ts'

/** Engines this build can run locally. */
export const AVAILABLE_ENGINES = ['quickjs'] as const
