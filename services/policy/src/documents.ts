import { parseJsonBounded, valueDepth } from '@cordon/contracts'
import YAML from 'yaml'

export type DocumentFormat = 'json' | 'yaml' | 'markdown'

export type DocumentResult = { ok: true; value: unknown } | { ok: false; message: string }

/** A YAML document may not expand aliases more than this (billion-laughs guard). */
const MAX_YAML_ALIASES = 64
/** Declarations nest at most this deep, whatever their format. */
export const MAX_DOCUMENT_DEPTH = 64

/**
 * Parses a declaration document. Markdown is YAML front matter between `---` lines, and the body after
 * it becomes `instructions`. Duplicate keys and multi-document YAML are errors. Pure.
 */
export function parseDocument(text: string, format: DocumentFormat): DocumentResult {
  switch (format) {
    case 'json':
      return parseJson(text)
    case 'yaml':
      return bounded(parseYaml(text))
    case 'markdown':
      return parseMarkdown(text)
  }
}

function parseJson(text: string): DocumentResult {
  const parsed = parseJsonBounded(text, { maxBytes: Number.MAX_SAFE_INTEGER, maxDepth: MAX_DOCUMENT_DEPTH })
  return parsed.ok ? parsed : { ok: false, message: `malformed JSON: ${parsed.message}` }
}

function bounded(result: DocumentResult): DocumentResult {
  if (result.ok && valueDepth(result.value, MAX_DOCUMENT_DEPTH) > MAX_DOCUMENT_DEPTH) {
    return { ok: false, message: `the document nests deeper than ${MAX_DOCUMENT_DEPTH} levels` }
  }
  return result
}

function parseYaml(text: string): DocumentResult {
  // Nesting past the document limit is refused before parsing: the parser spends seconds on a
  // megabyte of `[` before it would fail on depth.
  if (bracketDepth(text) > MAX_FLOW_BRACKETS) {
    return {
      ok: false,
      message: `malformed YAML: flow collections nest deeper than ${MAX_FLOW_BRACKETS} brackets`,
    }
  }
  // Duplicate keys are found by `duplicateKey` in one pass: the library's own check compares every
  // pair of keys, which a document of many keys turns into seconds of CPU.
  const docs = YAML.parseAllDocuments(text, { uniqueKeys: false, prettyErrors: false, strict: true })
  if (!Array.isArray(docs)) return { ok: false, message: 'malformed YAML: empty document' }
  if (docs.length !== 1)
    return { ok: false, message: `malformed YAML: expected one document, found ${docs.length}` }
  const doc = docs[0]
  if (doc === undefined) return { ok: false, message: 'malformed YAML: empty document' }
  const problem = doc.errors[0] ?? doc.warnings[0]
  if (problem !== undefined) return { ok: false, message: `malformed YAML: ${firstLine(problem.message)}` }
  const duplicate = duplicateKey(doc)
  if (duplicate !== null) {
    return {
      ok: false,
      message: `malformed YAML: map keys must be unique ("${duplicate.slice(0, 80)}" is repeated)`,
    }
  }
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: MAX_YAML_ALIASES }) }
  } catch (error) {
    return {
      ok: false,
      message: `malformed YAML: ${error instanceof Error ? firstLine(error.message) : 'parse error'}`,
    }
  }
}

/** Open `[` and `{` a YAML text may nest (well past the 64 levels a declaration may have). */
const MAX_FLOW_BRACKETS = 256

/**
 * The deepest nesting of `[`/`{` in a text, outside quoted strings: an upper bound on the depth of its
 * flow collections (brackets in block scalars, such as code, count too, and are balanced there).
 */
function bracketDepth(text: string): number {
  let depth = 0
  let deepest = 0
  let quote: string | null = null
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (quote !== null) {
      // A quote ends at its closing mark, or (as far as this bound cares) at the end of its line: an
      // apostrophe in plain text must not hide the rest of the document.
      if (c === '\\' && quote === '"') i++
      else if (c === quote || c === '\n') quote = null
      continue
    }
    if (c === '"' || c === "'") quote = c
    else if (c === '[' || c === '{') {
      depth++
      if (depth > deepest) deepest = depth
    } else if ((c === ']' || c === '}') && depth > 0) depth--
  }
  return deepest
}

/**
 * The first key that a mapping of `doc` holds twice, or null. Keys are compared as the object built
 * from the mapping will hold them (`1` and `"1"` are the same key), so nothing is silently dropped.
 */
function duplicateKey(doc: YAML.Document.Parsed): string | null {
  let found: string | null = null
  YAML.visit(doc, {
    Map(_, map) {
      const seen = new Set<string>()
      for (const pair of map.items) {
        const key = String(YAML.isScalar(pair.key) ? pair.key.value : pair.key)
        if (seen.has(key)) {
          found = String(key)
          return YAML.visit.BREAK
        }
        seen.add(key)
      }
      return undefined
    },
  })
  return found
}

const FRONT_MATTER = /^\uFEFF?---[ \t]*\r?\n([\s\S]*?)\r?\n---[ \t]*(?:\r?\n|$)/

/** A Markdown document split into its YAML front matter (a mapping) and its trimmed body. */
export type FrontMatterResult =
  | { ok: true; front: Record<string, unknown>; body: string }
  | { ok: false; message: string }

/**
 * Splits Markdown into YAML front matter between `---` lines at the top and the body after it. The
 * YAML is parsed as `parseDocument` parses it (one document, unique keys, bounded aliases and depth,
 * no custom tags); an own `__proto__` key is kept as data for the validator to refuse. Pure.
 */
export function parseFrontMatter(text: string): FrontMatterResult {
  const match = FRONT_MATTER.exec(text)
  if (match === null) {
    return {
      ok: false,
      message: 'malformed Markdown: expected YAML front matter between "---" lines at the top',
    }
  }
  const front = bounded(parseYaml(match[1] ?? ''))
  if (!front.ok) return front
  if (front.value === null || typeof front.value !== 'object' || Array.isArray(front.value)) {
    return { ok: false, message: 'malformed Markdown: front matter must be a YAML mapping' }
  }
  return { ok: true, front: front.value as Record<string, unknown>, body: text.slice(match[0].length).trim() }
}

function parseMarkdown(text: string): DocumentResult {
  const parsed = parseFrontMatter(text)
  if (!parsed.ok) return parsed
  const { front, body } = parsed
  if ('instructions' in front && body.length > 0) {
    return {
      ok: false,
      message: 'instructions are given twice: in the front matter and as the Markdown body',
    }
  }
  return { ok: true, value: body.length > 0 ? { ...front, instructions: body } : front }
}

function firstLine(message: string): string {
  return message.split('\n', 1)[0] ?? message
}
