/** What an archive entry is; only `file` entries are ever read, and `directory` entries are skipped. */
export type EntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'device' | 'fifo' | 'socket' | 'other'

/** One entry of an archive as its format lists it, its bytes read only on demand. */
export interface ArchiveEntry {
  /** The entry's name as stored (decoded, not yet checked). */
  name: string
  type: EntryType
  /** Its content, never more than `maxBytes` of it: past that, an `ArchiveError` ('limit'). */
  read(maxBytes: number): Promise<Uint8Array>
}

/** Why an archive is refused: bytes that do not parse, an entry that is not safe to unpack, or a limit. */
export type ArchiveProblem = 'malformed' | 'unsafe' | 'limit'

/**
 * Raised by the archive readers and caught by `readArchive`, which turns it into a result value; it
 * never leaves this folder. Messages name the entry, never its content.
 */
export class ArchiveError extends Error {
  readonly problem: ArchiveProblem

  constructor(problem: ArchiveProblem, message: string) {
    super(message)
    this.name = 'ArchiveError'
    this.problem = problem
  }
}

/** An entry name fit for a message: quoted, control characters escaped, at most 200 characters. */
export function quoted(name: string): string {
  return JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}...` : name)
}
