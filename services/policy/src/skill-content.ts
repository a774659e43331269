import type { Issue } from '@cordon/contracts'
import type { AgentDeclaration, Skill } from './agent.ts'
import { allowedTools, RUN_TOOLS } from './decide-run-tool.ts'
import { secretContentRule, secretFileRule } from './secret-files.ts'
import { SKILL_FILE_MAX_BYTES, SKILL_FILES_MAX_BYTES } from './skill-limits.ts'

const BUILT_IN = Object.values(RUN_TOOLS)
const MAX_ISSUES = 20
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/**
 * What the schema cannot see in an agent's skills: each file's decoded size (at most
 * `SKILL_FILE_MAX_BYTES`) and all files' together (at most `SKILL_FILES_MAX_BYTES`), base64 that does
 * not decode, files that look like credentials by name or by content (each issue names its rule; see
 * `SECRET_FILE_RULES`, `SECRET_CONTENT_RULES`), and `allowed-tools` naming a tool that is neither the
 * agent's nor a built-in run tool (`RUN_TOOLS`). Skills are stored and shown to models: a secret in one would leak
 * to every run, so none is let in. Issues name the file, never echo its content. Pure.
 */
export function skillContentIssues(agent: AgentDeclaration): Issue[] {
  const issues: Issue[] = []
  const tools = new Set<string>([...BUILT_IN, ...(agent.tools ?? []).map((tool) => tool.name)])
  // Runs offer `activate_skill` to load skills: a tool of the agent's under that name would take its place.
  const shadow = (agent.tools ?? []).findIndex((tool) => tool.name === RUN_TOOLS.activateSkill)
  if (shadow >= 0 && (agent.skills ?? []).length > 0) {
    issues.push({
      path: `$.tools[${shadow}].name`,
      message: `"${RUN_TOOLS.activateSkill}" is how runs load this agent's skills; give the tool another name`,
    })
  }
  let total = 0
  for (const [i, skill] of (agent.skills ?? []).entries()) {
    const at = `$.skills[${i}]`
    const unknown = unknownTools(skill, tools)
    if (unknown.length > 0) {
      const names = unknown.map((name) => `"${name.slice(0, 64)}"`).join(', ')
      issues.push({
        path: `${at}.allowed-tools`,
        message: `names ${names}, which ${unknown.length === 1 ? 'is' : 'are'} neither a tool of this agent nor a built-in run tool (${BUILT_IN.join(', ')})`,
      })
    }
    const inBody = skill.body === undefined ? null : secretContentRule(skill.body)
    if (inBody !== null) issues.push({ path: `${at}.body`, message: holds(`skill "${skill.name}"`, inBody) })
    // The front matter too: the description goes into every run's system prompt.
    const fields: [string, string | undefined][] = [
      ['description', skill.description],
      ['license', skill.license],
      ['compatibility', skill.compatibility],
      ...Object.entries(skill.metadata ?? {}).map(([key, value]): [string, string] => [
        `metadata.${key}`,
        value,
      ]),
    ]
    for (const [field, value] of fields) {
      const found = value === undefined ? null : secretContentRule(value)
      if (found !== null) {
        issues.push({ path: `${at}.${field}`, message: holds(`skill "${skill.name}"`, found) })
      }
    }
    for (const [j, file] of (skill.files ?? []).entries()) {
      const fileAt = `${at}.files[${j}]`
      const named = secretFileRule(file.path)
      if (named !== null) {
        issues.push({
          path: `${fileAt}.path`,
          message: `"${file.path}" looks like ${named.what} (rule "${named.id}"); never ship credentials in a skill`,
        })
      }
      const decoded = decode(file)
      if (decoded === null) {
        issues.push({ path: `${fileAt}.content`, message: `"${file.path}" is not valid base64` })
        continue
      }
      total += decoded.bytes
      if (decoded.bytes > SKILL_FILE_MAX_BYTES) {
        issues.push({
          path: `${fileAt}.content`,
          message: `"${file.path}" is ${decoded.bytes} bytes; a skill file may have at most ${SKILL_FILE_MAX_BYTES}`,
        })
      }
      const inside = secretContentRule(decoded.text)
      if (inside !== null)
        issues.push({ path: `${fileAt}.content`, message: holds(`"${file.path}"`, inside) })
    }
  }
  if (total > SKILL_FILES_MAX_BYTES) {
    issues.push({
      path: '$.skills',
      message: `the skills' files add up to ${total} bytes; an agent's may add up to at most ${SKILL_FILES_MAX_BYTES}`,
    })
  }
  return issues.slice(0, MAX_ISSUES)
}

function holds(what: string, rule: { id: string; what: string }): string {
  return `${what} holds ${rule.what} (rule "${rule.id}"); never ship credentials in a skill`
}

/**
 * Names in `allowed-tools` that `tools` lacks, each once. A name is matched whole, as runs match it
 * (`decideRunTool`): Claude Code's `Bash(git:*)` form names no tool of Cordon's.
 */
function unknownTools(skill: Skill, tools: ReadonlySet<string>): string[] {
  return [...new Set(allowedTools(skill['allowed-tools']).filter((name) => !tools.has(name)))]
}

/** A file's decoded size and its text (base64 content decoded to one character per byte), or null. */
function decode(file: NonNullable<Skill['files']>[number]): { bytes: number; text: string } | null {
  if (file.encoding === 'utf8') return { bytes: utf8Length(file.content), text: file.content }
  if (!BASE64.test(file.content)) return null
  const text = atob(file.content)
  return { bytes: text.length, text }
}

/** UTF-8 length of a string (a lone surrogate counts as U+FFFD, 3 bytes, as TextEncoder writes it). */
function utf8Length(text: string): number {
  let bytes = 0
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i)
    if (code < 0x80) bytes += 1
    else if (code < 0x800) bytes += 2
    else if (code >= 0xd800 && code <= 0xdbff && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4
      i++
    } else bytes += 3
  }
  return bytes
}
