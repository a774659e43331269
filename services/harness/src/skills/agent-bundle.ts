import { CordonError, ErrorCode, type Issue } from '@cordon/contracts'
import { type DocumentFormat, parseDocument, parseSkillMarkdown, SkillSchema } from '@cordon/policy'
import { invalid } from '../profile-catalog.ts'
import { type ArchiveFile, type ArchiveKind, type ArchiveLimits, readArchive } from './archive.ts'

/** The agent file a bundle holds at its root, by name, and its format. */
export const AGENT_FILES: Readonly<Record<string, DocumentFormat>> = {
  'agent.yaml': 'yaml',
  'agent.yml': 'yaml',
  'agent.json': 'json',
  'AGENT.md': 'markdown',
}

/**
 * Bounds of an uploaded agent bundle, above what a valid agent can hold (its skills' files are
 * bounded again, and more tightly, when the agent is validated).
 */
export const AGENT_BUNDLE_LIMITS: ArchiveLimits = {
  maxEntries: 256,
  maxTotalBytes: 4 * 1024 * 1024,
  maxPathLength: 512,
}

export type BundleResult = { ok: true; document: Record<string, unknown> } | { ok: false; issues: Issue[] }

const MAX_ISSUES = 20
const SKILL_PATH = /^skills\/([^/]+)\/(.+)$/
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * The agent document an archive's files declare. The bundle holds exactly one agent file at its root
 * (`agent.yaml`, `agent.yml`, `agent.json`, or `AGENT.md`: YAML front matter, the body being the
 * instructions) and, under `skills/<name>/`, one `SKILL.md` per skill with that skill's other files,
 * which become its `files` (UTF-8 text as `utf8`, anything else as `base64`). Bundled skills follow the
 * agent file's inline ones; a name declared both ways is an issue, and so is any other file (nothing
 * in an upload is dropped silently). Issue paths name the file in the bundle, and after a `:` the
 * place inside it (`skills/pdf/SKILL.md:$.name`). The document is not validated as an agent here:
 * storing it does that. Pure.
 */
export function agentFromBundle(files: readonly ArchiveFile[]): BundleResult {
  const issues: Issue[] = []
  const agentFiles = files.filter((file) => Object.hasOwn(AGENT_FILES, file.path))
  const folders = new Map<string, ArchiveFile[]>()
  for (const file of files) {
    if (Object.hasOwn(AGENT_FILES, file.path)) continue
    const match = SKILL_PATH.exec(file.path)
    if (match === null) {
      issues.push({
        path: file.path,
        message: `is neither the agent file (${Object.keys(AGENT_FILES).join(', ')}) nor inside skills/<name>/`,
      })
      continue
    }
    const folder = match[1] as string
    folders.set(folder, [...(folders.get(folder) ?? []), { path: match[2] as string, data: file.data }])
  }
  const skills: Record<string, unknown>[] = []
  for (const folder of [...folders.keys()].sort()) {
    const skill = bundledSkill(folder, folders.get(folder) ?? [])
    if (skill.ok) skills.push(skill.skill)
    else issues.push(...skill.issues)
  }
  const [agentFile, ...others] = agentFiles
  if (agentFile === undefined || others.length > 0) {
    const found = agentFiles.map((file) => file.path).join(', ')
    issues.unshift({
      path: '$',
      message:
        agentFile === undefined
          ? `the bundle holds no agent file; put one of ${Object.keys(AGENT_FILES).join(', ')} at its root`
          : `the bundle holds several agent files (${found}); keep one`,
    })
    return { ok: false, issues: issues.slice(0, MAX_ISSUES) }
  }
  const agent = agentDocument(agentFile)
  if (!agent.ok) return { ok: false, issues: [...agent.issues, ...issues].slice(0, MAX_ISSUES) }
  issues.push(...inlineClashes(agentFile.path, agent.document, skills))
  if (issues.length > 0) return { ok: false, issues: issues.slice(0, MAX_ISSUES) }
  if (skills.length === 0) return { ok: true, document: agent.document }
  const inline = (agent.document.skills ?? []) as unknown[]
  return { ok: true, document: { ...agent.document, skills: [...inline, ...skills] } }
}

/** A value, or the issues that stand in its way. */
type Checked<T> = ({ ok: true } & T) | { ok: false; issues: Issue[] }

/** Largest agent file in a bundle: what a declaration sent on its own may be (the default body limit). */
const MAX_AGENT_FILE_BYTES = 1024 * 1024

