import { type Issue, LANGUAGES } from '@cordon/contracts'
import { z } from 'zod'
import { protoKeyPath, toIssues } from './issues.ts'
import type { ProfileResult } from './profile.ts'
import { NAME_PATTERN, NameSchema, ProfileSchema, ToolNameSchema } from './profile-schema.ts'
import { type ResolveOptions, resolveProfile } from './resolve.ts'
import { skillContentIssues } from './skill-content.ts'
import { SKILL_FILE_MAX_BYTES, SKILL_FILES_MAX_BYTES, SKILL_MAX_FILES } from './skill-limits.ts'

const KiB = 1024

const InlineProfileSchema = ProfileSchema.extend({ name: NameSchema.optional() })

const ToolSchema = z.strictObject({
  name: ToolNameSchema,
  description: z.string().max(2 * KiB),
  input: z.record(z.string().max(256), z.unknown()).default({ type: 'object' }),
  language: z.enum(LANGUAGES),
  code: z
    .string()
    .min(1)
    .max(256 * KiB),
  replay: z.enum(['safe', 'unsafe']).optional(),
  /** The profile the tool runs under when not the agent's own; it may reach further than the agent's code. */
  sandbox: z.union([NameSchema, InlineProfileSchema]).optional(),
})

// The skill limits live apart so that skill-content.ts can use them without importing this module.
export { SKILL_FILE_MAX_BYTES, SKILL_FILES_MAX_BYTES, SKILL_MAX_FILES }

/** A skill's resource file (`scripts/`, `references/`, `assets/`...): a relative path and its content. */
const SkillFileSchema = z.strictObject({
  path: z
    .string()
    .min(1)
    .max(256)
    .regex(
      /^(?!\/)(?!.*\/\/)(?!.*\/$)(?!.*(?:^|\/)\.{1,2}(?:\/|$))[A-Za-z0-9._/-]+$/,
      'must be a relative path of letters, digits, ".", "_", "-" and "/" (no empty, "." or ".." segment)',
    ),
  content: z.string().max(Math.ceil((SKILL_FILE_MAX_BYTES * 4) / 3) + 4),
  encoding: z.enum(['utf8', 'base64']).default('utf8'),
})

/**
 * An Agent Skill (the SKILL.md format): its front matter's fields and its body, loaded only when the
 * model activates the skill. `allowed-tools` (space-delimited, as in SKILL.md) narrows the tools the
 * model may call while the skill is active.
 */
export const SkillSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, 'must be lowercase words joined by "-"')
    .max(64),
  description: z.string().min(1).max(1024),
  license: z.string().max(500).optional(),
  compatibility: z.string().min(1).max(500).optional(),
  metadata: z
    .record(z.string().max(64), z.string().max(1024))
    .refine((entries) => Object.keys(entries).length <= 64, 'may have at most 64 entries')
    .optional(),
  'allowed-tools': z
    .string()
    .max(2 * KiB)
    .regex(/^[\sA-Za-z0-9_*().:,-]*$/, 'must be tool names separated by spaces')
    .optional(),
  body: z
    .string()
    .max(64 * KiB)
    .optional(),
  files: z
    .array(SkillFileSchema)
    .max(SKILL_MAX_FILES)
    .refine((files) => unique(files.map((f) => f.path)), 'lists a file path twice')
    .optional(),
})

/** Defaults and ceilings of a run's budget (see `budget` in the agent declaration). */
export const RUN_BUDGET_DEFAULTS = {
  steps: 16,
  tokens: 200_000,
  wallMs: 300_000,
  maxOutputTokens: 4096,
} as const
export const RUN_BUDGET_CEILINGS = {
  steps: 200,
  tokens: 10_000_000,
  wallMs: 3_600_000,
  maxOutputTokens: 128_000,
} as const

/**
 * What one run of the agent may spend: model calls (`steps`), tokens (input and output, summed over
 * its model calls), wall time, and the output tokens one model call may ask for (`maxOutputTokens`). Every field has a default; none is unlimited.
 */
export const RunBudgetSchema = z.strictObject({
  steps: z.number().int().min(1).max(RUN_BUDGET_CEILINGS.steps).default(RUN_BUDGET_DEFAULTS.steps),
  tokens: z.number().int().min(1).max(RUN_BUDGET_CEILINGS.tokens).default(RUN_BUDGET_DEFAULTS.tokens),
  wallMs: z.number().int().min(1000).max(RUN_BUDGET_CEILINGS.wallMs).default(RUN_BUDGET_DEFAULTS.wallMs),
  /** Most output tokens one model call may produce (asked of the provider; within the run's `tokens`). */
  maxOutputTokens: z
    .number()
    .int()
    .min(1)
    .max(RUN_BUDGET_CEILINGS.maxOutputTokens)
    .default(RUN_BUDGET_DEFAULTS.maxOutputTokens),
})

export type RunBudget = z.infer<typeof RunBudgetSchema>
export type Skill = z.infer<typeof SkillSchema>

/**
 * An agent declaration (Flue-style): model, sandbox profile (by name or inline), skills, tools and
 * instructions. Unknown keys are errors; every string and list is bounded.
 */
