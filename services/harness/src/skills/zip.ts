import { type ArchiveEntry, ArchiveError, type EntryType, quoted } from './archive-entry.ts'
import { crc32, inflate } from './inflate.ts'

const EOCD = 0x06054b50
const CENTRAL = 0x02014b50
const LOCAL = 0x04034b50
const EOCD_SIZE = 22
const CENTRAL_SIZE = 46
const LOCAL_SIZE = 30

const utf8 = new TextDecoder('utf-8', { fatal: true })

interface CentralRecord {
  name: string
  type: EntryType
  method: number
  crc: number
  compressedSize: number
  size: number
  localOffset: number
  dataStart: number
}

/**
 * The entries of a zip archive, listed by its central directory. Stored and deflated entries only; ZIP64,
 * multi-disk and encrypted archives are refused. The type comes from the Unix mode in the upper 16 bits
 * of the external attributes (S_IFLNK is a symlink, and so on) or a trailing `/`. Each local header
 * must repeat its central name, and no two entries' data may overlap (overlap is how the densest zip
 * bombs multiply their output). Reading an entry refuses one whose declared size passes `maxBytes`
 * before inflating anything, inflates at most its declared size (a lying size stops there), and
 * checks its CRC-32. More than `maxEntries` entries is a 'limit' error.
 */
export function zipEntries(bytes: Uint8Array, maxEntries: number): ArchiveEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const end = findEnd(view)
  const disk = view.getUint16(end + 4, true)
  const centralDisk = view.getUint16(end + 6, true)
  const onDisk = view.getUint16(end + 8, true)
  const count = view.getUint16(end + 10, true)
  const centralSize = view.getUint32(end + 12, true)
  const centralOffset = view.getUint32(end + 16, true)
  if (count === 0xffff || centralSize === 0xffffffff || centralOffset === 0xffffffff) {
    throw malformed('ZIP64 archives are not supported')
  }
  if (disk !== 0 || centralDisk !== 0 || onDisk !== count)
    throw malformed('multi-disk archives are not supported')
  if (count > maxEntries) throw new ArchiveError('limit', `the archive has more than ${maxEntries} entries`)
  if (centralOffset + centralSize > end) throw malformed('the central directory lies outside the archive')
  const records: CentralRecord[] = []
  let at = centralOffset
  for (let i = 0; i < count; i++) {
    const record = centralRecord(bytes, view, at, centralOffset)
    records.push(record.entry)
    at = record.next
  }
  if (at !== centralOffset + centralSize) throw malformed('the central directory size does not add up')
  refuseOverlaps(records, centralOffset)
  return records.map((record) => ({
    name: record.name,
    type: record.type,
    read: (maxBytes) => readEntry(bytes, record, maxBytes),
  }))
}

/** The end-of-central-directory record: the last one whose comment runs exactly to the end. */
function findEnd(view: DataView): number {
  const last = view.byteLength - EOCD_SIZE
  for (let at = last; at >= 0 && at >= last - 0xffff; at--) {
    if (
      view.getUint32(at, true) === EOCD &&
      at + EOCD_SIZE + view.getUint16(at + 20, true) === view.byteLength
    ) {
      return at
    }
  }
  throw malformed('no end of central directory record')
}

function centralRecord(
  bytes: Uint8Array,
  view: DataView,
  at: number,
  centralOffset: number,
): { entry: CentralRecord; next: number } {
  if (at + CENTRAL_SIZE > view.byteLength || view.getUint32(at, true) !== CENTRAL) {
    throw malformed(`bad central directory header at byte ${at}`)
  }
  const flags = view.getUint16(at + 8, true)
  const method = view.getUint16(at + 10, true)
  const crc = view.getUint32(at + 16, true)
  const compressedSize = view.getUint32(at + 20, true)
  const size = view.getUint32(at + 24, true)
  const nameLength = view.getUint16(at + 28, true)
  const next = at + CENTRAL_SIZE + nameLength + view.getUint16(at + 30, true) + view.getUint16(at + 32, true)
  const external = view.getUint32(at + 38, true)
  const localOffset = view.getUint32(at + 42, true)
  if (next > view.byteLength) throw malformed(`bad central directory header at byte ${at}`)
  const rawName = bytes.subarray(at + CENTRAL_SIZE, at + CENTRAL_SIZE + nameLength)
  const name = decodeName(rawName, flags)
  if (compressedSize === 0xffffffff || size === 0xffffffff || localOffset === 0xffffffff) {
    throw malformed(`entry ${quoted(name)} needs ZIP64, which is not supported`)
  }
  if ((flags & 0x41) !== 0) throw malformed(`entry ${quoted(name)} is encrypted`)
  if (method !== 0 && method !== 8) {
    throw malformed(
      `entry ${quoted(name)} uses compression method ${method}; only stored and deflate are supported`,
    )
  }
  if (method === 0 && compressedSize !== size) throw malformed(`stored entry ${quoted(name)} has two sizes`)
  const dataStart = localData(bytes, view, localOffset, rawName, name)
  if (dataStart + compressedSize > centralOffset)
    throw malformed(`entry ${quoted(name)} runs into the central directory`)
  const type = entryType(external, name)
  return { entry: { name, type, method, crc, compressedSize, size, localOffset, dataStart }, next }
}

