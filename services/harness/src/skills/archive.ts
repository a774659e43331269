import { type ArchiveEntry, ArchiveError, type ArchiveProblem, quoted } from './archive-entry.ts'
import { inflate } from './inflate.ts'
import { TAR_METADATA_MAX_BYTES, tarEntries } from './tar.ts'
import { zipEntries } from './zip.ts'

export type ArchiveKind = 'tar' | 'tar+gzip' | 'zip'

/** Bounds of one archive; every one is required. */
export interface ArchiveLimits {
  /** Entries of any kind (files, directories, refused ones); pax and GNU metadata records excluded. */
  maxEntries: number
  /** Bytes of all files' content together, counted as they are inflated. */
  maxTotalBytes: number
  /** Characters of an entry's path as stored. */
  maxPathLength: number
}

export interface ArchiveFile {
  /** Relative, `/`-separated, without `.`, `..` or empty segments, the wrapping folder stripped. */
  path: string
  data: Uint8Array
}

export type ArchiveResult =
  | { ok: true; files: ArchiveFile[] }
  | { ok: false; problem: ArchiveProblem; message: string }

/** Tar headers, padding and metadata records a gzip stream may add per entry on top of the content. */
const TAR_OVERHEAD_PER_ENTRY = 3 * 512 + TAR_METADATA_MAX_BYTES
/** GNU tar pads its output to a 10 KiB record. */
const TAR_RECORD = 10 * 1024

/**
 * Reads the regular files of a tar, gzipped tar or zip archive from memory, with Web APIs only (Node
 * and Workers alike). Refused, with a message naming the entry:
 * - paths that are absolute (`/x`, `C:x`), climb (`..`), hold NUL or control characters or `\`, or
 *   exceed `maxPathLength`; two entries with one path, or a file that is also a folder of another;
 * - symbolic and hard links, devices, FIFOs, sockets and any entry type but file and directory;
 * - more than `maxEntries` entries, or file content past `maxTotalBytes` in all. Content is counted as
 *   it inflates (a gzip stream may not inflate past the content limit plus tar overhead), so a bomb
 *   stops at the limit; no declared size is ever allocated up front.
 * Directories are skipped, and so are macOS metadata entries (`__MACOSX/`, `._*`, `.DS_Store`). When
 * every file sits in one top-level folder, that folder is stripped from the paths. A refusal is a
 * value: 'malformed' (bytes that do not parse), 'unsafe' (an entry that must not be unpacked) or
 * 'limit'.
 */
export async function readArchive(
  bytes: Uint8Array,
  kind: ArchiveKind,
  limits: ArchiveLimits,
): Promise<ArchiveResult> {
  try {
    return { ok: true, files: stripWrapper(await collect(await entries(bytes, kind, limits), limits)) }
  } catch (error) {
    if (error instanceof ArchiveError) return { ok: false, problem: error.problem, message: error.message }
    throw error
  }
}

async function entries(bytes: Uint8Array, kind: ArchiveKind, limits: ArchiveLimits): Promise<ArchiveEntry[]> {
  if (kind === 'zip') return zipEntries(bytes, limits.maxEntries)
  if (kind === 'tar') return tarEntries(bytes, limits.maxEntries)
  const cap = limits.maxTotalBytes + limits.maxEntries * TAR_OVERHEAD_PER_ENTRY + TAR_RECORD
  const tar = await inflate(bytes, 'gzip', cap)
  if (tar.ok) return tarEntries(tar.bytes, limits.maxEntries)
  if (tar.reason === 'too_large') {
    throw new ArchiveError('limit', `the gzip stream inflates past ${cap} bytes, the archive's size limit`)
  }
  throw new ArchiveError('malformed', 'malformed gzip: the stream does not inflate')
}

async function collect(list: readonly ArchiveEntry[], limits: ArchiveLimits): Promise<ArchiveFile[]> {
  const files: ArchiveFile[] = []
  const seen = new Set<string>()
  let total = 0
  for (const entry of list) {
    const path = normalise(entry.name, limits.maxPathLength)
    if (entry.type !== 'file' && entry.type !== 'directory') {
      throw new ArchiveError(
        'unsafe',
        `entry ${quoted(entry.name)} is ${REFUSED[entry.type]}; only files and folders are accepted`,
      )
    }
    if (entry.type === 'directory' || isMacMetadata(path)) continue
    if (path === '') throw new ArchiveError('unsafe', `entry ${quoted(entry.name)} is a file without a name`)
    if (seen.has(path)) throw new ArchiveError('unsafe', `entry ${quoted(entry.name)} appears twice`)
    seen.add(path)
    const data = await entry.read(limits.maxTotalBytes - total)
    total += data.length
    files.push({ path, data })
  }
  for (const { path } of files) {
    for (let slash = path.indexOf('/'); slash > 0; slash = path.indexOf('/', slash + 1)) {
      if (seen.has(path.slice(0, slash))) {
        throw new ArchiveError('unsafe', `entry ${quoted(path.slice(0, slash))} is both a file and a folder`)
      }
    }
  }
  return files
}

const REFUSED = {
  symlink: 'a symbolic link',
  hardlink: 'a hard link',
  device: 'a device',
  fifo: 'a FIFO',
  socket: 'a socket',
  other: 'an entry of an unsupported type',
} as const

/** The entry's path, relative and normalised ('' for the archive root); a refusal when it is not safe. */
function normalise(name: string, maxLength: number): string {
  const refuse = (why: string) => new ArchiveError('unsafe', `entry ${quoted(name)} ${why}`)
  if (name.length > maxLength) throw refuse(`has a path over ${maxLength} characters`)
  if (name.includes('\0')) throw refuse('has a NUL in its path')
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
  if (/[\u0001-\u001f\u007f]/.test(name)) throw refuse('has a control character in its path')
  if (name.includes('\\')) throw refuse('has a "\\" in its path; use "/"')
  if (name.startsWith('/') || /^[A-Za-z]:/.test(name)) throw refuse('has an absolute path')
  const segments = name.split('/').filter((segment) => segment !== '' && segment !== '.')
  if (segments.includes('..')) throw refuse('climbs out of the archive with ".."')
  return segments.join('/')
}

function isMacMetadata(path: string): boolean {
  const segments = path.split('/')
  const last = segments.at(-1) ?? ''
  return segments[0] === '__MACOSX' || last === '.DS_Store' || last.startsWith('._')
}

/** Strips a folder that wraps every file (`my-agent/agent.yaml`, `my-agent/skills/...`). */
function stripWrapper(files: ArchiveFile[]): ArchiveFile[] {
  const first = files[0]?.path.split('/', 1)[0]
  if (first === undefined) return files
  const prefix = `${first}/`
  if (!files.every((file) => file.path.startsWith(prefix))) return files
  return files.map((file) => ({ path: file.path.slice(prefix.length), data: file.data }))
}
