import { type Decision, deny } from './decision.ts'
import { globMatches, globMatchesBelow, MAX_NAME_SEGMENTS } from './globs.ts'
import { type ResolvedProfile, ruleRef } from './profile.ts'

declare const pathBrand: unique symbol
declare const keyBrand: unique symbol

export type FileOperation = 'read' | 'list' | 'stat' | 'write' | 'delete'
export type KvOperation = 'read' | 'list' | 'write' | 'delete'

/**
 * A filesystem path the policy allowed for `operation`: absolute, normalised, under the root. A `list`
 * is allowed on the folder itself; the binding must decide each entry it returns (`read` on the entry's
 * path) so that denied names stay hidden. A `delete` is refused when a deny glob reaches below it.
 */
export interface CheckedPath {
  readonly path: string
  readonly operation: FileOperation
  readonly [pathBrand]: true
}

/** A key-value key the policy allowed for `operation`. */
export interface CheckedKey {
  readonly key: string
  readonly operation: KvOperation
  readonly [keyBrand]: true
}

export type FileDenyCode =
  | 'PATH_INVALID'
  | 'PATH_OUTSIDE_ROOT'
  | 'FS_NOT_ALLOWED'
  | 'FS_DENIED'
  | 'READ_ONLY'
  | 'PATH_NOT_ALLOWED'
export type KvDenyCode = 'KEY_INVALID' | 'KV_NOT_ALLOWED' | 'KV_DENIED' | 'READ_ONLY' | 'KEY_NOT_ALLOWED'

const MAX_PATH_LENGTH = 4096
export const MAX_KEY_LENGTH = 512
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/

export type PathResult = { ok: true; path: string } | { ok: false; message: string }

/** Invisible and format characters (Cf: U+200B, U+202E, U+FEFF...) and the line and paragraph separators. */
const INVISIBLE = /[\p{Cf}\u2028\u2029]/u

/**
 * Normalises a guest path: relative paths are taken from `root`; `.`, `..` and repeated `/` are
 * resolved; the text is NFC-normalised, so that one name has one spelling and the path checked is
 * exactly the path stored. Refused: NUL and control characters, `\`, lone surrogates, invisible and
 * format characters (category Cf, U+2028, U+2029), and a segment that compatibility-normalises
 * (NFKC) to `.`, `..` or something holding `/` or `\` (fullwidth `／`, `．．`): another tool would
 * read those as separators or climbs. The result is absolute; whether it lies under `root` is for the
 * caller to check (see {@link decideFile}).
 */
export function normalisePath(input: string, root: string): PathResult {
  if (input.length === 0 || input.length > MAX_PATH_LENGTH) return { ok: false, message: 'empty or too long' }
  if (!input.isWellFormed()) return { ok: false, message: 'contains a lone surrogate' }
  const text = input.normalize('NFC')
  if (text.length > MAX_PATH_LENGTH) return { ok: false, message: 'empty or too long' }
  if (CONTROL.test(text)) return { ok: false, message: 'contains NUL or control characters' }
  if (INVISIBLE.test(text)) return { ok: false, message: 'contains invisible or format characters' }
  if (text.includes('\\')) return { ok: false, message: 'contains "\\"' }
  const segments: string[] = []
  for (const segment of (text.startsWith('/') ? text : `${root}/${text}`).split('/')) {
    if (segment === '' || segment === '.') continue
    if (segment === '..') {
      if (segments.pop() === undefined) return { ok: false, message: 'climbs above "/"' }
      continue
    }
    if (readsAsSeparator(segment)) {
      return { ok: false, message: 'has a segment that reads as "/", "\\", "." or ".." once normalised' }
    }
    segments.push(segment)
  }
  if (segments.length >= MAX_NAME_SEGMENTS)
    return { ok: false, message: `has more than ${MAX_NAME_SEGMENTS - 1} segments` }
  return { ok: true, path: `/${segments.join('/')}` }
}

