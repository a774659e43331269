import { ENGINES, type EngineName, type Issue, LANGUAGES, type Language } from '@cordon/contracts'
import { z } from 'zod'
import { toIssues } from './issues.ts'
import { type Limits, LimitsSchema } from './limits.ts'

export const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/
export const NameSchema = z
  .string()
  .regex(NAME_PATTERN, 'must be 1-63 characters of a-z, 0-9, "-" or "_", starting with a letter or digit')

const uniqueList = <T extends string>(values: readonly [T, ...T[]], what: string) =>
  z
    .array(z.enum(values))
    .min(1, `must allow at least one ${what}`)
    .max(values.length)
    .refine((list) => new Set(list).size === list.length, `lists a ${what} twice`)

/**
 * A sandbox profile as written by a user (YAML or JSON). Unknown keys are errors: a misspelt or
 * not-yet-supported section must never be silently ignored, because ignoring a restriction widens.
 */
export const ProfileSchema = z.strictObject({
  name: NameSchema,
  description: z.string().max(1000).optional(),
  engines: uniqueList(ENGINES, 'engine'),
  languages: uniqueList(LANGUAGES, 'language'),
  limits: LimitsSchema,
})

export type ProfileInput = z.infer<typeof ProfileSchema>

declare const resolvedBrand: unique symbol

/**
 * A profile that passed validation, with every limit explicit. Only this package mints it; engines
 * and the harness accept nothing else.
 */
export interface ResolvedProfile {
  readonly name: string
  readonly description?: string
  readonly engines: readonly EngineName[]
  readonly languages: readonly Language[]
  readonly limits: Readonly<Limits>
  readonly [resolvedBrand]: true
}

export type ProfileResult = { ok: true; profile: ResolvedProfile } | { ok: false; issues: Issue[] }

/** Validates a parsed profile document and resolves it into its effective form. Pure. */
export function resolveProfile(document: unknown): ProfileResult {
  const parsed = ProfileSchema.safeParse(document)
  if (!parsed.success) return { ok: false, issues: toIssues(parsed.error) }
  const { name, description, engines, languages, limits } = parsed.data
  const profile = {
    name,
    ...(description === undefined ? {} : { description }),
    engines: Object.freeze([...engines]),
    languages: Object.freeze([...languages]),
    limits: Object.freeze({ ...limits }),
  }
  return { ok: true, profile: Object.freeze(profile) as unknown as ResolvedProfile }
}