function agentDocument(file: ArchiveFile): Checked<{ document: Record<string, unknown> }> {
  if (file.data.length > MAX_AGENT_FILE_BYTES) {
    const message = `is ${file.data.length} bytes; an agent file may have at most ${MAX_AGENT_FILE_BYTES}`
    return { ok: false, issues: [{ path: file.path, message }] }
  }
  const text = decode(file.data)
  if (text === null) return { ok: false, issues: [{ path: file.path, message: 'is not UTF-8 text' }] }
  const parsed = parseDocument(text, AGENT_FILES[file.path] ?? 'yaml')
  if (!parsed.ok) return { ok: false, issues: [{ path: file.path, message: parsed.message }] }
  const value = parsed.value
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, issues: [{ path: `${file.path}:$`, message: 'must be an object' }] }
  }
  return { ok: true, document: value as Record<string, unknown> }
}

/** A bundled skill's name may not also be declared inline, and inline skills must be a list to add to. */
function inlineClashes(
  agentPath: string,
  document: Record<string, unknown>,
  skills: Record<string, unknown>[],
): Issue[] {
  if (skills.length === 0 || document.skills === undefined) return []
  if (!Array.isArray(document.skills)) {
    return [
      { path: `${agentPath}:$.skills`, message: 'must be a list to which the bundled skills are added' },
    ]
  }
  const issues: Issue[] = []
  for (const [i, inline] of (document.skills as unknown[]).entries()) {
    const name = (inline as { name?: unknown } | null)?.name
    if (typeof name === 'string' && skills.some((skill) => skill.name === name)) {
      issues.push({
        path: `skills/${name}/SKILL.md`,
        message: `declares the skill "${name}", which ${agentPath} also declares inline ($.skills[${i}]); declare it once`,
      })
    }
  }
  return issues
}

/** One `skills/<folder>/` of the bundle as a skill: its SKILL.md and its other files. */
function bundledSkill(
  folder: string,
  files: readonly ArchiveFile[],
): Checked<{ skill: Record<string, unknown> }> {
  const at = `skills/${folder}/SKILL.md`
  const manifest = files.find((file) => file.path === 'SKILL.md')
  if (manifest === undefined)
    return { ok: false, issues: [{ path: `skills/${folder}/`, message: 'has no SKILL.md' }] }
  const text = decode(manifest.data)
  if (text === null) return { ok: false, issues: [{ path: at, message: 'is not UTF-8 text' }] }
  const parsed = parseSkillMarkdown(text, { folder })
  if (!parsed.ok)
    return { ok: false, issues: parsed.issues.map((issue) => ({ ...issue, path: `${at}:${issue.path}` })) }
  const { body, ...front } = parsed.skill
  const resources = files.filter((file) => file.path !== 'SKILL.md').map(resourceFile)
  const skill = {
    ...front,
    ...(body.length > 0 ? { body } : {}),
    ...(resources.length > 0 ? { files: resources } : {}),
  }
  const checked = SkillSchema.safeParse(skill)
  if (checked.success) return { ok: true, skill }
  const issues = checked.error.issues.slice(0, MAX_ISSUES).map((issue) => {
    const [key, index] = issue.path
    const file = key === 'files' && typeof index === 'number' ? resources[index] : undefined
    const where =
      file !== undefined ? `skills/${folder}/${file.path}` : key === 'files' ? `skills/${folder}/` : at
    return { path: where, message: issue.message }
  })
  return { ok: false, issues }
}

function resourceFile(file: ArchiveFile): { path: string; content: string; encoding: 'utf8' | 'base64' } {
  const text = decode(file.data)
  return text !== null && !text.includes('\0')
    ? { path: file.path, content: text, encoding: 'utf8' }
    : { path: file.path, content: base64(file.data), encoding: 'base64' }
}

function decode(data: Uint8Array): string | null {
  try {
    return utf8.decode(data)
  } catch {
    return null
  }
}

function base64(data: Uint8Array): string {
  let binary = ''
  for (let at = 0; at < data.length; at += 0x8000)
    binary += String.fromCharCode(...data.subarray(at, at + 0x8000))
  return btoa(binary)
}

/**
 * Reads an uploaded agent bundle (`readArchive` with `AGENT_BUNDLE_LIMITS`, then `agentFromBundle`) into
 * the agent document to store. An archive that does not parse or is unsafe to unpack is a
 * MALFORMED_BODY, one past a limit a PAYLOAD_TOO_LARGE, and a bundle that does not make an agent a
 * VALIDATION_FAILED with its issues. Nothing is stored here.
 */
export async function agentBundleDocument(
  bytes: Uint8Array,
  kind: ArchiveKind,
): Promise<Record<string, unknown>> {
  const archive = await readArchive(bytes, kind, AGENT_BUNDLE_LIMITS)
  if (!archive.ok) {
    const code = archive.problem === 'limit' ? ErrorCode.PAYLOAD_TOO_LARGE : ErrorCode.MALFORMED_BODY
    throw new CordonError(code, archive.message)
  }
  const bundle = agentFromBundle(archive.files)
  if (!bundle.ok) throw invalid('agent', bundle.issues)
  return bundle.document
}