function readsAsSeparator(segment: string): boolean {
  // ASCII-only segments are their own NFKC form: skip the work for them.
  if (/^[\x20-\x7e]*$/.test(segment)) return false
  const loose = segment.normalize('NFKC')
  return loose === '.' || loose === '..' || loose.includes('/') || loose.includes('\\')
}

/**
 * Decides a filesystem operation. Deny by default: no access, a path outside the root, a path on the
 * deny list, a write where access is read-only, or a path no `paths` glob matches are all denied.
 */
export function decideFile(
  profile: ResolvedProfile,
  input: string,
  operation: FileOperation,
): Decision<FileDenyCode, { path: CheckedPath }> {
  const fs = profile.filesystem
  const at = (pointer: string) => ruleRef(profile, `/filesystem${pointer}`)
  if (fs.access === 'none') return deny('FS_NOT_ALLOWED', at('/access'), 'the profile grants no filesystem')
  const normal = normalisePath(input, fs.root)
  if (!normal.ok) return deny('PATH_INVALID', at('/root'), `the path ${normal.message}`)
  const path = normal.path
  if (path !== fs.root && !path.startsWith(`${fs.root}/`)) {
    return deny('PATH_OUTSIDE_ROOT', at('/root'), `"${path.slice(0, 200)}" is outside ${fs.root}`)
  }
  // Deleting a folder deletes what lies below it, denied paths included.
  const denied = fs.deny.findIndex(
    (glob) => globMatches(glob, path) || (operation === 'delete' && globMatchesBelow(glob, path)),
  )
  if (denied >= 0) return deny('FS_DENIED', at(`/deny/${denied}`), `"${path.slice(0, 200)}" is denied`)
  if ((operation === 'write' || operation === 'delete') && fs.access !== 'read-write') {
    return deny('READ_ONLY', at('/access'), `the filesystem is read-only; ${operation} is not allowed`)
  }
  const allowed = fs.paths.findIndex((glob) => globMatches(glob, path))
  if (allowed < 0)
    return deny('PATH_NOT_ALLOWED', at('/paths'), `"${path.slice(0, 200)}" matches no allowed path`)
  const checked = Object.freeze({ path, operation }) as CheckedPath
  return { effect: 'allow', code: 'ALLOWED', rule: at(`/paths/${allowed}`), path: checked }
}

/**
 * Decides a key-value operation in the agent's namespace. Keys are 1-512 characters of well-formed
 * Unicode without control characters; deny globs beat `keys` globs; writes need read-write access.
 */
export function decideKv(
  profile: ResolvedProfile,
  key: string,
  operation: KvOperation,
): Decision<KvDenyCode, { key: CheckedKey }> {
  const kv = profile.kv
  const at = (pointer: string) => ruleRef(profile, `/kv${pointer}`)
  if (kv.access === 'none')
    return deny('KV_NOT_ALLOWED', at('/access'), 'the profile grants no key-value store')
  if (
    key.length === 0 ||
    key.length > MAX_KEY_LENGTH ||
    CONTROL.test(key) ||
    !key.isWellFormed() ||
    key.split('/').length > MAX_NAME_SEGMENTS
  ) {
    return deny(
      'KEY_INVALID',
      at('/keys'),
      `keys are 1-${MAX_KEY_LENGTH} characters without control characters`,
    )
  }
  const denied = kv.deny.findIndex((glob) => globMatches(glob, key))
  if (denied >= 0) return deny('KV_DENIED', at(`/deny/${denied}`), `key "${key.slice(0, 200)}" is denied`)
  if ((operation === 'write' || operation === 'delete') && kv.access !== 'read-write') {
    return deny('READ_ONLY', at('/access'), `the key-value store is read-only; ${operation} is not allowed`)
  }
  const allowed = kv.keys.findIndex((glob) => globMatches(glob, key))
  if (allowed < 0)
    return deny('KEY_NOT_ALLOWED', at('/keys'), `key "${key.slice(0, 200)}" matches no allowed key`)
  const checked = Object.freeze({ key, operation }) as CheckedKey
  return { effect: 'allow', code: 'ALLOWED', rule: at(`/keys/${allowed}`), key: checked }
}
