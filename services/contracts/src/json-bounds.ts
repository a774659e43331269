import type { JsonValue } from './execution.ts'

export interface JsonBounds {
  /** Maximum UTF-8 size of the text. */
  maxBytes: number
  /** Maximum nesting of arrays and objects (a scalar has depth 0). */
  maxDepth: number
}

export type BoundedParse =
  | { ok: true; value: JsonValue }
  | { ok: false; reason: 'too_large' | 'too_deep' | 'malformed'; message: string }

/**
 * Parses JSON text that crosses a trust boundary. The size is checked before parsing and the depth
 * right after, without recursion, so hostile nesting cannot overflow the host stack. The value
 * returned is fresh host data: plain objects, arrays and primitives only.
 */
export function parseJsonBounded(text: string, bounds: JsonBounds): BoundedParse {
  // A UTF-16 length over the byte budget already exceeds it (every code unit is at least one byte).
  if (text.length > bounds.maxBytes || Buffer.byteLength(text, 'utf8') > bounds.maxBytes) {
    return { ok: false, reason: 'too_large', message: `JSON exceeds ${bounds.maxBytes} bytes` }
  }
  const depth = maxDepth(text)
  if (depth > bounds.maxDepth) {
    return { ok: false, reason: 'too_deep', message: `JSON nests deeper than ${bounds.maxDepth} levels` }
  }
  try {
    return { ok: true, value: JSON.parse(text) as JsonValue }
  } catch (error) {
    return {
      ok: false,
      reason: 'malformed',
      message: error instanceof SyntaxError ? error.message : 'invalid JSON',
    }
  }
}

/** Nesting depth of JSON text, scanning brackets outside of strings. Linear, no recursion. */
function maxDepth(text: string): number {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      depth++
      if (depth > deepest) deepest = depth
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return deepest
}

/** Nesting depth of a parsed value (arrays and plain objects), measured without recursion. */
export function valueDepth(value: unknown, stopAt = Number.POSITIVE_INFINITY): number {
  let deepest = 0
  const stack: [unknown, number][] = [[value, 0]]
  while (stack.length > 0) {
    const [current, depth] = stack.pop() as [unknown, number]
    if (current === null || typeof current !== 'object') continue
    const level = depth + 1
    if (level > deepest) deepest = level
    if (deepest > stopAt) return deepest
    for (const child of Array.isArray(current) ? current : Object.values(current)) stack.push([child, level])
  }
  return deepest
}
