import YAML, { LineCounter, type Node } from 'yaml'
import type { DocumentFormat } from '../documents.ts'

/** A place in a source file; line and column count from 1. */
export interface SourceLocation {
  file: string
  line: number
  column: number
}

const FRONT_MATTER = /^\uFEFF?---[ \t]*\r?\n/

/**
 * Where the field at `path` is written in a YAML, JSON or Markdown (front matter) source: its value's
 * position, or its nearest written ancestor's when the field is inherited or defaulted. Deny rules
 * resolve as the parent's followed by the child's own, so a resolved deny index is shifted back by the
 * number the parent contributed (`resolvedDenyCount` minus those written here).
 */
export function locate(
  source: { file: string; text: string; format: DocumentFormat },
  path: readonly string[],
  resolvedDenyCount: number,
): SourceLocation {
  let text = source.text
  let lineOffset = 0
  if (source.format === 'markdown') {
    const open = FRONT_MATTER.exec(text)
    if (open !== null) {
      text = text.slice(open[0].length)
      lineOffset = 1
    }
  }
  const lineCounter = new LineCounter()
  const doc = YAML.parseDocument(text, { lineCounter, uniqueKeys: false, prettyErrors: false })
  const keys: (string | number)[] = path.map((segment) => (/^\d+$/.test(segment) ? Number(segment) : segment))
  const deny = keys.findIndex((key, i) => key === 'deny' && keys[i - 1] === 'network')
  const denyIndex = keys[deny + 1]
  if (deny >= 0 && typeof denyIndex === 'number') {
    const written = doc.getIn(keys.slice(0, deny + 1), true)
    const count = YAML.isSeq(written) ? written.items.length : 0
    const shifted = denyIndex - (resolvedDenyCount - count)
    if (shifted < 0) keys.splice(deny)
    else keys[deny + 1] = shifted
  }
  for (let length = keys.length; length >= 0; length--) {
    const node = length === 0 ? doc.contents : doc.getIn(keys.slice(0, length), true)
    const start = (node as Node | null | undefined)?.range?.[0]
    if (start !== undefined) {
      const { line, col } = lineCounter.linePos(start)
      return { file: source.file, line: line + lineOffset, column: col }
    }
  }
  return { file: source.file, line: 1, column: 1 }
}
