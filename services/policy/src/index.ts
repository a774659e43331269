export {
  type AgentDeclaration,
  type AgentResult,
  AgentSchema,
  resolveInlineProfile,
  validateAgent,
} from './agent.ts'
export { type Decision, decideRun, type RunDenyCode, type RunRequest } from './decide-run.ts'
export { type DocumentFormat, type DocumentResult, parseDocument } from './documents.ts'
export { jsonPath } from './issues.ts'
export { LIMIT_CEILINGS, type Limits, LimitsSchema } from './limits.ts'
export {
  NAME_PATTERN,
  NameSchema,
  type ProfileInput,
  type ProfileResult,
  ProfileSchema,
  type ResolvedProfile,
  resolveProfile,
} from './profile.ts'
