/** The root of every virtual filesystem. It always exists and cannot be removed. */
export const FILE_ROOT = '/workspace'
/** Largest content one file may hold, in bytes. */
export const FILE_MAX_BYTES = 4 * 1024 * 1024
/** Most entries (files and directories, the root not counted) one space may hold. */
export const SPACE_MAX_ENTRIES = 10_000
/** Longest name of one file or directory, in UTF-8 bytes (POSIX's NAME_MAX). */
export const FILE_NAME_MAX_BYTES = 255

export type FileType = 'file' | 'directory'

/** What `stat` answers: the type, the content's size in bytes (0 for a directory), the ISO mtime. */
export interface FileInfo {
  type: FileType
  size: number
  mtime: string
}

/** One entry of a directory listing. */
export interface FileEntry extends FileInfo {
  name: string
}

/** What one space holds: bytes of file content, and entries (files and directories). */
export interface SpaceUsage {
  bytes: number
  entries: number
}

/**
 * Why an operation changed nothing. `NOT_DIRECTORY`: a parent of the path is a file (or, for a
 * listing, the path itself is). `IS_DIRECTORY`: the path is a directory where a file was meant.
 * `QUOTA_EXCEEDED`: the write would take the space past its bytes quota or its entry limit.
 * `FILE_TOO_LARGE`: more than {@link FILE_MAX_BYTES}. `NAME_TOO_LONG`: a new name is over
 * {@link FILE_NAME_MAX_BYTES}. `ROOT`: the root cannot be removed. `DENIED`: a removal's check
 * refused `path`, one of the entries below it.
 */
export type FileFailure =
  | { ok: false; code: 'NOT_FOUND' | 'NOT_DIRECTORY' | 'IS_DIRECTORY' | 'NOT_EMPTY' | 'ROOT' }
  | { ok: false; code: 'FILE_TOO_LARGE' | 'NAME_TOO_LONG' }
  | { ok: false; code: 'QUOTA_EXCEEDED'; reason: 'BYTES' | 'ENTRIES'; usage: SpaceUsage }
  | { ok: false; code: 'DENIED'; path: string }

export type FileResult<T> = ({ ok: true } & T) | FileFailure

/**
 * The virtual filesystems of agents and executions. A space (`agent:<name>#<incarnation>`, kept; `exec:<id>`, one
 * execution's scratch space) belongs to a tenant, and every call is scoped by tenant and space: no
 * call reaches another's files. Paths are absolute, normalised and under {@link FILE_ROOT}, exactly
 * as the policy checked them (the store refuses anything else as a broken invariant, by throwing);
 * names compare as exact UTF-8 bytes. Directories are explicit entries; there are no links of any
 * kind. Every write checks and writes in one transaction: a refused write changes nothing, and two
 * writers can never both fit in the last bytes of a quota. Synchronous and runtime-neutral: plain
 * data in and out, content as bytes.
 */
export interface FileStore {
  /** Largest content one file may hold here ({@link FILE_MAX_BYTES}, or less where the storage takes less). */
  readonly maxFileBytes: number
  /** A file's content and info. `IS_DIRECTORY` for a directory; `NOT_FOUND` when nothing is there. */
  read(tenant: string, space: string, path: string): FileResult<{ data: Uint8Array; info: FileInfo }>
  /** A path's info, or null when nothing is there (the root always is). */
  stat(tenant: string, space: string, path: string): FileInfo | null
  /** A directory's entries in code point order (UTF-8 byte order), at most {@link SPACE_MAX_ENTRIES}. */
  list(tenant: string, space: string, path: string): FileResult<{ entries: FileEntry[] }>
  /**
   * Creates or replaces a file, creating missing parent directories. The space's file content may
   * total at most `quotaBytes`, and it may hold at most {@link SPACE_MAX_ENTRIES} entries.
   */
  write(
    tenant: string,
    space: string,
    path: string,
    data: Uint8Array,
    quotaBytes: number,
  ): FileResult<{ created: boolean; usage: SpaceUsage }>
  /**
   * Removes a file, an empty directory, or with `recursive` a directory and everything below it.
   * `allow`, when given, is asked about every entry below the path first; the first it refuses
   * fails the removal (`DENIED`), and nothing is removed.
   */
  remove(
    tenant: string,
    space: string,
    path: string,
    options: { recursive: boolean; allow?: (path: string) => boolean },
  ): FileResult<{ removed: number; bytes: number }>
  usage(tenant: string, space: string): SpaceUsage
  /** Removes a whole space (an execution's, once it ended; an agent's, once the agent is deleted). */
  dropSpace(tenant: string, space: string): number
  /**
   * Removes every execution's scratch space (`exec:*`) of every tenant but those `keep` names (of
   * executions to be resumed): for a start after a crash, when no execution can be running and any
   * other such space is left over. Answers the entries removed.
   */
  dropScratchSpaces(keep?: (tenant: string, space: string) => boolean): number
}
