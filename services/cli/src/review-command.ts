import { readdirSync, readFileSync, statSync } from 'node:fs'
import { extname, join, relative, resolve, sep } from 'node:path'
import { parseArgs } from 'node:util'
import type { Issue } from '@cordon/contracts'
import {
  type AgentDeclaration,
  type DocumentFormat,
  formatReviewText,
  locateField,
  parseDocument,
  type ResolvedProfile,
  type ReviewSubject,
  resolveInlineProfile,
  resolveInlineToolProfile,
  resolveProfile,
  reviewProfiles,
  SEVERITIES,
  type Severity,
  toSARIF,
  validateAgent,
} from '@cordon/policy'

export interface CommandResult {
  stdout: string
  stderr: string
  exitCode: number
}

const EXTENSIONS: Record<string, DocumentFormat> = {
  '.yaml': 'yaml',
  '.yml': 'yaml',
  '.json': 'json',
  '.md': 'markdown',
}
const MAX_FILE_BYTES = 1024 * 1024
const MAX_FILES = 1000
const VERSION = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version
const DEFAULT_BUILTINS = new URL('../../../sandbox-profiles/', import.meta.url).pathname

interface Source {
  file: string
  text: string
  format: DocumentFormat
  value: unknown
}

/**
 * `cordon review`: reads profiles and agents from files and directories, resolves them (a file may
 * extend another reviewed file or a built-in profile), reviews them and renders the report. Exit code
 * 2 for bad usage or a file that does not parse or resolve, 1 when a finding reaches `--fail-on`.
 */
export function reviewCommand(argv: readonly string[], cwd = process.cwd()): CommandResult {
  let parsed: ReturnType<typeof parseOptions>
  try {
    parsed = parseOptions(argv)
  } catch (error) {
    return usage(error instanceof Error ? error.message : String(error))
  }
  const { format, failOn, builtins, paths } = parsed
  const errors: string[] = []
  const display = (file: string) => {
    const shown = relative(cwd, file)
    return shown === '' || shown.startsWith('..') ? file : shown.split(sep).join('/')
  }
  const sources: Source[] = []
  for (const file of collectFiles(
    paths.map((p) => resolve(cwd, p)),
    errors,
  )) {
    const text = readFileSync(file, 'utf8')
    const docFormat = EXTENSIONS[extname(file).toLowerCase()] ?? 'yaml'
    const doc = parseDocument(text, docFormat)
    if (!doc.ok) errors.push(`${display(file)}: ${doc.message}`)
    else sources.push({ file: display(file), text, format: docFormat, value: doc.value })
  }

  const isAgent = (s: Source) => s.format === 'markdown' || (isObject(s.value) && 'sandbox' in s.value)
  const profiles = new Map<string, unknown>()
  for (const source of sources.filter((s) => !isAgent(s))) {
    const name = isObject(source.value) ? source.value.name : undefined
    if (typeof name === 'string') {
      if (profiles.has(name)) errors.push(`${source.file}: a second profile named "${name}"`)
      profiles.set(name, source.value)
    }
  }
  const builtinDocs = loadBuiltins(builtins, builtins !== DEFAULT_BUILTINS, errors)
  const lookup = (name: string) => profiles.get(name) ?? builtinDocs.get(name)

  const subjects: ReviewSubject[] = []
  const fail = (source: Source, issues: readonly Issue[], prefix: string[] = []) => {
    for (const issue of issues.slice(0, 10)) {
      const at = locateField(source, [...prefix, ...issueSegments(issue.path)], 0)
      errors.push(`${at.file}:${at.line}:${at.column}: ${issue.path} ${issue.message}`)
    }
  }
  for (const source of sources) {
    if (!isAgent(source)) {
      const result = resolveProfile(source.value, { lookup })
      if (result.ok) subjects.push({ profile: result.profile, source })
      else fail(source, result.issues)
      continue
    }
    const agent = validateAgent(source.value)
    if (!agent.ok) {
      fail(source, agent.issues)
      continue
    }
    const profile = agentProfile(agent.agent, lookup)
    if (!profile.ok) {
      fail(source, profile.issues, typeof agent.agent.sandbox === 'string' ? [] : ['sandbox'])
      continue
    }
    // Null prototype: a tool may be named `__proto__` or `constructor`.
    const toolProfiles: Record<string, ResolvedProfile> = Object.create(null)
    agent.agent.tools?.forEach((tool, i) => {
      if (tool.sandbox === undefined) return
      const own =
        typeof tool.sandbox === 'string'
          ? named(tool.sandbox, lookup)
          : (resolveInlineToolProfile(agent.agent, tool, { lookup }) ?? named(tool.name, lookup))
      if (own.ok) toolProfiles[tool.name] = own.profile
      else fail(source, own.issues, typeof tool.sandbox === 'string' ? [] : ['tools', String(i), 'sandbox'])
    })
    subjects.push({ profile: profile.profile, agent: agent.agent, toolProfiles, source })
  }

  const report = reviewProfiles(subjects)
  const stdout =
    format === 'json'
      ? `${JSON.stringify(report, null, 2)}\n`
      : format === 'sarif'
        ? `${JSON.stringify(toSARIF(report, VERSION), null, 2)}\n`
        : formatReviewText(report)
  if (errors.length > 0) {
    return { stdout: subjects.length > 0 ? stdout : '', stderr: `${errors.join('\n')}\n`, exitCode: 2 }
  }
  const gate = failOn === 'none' ? -1 : SEVERITIES.indexOf(failOn)
  const failing = report.findings.filter((f) => SEVERITIES.indexOf(f.severity) <= gate)
  const stderr =
    failing.length > 0 ? `cordon review: ${failing.length} finding(s) at or above ${failOn}\n` : ''
  return { stdout, stderr, exitCode: failing.length > 0 ? 1 : 0 }
}

