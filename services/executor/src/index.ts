export * from './portable.ts'

import type { EngineName } from '@cordon/contracts'
import { sandboxAvailability } from './engines/container/sandbox.ts'

export { ContainerEngine } from './engines/container/container-engine.ts'
export type { FileReply, WorkspaceEntry } from './engines/container/init-messages.ts'
export { sandboxAvailability } from './engines/container/sandbox.ts'
export {
  SANDBOX_PROTOCOL_VERSION,
  type SandboxProtocolOptions,
  type SandboxProtocolServer,
  startSandboxProtocolServer,
} from './engines/container/sandbox-protocol.ts'
export { MAX_WAITING_OPERATIONS, SandboxSessions, type SessionSandbox } from './engines/container/sessions.ts'
export { IsolateEngine } from './engines/isolate/isolate-engine.ts'
export { MAX_RESULT_DEPTH } from './engines/quickjs/classify.ts'
export { QUICKJS_STACK_BYTES, QuickJSEngine } from './engines/quickjs/quickjs-engine.ts'
export { nodeQuickJSBuild, nodeQuickJSOptions } from './engines/quickjs/quickjs-node-build.ts'
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
