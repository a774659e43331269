import { CordonSandboxError } from './errors.ts'

/** The sandbox's working directory: the only tree the file verbs reach. */
export const WORKSPACE = '/workspace'

export interface WorkspacePath {
  /** Normalised and absolute: `/workspace` or below it. */
  absolute: string
  /** Relative to `/workspace` as the files API takes it: `''` for the root itself. */
  relative: string
}

/** C0 and C1 control characters and DEL: the files API's URLs cannot carry them. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

/**
 * A path for a file verb: relative paths resolve against `/workspace`; `.` and `..` are resolved
 * lexically first, so no spelling escapes. Anything that ends outside `/workspace` is refused with
 * EACCES, an empty path or one with NUL with EINVAL (no shell or URL ever sees them).
 */
export function workspacePath(input: string, syscall: string): WorkspacePath {
  if (typeof input !== 'string' || input.length === 0)
    throw new CordonSandboxError('EINVAL', syscall, String(input), 'the path is empty')
  if (input.includes('\0')) throw new CordonSandboxError('EINVAL', syscall, input, 'the path holds NUL')
  const absolute = normalise(input.startsWith('/') ? input : `${WORKSPACE}/${input}`)
  if (absolute !== WORKSPACE && !absolute.startsWith(`${WORKSPACE}/`)) {
    throw new CordonSandboxError(
      'EACCES',
      syscall,
      input,
      `outside ${WORKSPACE}: a Cordon session's files are reached under ${WORKSPACE} only`,
    )
  }
  return { absolute, relative: absolute === WORKSPACE ? '' : absolute.slice(WORKSPACE.length + 1) }
}

/** A working directory for `exec`: any absolute path in the sandbox (relative ones under `/workspace`). */
export function commandDirectory(input: string | undefined): string {
  if (input === undefined || input === '') return WORKSPACE
  if (input.includes('\0')) throw new CordonSandboxError('EINVAL', 'exec', input, 'the directory holds NUL')
  return normalise(input.startsWith('/') ? input : `${WORKSPACE}/${input}`)
}

/**
 * Whether the files API names exactly this path: it cannot carry control characters, and it
 * normalises names to NFC. Any other path is handled by a command.
 */
export function routable(path: WorkspacePath): boolean {
  return !CONTROL.test(path.relative) && path.relative === path.relative.normalize('NFC')
}

/** The parent of an absolute, normalised path (`/` for a top-level one). */
export function parentOf(absolute: string): string {
  const cut = absolute.lastIndexOf('/')
  return cut <= 0 ? '/' : absolute.slice(0, cut)
}

function normalise(path: string): string {
  const segments: string[] = []
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue
    if (segment === '..') segments.pop()
    else segments.push(segment)
  }
  return `/${segments.join('/')}`
}