export const AgentSchema = z.strictObject({
  name: NameSchema,
  description: z
    .string()
    .max(2 * KiB)
    .optional(),
  model: z
    .string()
    .max(200)
    .regex(/^[a-z0-9][a-z0-9._-]*\/[A-Za-z0-9._:/@-]+$/, 'must be "provider/model"')
    .optional(),
  sandbox: z.union([NameSchema, InlineProfileSchema]),
  skills: z
    .array(SkillSchema)
    .max(32)
    .refine((skills) => unique(skills.map((s) => s.name)), 'lists a skill name twice')
    .optional(),
  tools: z
    .array(ToolSchema)
    .max(64)
    .refine((tools) => unique(tools.map((t) => t.name)), 'lists a tool name twice')
    .optional(),
  instructions: z
    .string()
    .max(64 * KiB)
    .optional(),
  /** What one run may spend (model calls, tokens, wall time); defaults apply to what it leaves out. */
  budget: RunBudgetSchema.optional(),
})

export type AgentDeclaration = z.infer<typeof AgentSchema>

export type AgentResult = { ok: true; agent: AgentDeclaration } | { ok: false; issues: Issue[] }

/** Validates a parsed agent document. Pure. */
export function validateAgent(document: unknown): AgentResult {
  const proto = protoKeyPath(document)
  if (proto !== null)
    return { ok: false, issues: [{ path: proto, message: 'the key "__proto__" is not allowed' }] }
  const parsed = AgentSchema.safeParse(document)
  if (!parsed.success) return { ok: false, issues: toIssues(parsed.error) }
  const issues = [...inlineNameIssues(parsed.data), ...skillContentIssues(parsed.data)]
  return issues.length > 0 ? { ok: false, issues } : { ok: true, agent: parsed.data }
}

/** An inline sandbox of an agent: where it is declared and the profile name it resolves under. */
export interface InlineProfileName {
  path: string
  name: string
}

/**
 * The names an agent's inline sandboxes resolve under: its own (its `name`, or the agent's) and each
 * tool's (its `name`, or `<agent>-<tool>`). Decisions and findings point at profiles by name, so these
 * must be valid, distinct, and (checked where profiles are known) not the name of another profile.
 */
export function inlineProfileNames(agent: AgentDeclaration): InlineProfileName[] {
  const names: InlineProfileName[] = []
  if (typeof agent.sandbox !== 'string')
    names.push({ path: '$.sandbox.name', name: agent.sandbox.name ?? agent.name })
  for (const [i, tool] of (agent.tools ?? []).entries()) {
    if (tool.sandbox !== undefined && typeof tool.sandbox !== 'string') {
      names.push({
        path: `$.tools[${i}].sandbox.name`,
        name: tool.sandbox.name ?? `${agent.name}-${tool.name}`,
      })
    }
  }
  return names
}

function inlineNameIssues(agent: AgentDeclaration): Issue[] {
  const issues: Issue[] = []
  const seen = new Set<string>()
  for (const { path, name } of inlineProfileNames(agent)) {
    if (!NAME_PATTERN.test(name)) {
      issues.push({
        path,
        message: `is required: the default "${name.slice(0, 80)}" is not a valid profile name`,
      })
    } else if (seen.has(name)) {
      issues.push({
        path,
        message: `"${name}" names another inline sandbox of this agent; give each its own name`,
      })
    }
    seen.add(name)
  }
  return issues
}

/**
 * The profile an inline `sandbox` declares, named after its agent when it has no name of its own; it
 * may extend a named profile found through `options.lookup`. Null when the sandbox is a name.
 */
export function resolveInlineProfile(
  agent: AgentDeclaration,
  options: ResolveOptions = {},
): ProfileResult | null {
  if (typeof agent.sandbox === 'string') return null
  return resolveInline({ ...agent.sandbox, name: agent.sandbox.name ?? agent.name }, options)
}

function unique(names: string[]): boolean {
  return new Set(names).size === names.length
}

/**
 * The profile an inline tool `sandbox` declares, named `<agent>-<tool>` when it has no name of its own.
 * Null when the tool has no sandbox or names a profile.
 */
export function resolveInlineToolProfile(
  agent: AgentDeclaration,
  tool: NonNullable<AgentDeclaration['tools']>[number],
  options: ResolveOptions = {},
): ProfileResult | null {
  if (tool.sandbox === undefined || typeof tool.sandbox === 'string') return null
  return resolveInline({ ...tool.sandbox, name: tool.sandbox.name ?? `${agent.name}-${tool.name}` }, options)
}

/**
 * An inline profile may not take the name of a profile `lookup` knows: decisions and findings name
 * their profile, and they must not point at another one (nor may an agent extend its namesake).
 */
function resolveInline(document: { name: string }, options: ResolveOptions): ProfileResult {
  if (options.lookup?.(document.name) !== undefined) {
    const message = `"${document.name}" is the name of an existing profile; give the inline sandbox a name of its own`
    return { ok: false, issues: [{ path: '$.name', message }] }
  }
  return resolveProfile(document, options)
}
