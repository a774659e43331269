export { CLOUDFLARE_DOH, dohResolver } from './bindings/egress/doh-resolver.ts'
export {
  DEFAULT_EGRESS_LIMITS,
  type EgressLimits,
  type EgressOptions,
  type Resolver,
  systemResolver,
} from './bindings/egress/egress-options.ts'
export { fetchTransport } from './bindings/egress/fetch-transport.ts'
export type { EgressTransport } from './bindings/egress/transport.ts'
export type { ToolInputChecker } from './bindings/tool-input.ts'
export { BUILTIN_PROFILE_FILES } from './builtin-profile-files.ts'
export { type BuiltinProfile, builtinProfilesFrom } from './builtins.ts'
export { type EventLog, type ExecutionEvent, MAX_LISTENERS } from './execution-events.ts'
export {
  type EnvSecrets,
  type ExecuteRequest,
  Harness,
  type HarnessOptions,
  type ReviewTarget,
  type RunOptions,
} from './harness.ts'
export type { AgentProfiles, ProfileView } from './profile-catalog.ts'
export {
  AgentRuns,
  CONVERSATION_ID,
  MAX_CONVERSATION_RUNS,
  MAX_RUN_MESSAGE_CHARS,
  MAX_RUNNING_RUNS,
  RUN_ID,
  type StartRunRequest,
} from './runs/agent-runs.ts'
export {
  MODEL_PROVIDERS,
  type ModelCatalog,
  type ModelContext,
  type ModelProvider,
  type ModelSettings,
  type OpenedModel,
  PROVIDER_KEY_NAMES,
  ProviderModels,
} from './runs/model-catalog.ts'
export { MAX_RUN_LISTENERS, type RunEvent, RunEventLog, recordEvents } from './runs/run-events.ts'
export {
  DEFAULT_MAX_SESSIONS,
  DEFAULT_SESSION_IDLE_SECONDS,
  MAX_SESSION_IDLE_SECONDS,
  SESSION_FILE_MAX_BYTES,
  type SessionView,
} from './sessions.ts'
export { AGENT_BUNDLE_LIMITS, agentBundleDocument } from './skills/agent-bundle.ts'
export type { ArchiveKind } from './skills/archive.ts'
export type { SqlDatabase, SqlStatement } from './storage/sql.ts'
export { SqlStore } from './storage/sql-store.ts'
export type {
  AuditFilter,
  AuditRecord,
  SecretInfo,
  Store,
  StoredDocument,
} from './storage/store.ts'
