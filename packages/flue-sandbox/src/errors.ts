/** The errno codes the sandbox's file verbs throw, with Node's numbers and descriptions. */
const ERRNO = {
  EPERM: [-1, 'operation not permitted'],
  ENOENT: [-2, 'no such file or directory'],
  EIO: [-5, 'i/o error'],
  EACCES: [-13, 'permission denied'],
  EEXIST: [-17, 'file already exists'],
  ENOTDIR: [-20, 'not a directory'],
  EISDIR: [-21, 'illegal operation on a directory'],
  EINVAL: [-22, 'invalid argument'],
  EFBIG: [-27, 'file too large'],
  ENOSPC: [-28, 'no space left on device'],
  EROFS: [-30, 'read-only file system'],
  ENOTEMPTY: [-39, 'directory not empty'],
} as const satisfies Record<string, readonly [number, string]>

export type Errno = keyof typeof ERRNO

/**
 * A file verb's failure, shaped like Node's fs errors (`code`, `errno`, `syscall`, `path`) so that
 * code written against `node:fs` and Flue's tools read it the same way. `detail` is Cordon's or the
 * shell's own words, bounded; it never holds the API token.
 */
export class CordonSandboxError extends Error {
  readonly code: Errno
  readonly errno: number
  readonly syscall: string
  readonly path: string
  readonly detail: string | undefined

  constructor(code: Errno, syscall: string, path: string, detail?: string) {
    const [errno, description] = ERRNO[code]
    const shown = detail === undefined ? '' : ` (${detail.slice(0, 300)})`
    super(`${code}: ${description}, ${syscall} '${path}'${shown}`)
    this.name = 'CordonSandboxError'
    this.code = code
    this.errno = errno
    this.syscall = syscall
    this.path = path
    this.detail = detail
  }
}

/**
 * A request Cordon refused or could not take: `code` is Cordon's stable error code
 * (`UNAUTHENTICATED`, `SESSION_LIMIT`, `LANGUAGE_NOT_ALLOWED`, ...) or `UNREACHABLE` when no answer
 * came, `status` the HTTP status (0 without one). The message is the server's; it never holds the token.
 */
export class CordonApiError extends Error {
  readonly code: string
  readonly status: number

  constructor(code: string, message: string, status: number) {
    super(`Cordon ${code}${status === 0 ? '' : ` (${status})`}: ${message.slice(0, 500)}`)
    this.name = 'CordonApiError'
    this.code = code
    this.status = status
  }
}

/** The files API's codes that are a file verb's ordinary outcome, with their errno. */
const API_ERRNO: Readonly<Record<string, Errno>> = {
  FILE_NOT_FOUND: 'ENOENT',
  IS_DIRECTORY: 'EISDIR',
  NOT_DIRECTORY: 'ENOTDIR',
  QUOTA_EXCEEDED: 'ENOSPC',
  FILE_TOO_LARGE: 'EFBIG',
  PATH_INVALID: 'EINVAL',
  NO_AGENT_FILESYSTEM: 'EROFS',
}

/** The files API's refusal as a file verb's error; any other API error is returned unchanged. */
export function fileError(error: unknown, syscall: string, path: string): unknown {
  if (!(error instanceof CordonApiError)) return error
  const errno = API_ERRNO[error.code]
  return errno === undefined ? error : new CordonSandboxError(errno, syscall, path, error.message)
}

/** strerror texts (LC_ALL=C) a failed shell command names, with their errno. */
const SHELL_ERRNO: readonly [string, Errno][] = [
  ['No such file or directory', 'ENOENT'],
  ['Not a directory', 'ENOTDIR'],
  ['Is a directory', 'EISDIR'],
  ['File exists', 'EEXIST'],
  ['Directory not empty', 'ENOTEMPTY'],
  ['Permission denied', 'EACCES'],
  ['Operation not permitted', 'EPERM'],
  ['Read-only file system', 'EROFS'],
  ['No space left on device', 'ENOSPC'],
  ['File too large', 'EFBIG'],
  ['not a regular file', 'EINVAL'],
]

/** A failed shell command's stderr as a file verb's error (EIO when it names no known cause). */
export function shellError(stderr: string, syscall: string, path: string): CordonSandboxError {
  const found = SHELL_ERRNO.find(([text]) => stderr.includes(text))
  return new CordonSandboxError(found?.[1] ?? 'EIO', syscall, path, stderr.trim() || undefined)
}
