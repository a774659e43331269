export {
  type AgentDeclaration,
  type AgentResult,
  AgentSchema,
  type InlineProfileName,
  inlineProfileNames,
  resolveInlineProfile,
  resolveInlineToolProfile,
  validateAgent,
} from './agent.ts'
export { decideSecret, decideTool, type SecretDenyCode, type ToolDenyCode } from './decide-grants.ts'
export { decideRun, type RunDenyCode, type RunRequest } from './decide-run.ts'
export {
  type CheckedKey,
  type CheckedPath,
  decideFile,
  decideKv,
  type FileDenyCode,
  type FileOperation,
  type KvDenyCode,
  type KvOperation,
  normalisePath,
} from './decide-storage.ts'
export type { Decision } from './decision.ts'
export { type DocumentFormat, type DocumentResult, parseDocument } from './documents.ts'
export {
  type AddressDenyCode,
  type CheckedEgress,
  decideAddress,
  decideEgress,
  decideTunnel,
  type EgressDenyCode,
  type EgressRequest,
} from './egress.ts'
export { type BlockedRange, blockedRange, type IPAddress, parseIP } from './ip-address.ts'
export { jsonPath } from './issues.ts'
export { agentJSONSchema, profileJSONSchema } from './json-schema.ts'
export { LIMIT_CEILINGS, type Limits, LimitsSchema } from './limits.ts'
export type {
  ProfileResult,
  ResolvedAllowRule,
  ResolvedDenyRule,
  ResolvedFilesystem,
  ResolvedKv,
  ResolvedProfile,
  ResolvedSecret,
} from './profile.ts'
export { ruleRef } from './profile.ts'
export {
  type Access,
  FILESYSTEM_ROOT,
  NAME_PATTERN,
  NameSchema,
  type ProfileInput,
  ProfileSchema,
} from './profile-schema.ts'
export { MAX_CHAIN_LENGTH, type ResolveOptions, resolveProfile } from './resolve.ts'
export { formatReviewText } from './review/format-text.ts'
export {
  type Finding,
  type Reach,
  type ReviewReport,
  type ReviewSubject,
  RULES,
  reviewProfiles,
  SEVERITIES,
  type Severity,
} from './review/review.ts'
export { toSARIF } from './review/sarif.ts'
export { locate as locateField, type SourceLocation } from './review/source-map.ts'
