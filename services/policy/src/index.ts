export {
  type AgentDeclaration,
  type AgentResult,
  AgentSchema,
  type InlineProfileName,
  inlineProfileNames,
  RUN_BUDGET_CEILINGS,
  RUN_BUDGET_DEFAULTS,
  type RunBudget,
  RunBudgetSchema,
  resolveInlineProfile,
  resolveInlineToolProfile,
  SKILL_FILE_MAX_BYTES,
  SKILL_FILES_MAX_BYTES,
  SKILL_MAX_FILES,
  type Skill,
  SkillSchema,
  validateAgent,
} from './agent.ts'
export { decideSecret, decideTool, type SecretDenyCode, type ToolDenyCode } from './decide-grants.ts'
export { decideRun, type RunDenyCode, type RunRequest } from './decide-run.ts'
export { allowedTools, decideRunTool, RUN_TOOLS, type RunToolDenyCode } from './decide-run-tool.ts'
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
export {
  type DocumentFormat,
  type DocumentResult,
  type FrontMatterResult,
  parseDocument,
  parseFrontMatter,
} from './documents.ts'
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
export {
  SECRET_CONTENT_RULES,
  SECRET_FILE_RULES,
  type SecretRule,
  secretContentRule,
  secretFileRule,
} from './secret-files.ts'
export { skillContentIssues } from './skill-content.ts'
export { parseSkillMarkdown, type SkillDocument, type SkillMarkdownResult } from './skills.ts'