/** Where an entry's data starts: after its local header, which must name it as the central one does. */
function localData(bytes: Uint8Array, view: DataView, at: number, rawName: Uint8Array, name: string): number {
  if (at + LOCAL_SIZE > view.byteLength || view.getUint32(at, true) !== LOCAL) {
    throw malformed(`entry ${quoted(name)} has no local header`)
  }
  const nameLength = view.getUint16(at + 26, true)
  const localName = bytes.subarray(at + LOCAL_SIZE, at + LOCAL_SIZE + nameLength)
  if (nameLength !== rawName.length || !localName.every((byte, i) => byte === rawName[i])) {
    throw malformed(`entry ${quoted(name)} has a local header that names another file`)
  }
  return at + LOCAL_SIZE + nameLength + view.getUint16(at + 28, true)
}

function refuseOverlaps(records: readonly CentralRecord[], centralOffset: number): void {
  const sorted = [...records].sort((a, b) => a.localOffset - b.localOffset)
  for (const [i, record] of sorted.entries()) {
    const next = sorted[i + 1]?.localOffset ?? centralOffset
    if (record.dataStart + record.compressedSize > next) {
      throw new ArchiveError('unsafe', `entry ${quoted(record.name)} overlaps another entry`)
    }
  }
}

/** The Unix file type in the upper 16 bits of the external attributes decides; else a trailing `/`. */
function entryType(external: number, name: string): EntryType {
  switch ((external >>> 16) & 0o170000) {
    case 0o120000:
      return 'symlink'
    case 0o020000:
    case 0o060000:
      return 'device'
    case 0o010000:
      return 'fifo'
    case 0o140000:
      return 'socket'
    case 0o040000:
      return 'directory'
  }
  return name.endsWith('/') || (external & 0x10) !== 0 ? 'directory' : 'file'
}

async function readEntry(bytes: Uint8Array, record: CentralRecord, maxBytes: number): Promise<Uint8Array> {
  if (record.size > maxBytes) {
    throw new ArchiveError(
      'limit',
      `entry ${quoted(record.name)} inflates to ${record.size} bytes, past the archive's size limit`,
    )
  }
  const raw = bytes.subarray(record.dataStart, record.dataStart + record.compressedSize)
  let data: Uint8Array
  if (record.method === 0) data = raw.slice()
  else {
    const inflated = await inflate(raw, 'deflate-raw', record.size)
    if (!inflated.ok) {
      throw malformed(
        inflated.reason === 'too_large'
          ? `entry ${quoted(record.name)} inflates to more than its declared ${record.size} bytes`
          : `entry ${quoted(record.name)} does not inflate`,
      )
    }
    data = inflated.bytes
  }
  if (data.length !== record.size) throw malformed(`entry ${quoted(record.name)} is not its declared size`)
  if (crc32(data) !== record.crc) throw malformed(`entry ${quoted(record.name)} fails its CRC-32 check`)
  return data
}

/** Names are UTF-8 (flag bit 11, or plain ASCII, or UTF-8 written without the flag); nothing else is read. */
function decodeName(raw: Uint8Array, flags: number): string {
  try {
    return utf8.decode(raw)
  } catch {
    throw malformed(`an entry name is not UTF-8${(flags & 0x800) !== 0 ? ' although flagged so' : ''}`)
  }
}

function malformed(message: string): ArchiveError {
  return new ArchiveError('malformed', `malformed zip: ${message}`)
}