function parseOptions(argv: readonly string[]) {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      format: { type: 'string', default: 'text' },
      'fail-on': { type: 'string', default: 'high' },
      builtins: { type: 'string' },
    },
  })
  const format = values.format
  if (format !== 'text' && format !== 'json' && format !== 'sarif') {
    throw new Error(`--format must be text, json or sarif, not "${format}"`)
  }
  const failOn = values['fail-on']
  if (failOn !== 'none' && !(SEVERITIES as readonly string[]).includes(failOn)) {
    throw new Error(`--fail-on must be one of ${SEVERITIES.join(', ')} or none, not "${failOn}"`)
  }
  if (positionals.length === 0) throw new Error('name at least one file or directory to review')
  return {
    format,
    failOn: failOn as Severity | 'none',
    builtins: values.builtins ?? DEFAULT_BUILTINS,
    paths: positionals,
  }
}

function usage(message: string): CommandResult {
  return { stdout: '', stderr: `cordon review: ${message}\nrun "cordon help" for usage\n`, exitCode: 2 }
}

function collectFiles(paths: readonly string[], errors: string[]): string[] {
  const files: string[] = []
  const visit = (path: string, named: boolean) => {
    let stat: ReturnType<typeof statSync>
    try {
      stat = statSync(path)
    } catch {
      errors.push(`${path}: no such file or directory`)
      return
    }
    if (stat.isDirectory()) {
      for (const entry of readdirSync(path).sort()) {
        if (!entry.startsWith('.') && entry !== 'node_modules') visit(join(path, entry), false)
      }
    } else if (named || EXTENSIONS[extname(path).toLowerCase()] !== undefined) {
      if (stat.size > MAX_FILE_BYTES) errors.push(`${path}: larger than ${MAX_FILE_BYTES} bytes`)
      else if (files.length >= MAX_FILES) errors.push(`${path}: more than ${MAX_FILES} files`)
      else files.push(path)
    }
  }
  for (const path of paths) visit(path, true)
  return files
}

function loadBuiltins(dir: string, named: boolean, errors: string[]): Map<string, unknown> {
  const docs = new Map<string, unknown>()
  let entries: string[]
  try {
    entries = readdirSync(dir)
  } catch {
    if (named) errors.push(`--builtins ${dir}: not a readable directory`)
    return docs
  }
  for (const entry of entries) {
    const format = EXTENSIONS[extname(entry).toLowerCase()]
    if (format === undefined || format === 'markdown') continue
    const doc = parseDocument(readFileSync(join(dir, entry), 'utf8'), format)
    if (doc.ok && isObject(doc.value) && typeof doc.value.name === 'string')
      docs.set(doc.value.name, doc.value)
  }
  return docs
}

function agentProfile(agent: AgentDeclaration, lookup: (name: string) => unknown) {
  if (typeof agent.sandbox === 'string') return named(agent.sandbox, lookup)
  return resolveInlineProfile(agent, { lookup }) ?? named(agent.name, lookup)
}

function named(name: string, lookup: (name: string) => unknown) {
  const doc = lookup(name)
  if (doc === undefined) {
    return {
      ok: false as const,
      issues: [{ path: '$.sandbox', message: `profile "${name}" does not exist` }],
    }
  }
  return resolveProfile(doc, { lookup })
}

/** `$.network.allow[0].host` as `["network", "allow", "0", "host"]`. */
function issueSegments(path: string): string[] {
  return [...path.matchAll(/\.([^.[\]]+)|\[(\d+)\]/g)].map((m) => m[1] ?? m[2] ?? '')
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}
