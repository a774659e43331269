/**
 * Globs over `/`-separated names (URL paths, filesystem paths, kv keys). A segment is matched literally
 * except for `*`, which matches any run of characters other than `/`; a segment that is exactly `**`
 * matches zero or more whole segments. There is no `?`, no character class and no escaping: a
 * profile's patterns stay easy to read, and coverage between two patterns stays decidable.
 */

/** At most this many segments in a pattern or a matched name. */
export const MAX_GLOB_SEGMENTS = 64

export type GlobProblem = string

/** Why `pattern` is not a valid glob, or null when it is. */
export function globProblem(pattern: string): GlobProblem | null {
  if (pattern.length === 0) return 'must not be empty'
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(pattern)) return 'must not contain control characters'
  const segments = pattern.split('/')
  if (segments.length > MAX_GLOB_SEGMENTS) return `must have at most ${MAX_GLOB_SEGMENTS} segments`
  for (const segment of segments) {
    if (segment.includes('**') && segment !== '**') return '"**" must be a whole segment'
    if (segment === '.' || segment === '..') return 'must not contain "." or ".." segments'
  }
  return null
}

/** True when `name` matches `pattern`. Both are `/`-separated; `pattern` must be valid. */
export function globMatches(pattern: string, name: string): boolean {
  const names = name.split('/')
  if (names.length > MAX_GLOB_SEGMENTS * 4) return false
  return matchSegments(pattern.split('/'), 0, names, 0, new Map())
}

function matchSegments(
  pattern: readonly string[],
  pi: number,
  names: readonly string[],
  ni: number,
  memo: Map<number, boolean>,
): boolean {
  const key = pi * 4096 + ni
  const known = memo.get(key)
  if (known !== undefined) return known
  let result: boolean
  const head = pattern[pi]
  if (head === undefined) result = ni === names.length
  else if (head === '**') {
    result =
      matchSegments(pattern, pi + 1, names, ni, memo) ||
      (ni < names.length && matchSegments(pattern, pi, names, ni + 1, memo))
  } else {
    const name = names[ni]
    result =
      name !== undefined && segmentMatches(head, name) && matchSegments(pattern, pi + 1, names, ni + 1, memo)
  }
  memo.set(key, result)
  return result
}

/** One segment against one name segment: `*` matches any run of characters (the name holds no `/`). */
export function segmentMatches(segment: string, name: string): boolean {
  if (!segment.includes('*')) return segment === name
  const parts = segment.split('*')
  const first = parts[0] ?? ''
  const last = parts[parts.length - 1] ?? ''
  if (name.length < first.length + last.length) return false
  if (!name.startsWith(first) || !name.endsWith(last)) return false
  let at = first.length
  const end = name.length - last.length
  for (const part of parts.slice(1, -1)) {
    const found = name.indexOf(part, at)
    if (found < 0 || found + part.length > end) return false
    at = found + part.length
  }
  return true
}

/**
 * True when every name `inner` matches is also matched by `outer`. Sound but conservative: a `true`
 * is always right; a pattern with `*` inside a segment is covered only by `*` or by the same segment,
 * so some true inclusions answer `false` (a child must then write its pattern more plainly).
 */
export function globCovers(outer: string, inner: string): boolean {
  return coverSegments(outer.split('/'), 0, inner.split('/'), 0, new Map())
}

function coverSegments(
  outer: readonly string[],
  oi: number,
  inner: readonly string[],
  ii: number,
  memo: Map<number, boolean>,
): boolean {
  const key = oi * 4096 + ii
  const known = memo.get(key)
  if (known !== undefined) return known
  let result: boolean
  const o = outer[oi]
  const i = inner[ii]
  if (o === undefined) result = i === undefined
  else if (o === '**') {
    result =
      coverSegments(outer, oi + 1, inner, ii, memo) ||
      (i !== undefined && coverSegments(outer, oi, inner, ii + 1, memo))
  } else if (i === undefined || i === '**') {
    result = false
  } else {
    result = segmentCovers(o, i) && coverSegments(outer, oi + 1, inner, ii + 1, memo)
  }
  memo.set(key, result)
  return result
}

function segmentCovers(outer: string, inner: string): boolean {
  if (outer === inner || outer === '*') return true
  return !inner.includes('*') && segmentMatches(outer, inner)
}
