import { type Issue, LANGUAGES } from '@cordon/contracts'
import { z } from 'zod'
import { toIssues } from './issues.ts'
import { NameSchema, type ProfileResult, ProfileSchema, resolveProfile } from './profile.ts'

const KiB = 1024

const ToolSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_-]{0,63}$/, 'must be an identifier of at most 64 characters'),
  description: z.string().max(2 * KiB),
  input: z.record(z.string().max(256), z.unknown()).default({ type: 'object' }),
  language: z.enum(LANGUAGES),
  code: z
    .string()
    .min(1)
    .max(256 * KiB),
  replay: z.enum(['safe', 'unsafe']).optional(),
})

const SkillSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9]+(?:-[a-z0-9]+)*$/, 'must be lowercase words joined by "-"')
    .max(64),
  description: z.string().min(1).max(1024),
  body: z
    .string()
    .max(64 * KiB)
    .optional(),
})

const InlineProfileSchema = ProfileSchema.extend({ name: NameSchema.optional() })

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
})

export type AgentDeclaration = z.infer<typeof AgentSchema>

export type AgentResult = { ok: true; agent: AgentDeclaration } | { ok: false; issues: Issue[] }

/** Validates a parsed agent document. Pure. */
export function validateAgent(document: unknown): AgentResult {
  const parsed = AgentSchema.safeParse(document)
  return parsed.success ? { ok: true, agent: parsed.data } : { ok: false, issues: toIssues(parsed.error) }
}

/** The profile an inline `sandbox` declares, named after its agent when it has no name of its own. */
export function resolveInlineProfile(agent: AgentDeclaration): ProfileResult | null {
  if (typeof agent.sandbox === 'string') return null
  return resolveProfile({ ...agent.sandbox, name: agent.sandbox.name ?? agent.name })
}

function unique(names: string[]): boolean {
  return new Set(names).size === names.length
}
