/**
 * Globs over `/`-separated names (URL paths, filesystem paths, kv keys). A segment is matched literally
 * except for `*`, which matches any run of characters other than `/`; a segment that is exactly `**`
 * matches zero or more whole segments. There is no `?`, no character class and no escaping: a
 * profile's patterns stay easy to read, and coverage between two patterns stays decidable.
 */

/** At most this many segments in a pattern. */
export const MAX_GLOB_SEGMENTS = 24
/**
 * At most this many `**` segments in a pattern, never two in a row. Matching and coverage are then
 * cheap: without the cap, a crafted profile of a few kilobytes made `globCovers` run for minutes.
 */
export const MAX_GLOB_STARS = 3
/** At most this many characters in a pattern, and this many `*` inside one segment. */
export const MAX_GLOB_LENGTH = 256
export const MAX_SEGMENT_STARS = 4

export type GlobProblem = string

/** Why `pattern` is not a valid glob, or null when it is. */
export function globProblem(pattern: string): GlobProblem | null {
  if (pattern.length === 0) return 'must not be empty'
  if (pattern.length > MAX_GLOB_LENGTH) return `must be at most ${MAX_GLOB_LENGTH} characters`
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(pattern)) return 'must not contain control characters'
  const segments = pattern.split('/')
  if (segments.length > MAX_GLOB_SEGMENTS) return `must have at most ${MAX_GLOB_SEGMENTS} segments`
  let stars = 0
  for (const [i, segment] of segments.entries()) {
    if (segment.includes('**') && segment !== '**') return '"**" must be a whole segment'
    if (segment === '.' || segment === '..') return 'must not contain "." or ".." segments'
    if (segment === '**' && segments[i - 1] === '**') return 'must not repeat "**" ("/**/**" is "/**")'
    if (segment === '**') stars++
    else if (segment.split('*').length - 1 > MAX_SEGMENT_STARS)
      return `must have at most ${MAX_SEGMENT_STARS} "*" in a segment`
  }
  if (stars > MAX_GLOB_STARS) return `must have at most ${MAX_GLOB_STARS} "**" segments`
  return null
}

/** Names (paths, keys) with more segments than this are never matched; callers refuse them first. */
export const MAX_NAME_SEGMENTS = 128

/**
 * True when `name` matches `pattern` (a valid glob). The pattern is split at its `**` segments into
 * fixed blocks: the first must match at the start, the last at the end, and the ones between are
 * placed leftmost in order, which is exact for `**` and costs at most segments x name segments.
 */
export function globMatches(pattern: string, name: string): boolean {
  const names = name.split('/')
  if (names.length > MAX_NAME_SEGMENTS) return false
  const blocks: string[][] = [[]]
  for (const segment of pattern.split('/')) {
    if (segment === '**') blocks.push([])
    else blocks[blocks.length - 1]?.push(segment)
  }
  const first = blocks[0] ?? []
  if (blocks.length === 1) return first.length === names.length && blockAt(first, names, 0)
  const last = blocks[blocks.length - 1] ?? []
  const end = names.length - last.length
  if (end < first.length || !blockAt(first, names, 0) || !blockAt(last, names, end)) return false
  let at = first.length
  for (const block of blocks.slice(1, -1)) {
    while (at + block.length <= end && !blockAt(block, names, at)) at++
    if (at + block.length > end) return false
    at += block.length
  }
  return true
}

function blockAt(block: readonly string[], names: readonly string[], at: number): boolean {
  return block.every((segment, i) => segmentMatches(segment, names[at + i] ?? ''))
}

/**
 * True when some name below `dir` (with at least one more segment) could match `pattern`: what a
 * recursive operation on `dir` (delete, for one) would reach.
 */
export function globMatchesBelow(pattern: string, dir: string): boolean {
  const segments = pattern.split('/')
  const dirs = dir.split('/')
  for (const [i, dirSegment] of dirs.entries()) {
    const segment = segments[i]
    if (segment === undefined) return false
    if (segment === '**') return true
    if (!segmentMatches(segment, dirSegment)) return false
  }
  return segments.length > dirs.length
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
export function globCovers(outer: string, inner: string, budget?: GlobBudget): boolean {
  if (outer === inner) return true
  const o = outer.split('/')
  const n = inner.split('/')
  if (o.length > MAX_GLOB_SEGMENTS * 2 || n.length > MAX_GLOB_SEGMENTS * 2) return false
  if (budget !== undefined) {
    // Each call may visit every (outer, inner) segment pair and compare their characters.
    budget.steps -= (o.length + 1) * (n.length + 1) + outer.length + inner.length
    if (budget.steps < 0) return false
  }
  return coverSegments(o, 0, n, 0, new Uint8Array((o.length + 1) * (n.length + 1)))
}

/**
 * Work allowed to the coverage checks of one resolution, shared by all its `globCovers` calls. Once
 * spent, coverage answers false (fail closed) and the caller reports the profile as too complex.
 */
export interface GlobBudget {
  steps: number
}

/** Memo cells: 0 unknown, 1 no, 2 yes. At most (segments + 1)^2 states, each visited once. */
function coverSegments(
  outer: readonly string[],
  oi: number,
  inner: readonly string[],
  ii: number,
  memo: Uint8Array,
): boolean {
  const key = oi * (inner.length + 1) + ii
  const known = memo[key]
  if (known !== undefined && known !== 0) return known === 2
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
  memo[key] = result ? 2 : 1
  return result
}

function segmentCovers(outer: string, inner: string): boolean {
  if (outer === inner || outer === '*') return true
  return !inner.includes('*') && segmentMatches(outer, inner)
}
