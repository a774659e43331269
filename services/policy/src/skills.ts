import type { Issue } from '@cordon/contracts'
import type { z } from 'zod'
import { SkillSchema } from './agent.ts'
import { parseFrontMatter } from './documents.ts'
import { jsonPath, protoKeyPath, toIssues } from './issues.ts'

/** A skill as its SKILL.md declares it: the front matter's fields and the Markdown body. */
export type SkillDocument = Omit<z.infer<typeof SkillSchema>, 'files'> & { body: string }

export type SkillMarkdownResult = { ok: true; skill: SkillDocument } | { ok: false; issues: Issue[] }

/** Longest SKILL.md, and longest front matter in it, in characters. */
export const MAX_SKILL_MARKDOWN_CHARS = 80 * 1024
export const MAX_FRONT_MATTER_CHARS = 16 * 1024

/** The fields SKILL.md front matter may hold (the Agent Skills specification's); any other is an error. */
const FrontMatterSchema = SkillSchema.omit({ files: true, body: true })
const FRONT_MATTER_KEYS = Object.keys(FrontMatterSchema.shape)

/**
 * Parses a SKILL.md (agentskills.io): YAML front matter between `---` lines, then the Markdown body
 * the model reads when it activates the skill. The YAML is parsed as every declaration is (one
 * document, unique keys, bounded aliases and depth, no custom tags); `__proto__` and keys the
 * specification does not define are refused. `name` is 1-64 characters of a-z, 0-9 and single inner
 * hyphens, and when `folder` is given (the skill's directory) it must equal it, as the specification
 * requires. Issue paths point into the front matter (`$.name`); the body is `$.body`. Pure.
 */
export function parseSkillMarkdown(text: string, options: { folder?: string } = {}): SkillMarkdownResult {
  // Bounded before the YAML is parsed (its unique-key check grows with the square of the keys).
  if (text.length > MAX_SKILL_MARKDOWN_CHARS) {
    const message = `SKILL.md has ${text.length} characters; at most ${MAX_SKILL_MARKDOWN_CHARS} (a 64 KiB body and its front matter)`
    return { ok: false, issues: [{ path: '$', message }] }
  }
  const end = text.indexOf('\n---', 3)
  if (end > MAX_FRONT_MATTER_CHARS) {
    const message = `the front matter has ${end} characters; at most ${MAX_FRONT_MATTER_CHARS}`
    return { ok: false, issues: [{ path: '$', message }] }
  }
  const parsed = parseFrontMatter(text)
  if (!parsed.ok) return { ok: false, issues: [{ path: '$', message: parsed.message }] }
  const proto = protoKeyPath(parsed.front)
  if (proto !== null) {
    return { ok: false, issues: [{ path: proto, message: 'the key "__proto__" is not allowed' }] }
  }
  if ('body' in parsed.front) {
    const message = 'is not a front-matter field: the body is the Markdown after the front matter'
    return { ok: false, issues: [{ path: '$.body', message }] }
  }
  const unknown = Object.keys(parsed.front).filter((key) => !FRONT_MATTER_KEYS.includes(key))
  if (unknown.length > 0) {
    const message = `is not a SKILL.md front-matter field (${FRONT_MATTER_KEYS.join(', ')})`
    return {
      ok: false,
      issues: unknown.slice(0, 20).map((key) => ({ path: jsonPath([key.slice(0, 100)]), message })),
    }
  }
  const front = FrontMatterSchema.safeParse(parsed.front)
  const issues = front.success ? [] : toIssues(front.error)
  const body = SkillSchema.shape.body.safeParse(parsed.body)
  if (!body.success) issues.push(...toIssues(body.error).map((i) => ({ ...i, path: '$.body' })))
  if (front.success && options.folder !== undefined && front.data.name !== options.folder) {
    issues.push({
      path: '$.name',
      message: `"${front.data.name}" must equal the name of the skill's folder, "${options.folder.slice(0, 80)}"`,
    })
  }
  if (!front.success || issues.length > 0) return { ok: false, issues }
  return { ok: true, skill: { ...front.data, body: parsed.body } }
}
