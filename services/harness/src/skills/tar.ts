import { type ArchiveEntry, ArchiveError, type EntryType, quoted } from './archive-entry.ts'

const BLOCK = 512
/** Most bytes of one pax extended header or GNU long name: far above any path this reader accepts. */
export const TAR_METADATA_MAX_BYTES = 8 * 1024

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * The entries of a tar archive (ustar, pax, GNU), read from memory: long names from pax `path`
 * records and GNU `L` entries, sizes from pax `size`. Every header's checksum is verified, every
 * entry's data must lie inside `bytes`, and more than `maxEntries` entries (directories included;
 * pax and GNU metadata not) is a 'limit' error. Reading ends at the first all-zero block. Names are
 * returned as stored, for the caller to check.
 */
export function tarEntries(bytes: Uint8Array, maxEntries: number): ArchiveEntry[] {
  const entries: ArchiveEntry[] = []
  let pax = new Map<string, string>()
  let longName: string | undefined
  let offset = 0
  while (offset < bytes.length) {
    if (offset + BLOCK > bytes.length) throw malformed(`the archive ends inside a header at byte ${offset}`)
    const header = bytes.subarray(offset, offset + BLOCK)
    if (header.every((byte) => byte === 0)) return entries
    verifyChecksum(header, offset)
    const flag = header[156] === 0 ? '0' : String.fromCharCode(header[156] ?? 0)
    const size = pax.has('size') ? paxSize(pax.get('size') ?? '') : octal(header, 124, 12, 'size', offset)
    const at = offset
    const start = offset + BLOCK
    if (start + size > bytes.length) throw malformed(`the entry at byte ${at} is truncated`)
    const data = bytes.subarray(start, start + size)
    offset = start + Math.ceil(size / BLOCK) * BLOCK
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > TAR_METADATA_MAX_BYTES) {
        throw malformed(`the metadata entry at byte ${at} is over ${TAR_METADATA_MAX_BYTES} bytes`)
      }
      // Global pax headers and long link names change nothing this reader keeps (links are refused).
      if (flag === 'x') pax = paxRecords(data)
      if (flag === 'L') longName = text(cString(data), 'a GNU long name')
      continue
    }
    const name = pax.get('path') ?? longName ?? headerName(header)
    pax = new Map()
    longName = undefined
    if (entries.length >= maxEntries) {
      throw new ArchiveError('limit', `the archive has more than ${maxEntries} entries`)
    }
    entries.push({ name, type: entryType(flag), read: (max) => copy(data, name, max) })
  }
  return entries
}

async function copy(data: Uint8Array, name: string, maxBytes: number): Promise<Uint8Array> {
  if (data.length > maxBytes) throw tooLarge(name)
  return data.slice()
}

function tooLarge(name: string): ArchiveError {
  return new ArchiveError('limit', `entry ${quoted(name)} takes the archive past its size limit`)
}

function entryType(flag: string): EntryType {
  switch (flag) {
    case '0':
    case '7':
      return 'file'
    case '1':
      return 'hardlink'
    case '2':
      return 'symlink'
    case '3':
    case '4':
      return 'device'
    case '5':
      return 'directory'
    case '6':
      return 'fifo'
    default:
      return 'other'
  }
}

/** The ustar name: `prefix/name` when the header is POSIX ustar (GNU headers use those bytes otherwise). */
function headerName(header: Uint8Array): string {
  const name = text(cString(header.subarray(0, 100)), 'an entry name')
  const ustar = cString(header.subarray(257, 263))
  if (ustar.length !== 5 || String.fromCharCode(...ustar) !== 'ustar' || header[262] !== 0) return name
  const prefix = text(cString(header.subarray(345, 500)), 'an entry name')
  return prefix.length > 0 ? `${prefix}/${name}` : name
}

function verifyChecksum(header: Uint8Array, offset: number): void {
  const stored = octal(header, 148, 8, 'checksum', offset)
  let unsigned = 0
  let signed = 0
  for (const [i, byte] of header.entries()) {
    const value = i >= 148 && i < 156 ? 0x20 : byte
    unsigned += value
    signed += value > 127 ? value - 256 : value
  }
  if (stored !== unsigned && stored !== signed) throw malformed(`bad header checksum at byte ${offset}`)
}

/** An octal number field (NUL- or space-terminated); base-256 numbers (over 8 GiB) are refused. */
function octal(header: Uint8Array, at: number, length: number, what: string, offset: number): number {
  const field = header.subarray(at, at + length)
  if (((field[0] ?? 0) & 0x80) !== 0) throw malformed(`the ${what} at byte ${offset} is too large`)
  const digits = String.fromCharCode(...field)
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '')
  if (!/^[0-7]*$/.test(digits)) throw malformed(`the ${what} at byte ${offset} is not an octal number`)
  return digits.length === 0 ? 0 : Number.parseInt(digits, 8)
}

/** Pax extended header records: `<length> <key>=<value>\n`, the length counting the whole record. */
function paxRecords(data: Uint8Array): Map<string, string> {
  const records = new Map<string, string>()
  let at = 0
  while (at < data.length) {
    if (data[at] === 0) break
    const space = data.indexOf(0x20, at)
    const digits = space < 0 ? '' : String.fromCharCode(...data.subarray(at, space))
    const length = /^[1-9]\d{0,5}$/.test(digits) ? Number(digits) : 0
    const record = data.subarray(at, at + length)
    if (length === 0 || at + length > data.length || record[length - 1] !== 0x0a) {
      throw malformed('a pax extended header is malformed')
    }
    const body = text(record.subarray(space - at + 1, length - 1), 'a pax record')
    const equals = body.indexOf('=')
    if (equals <= 0) throw malformed('a pax extended header is malformed')
    records.set(body.slice(0, equals), body.slice(equals + 1))
    at += length
  }
  return records
}

function paxSize(value: string): number {
  if (!/^\d{1,15}$/.test(value)) throw malformed('a pax size record is not a number')
  return Number(value)
}

function cString(bytes: Uint8Array): Uint8Array {
  const end = bytes.indexOf(0)
  return end < 0 ? bytes : bytes.subarray(0, end)
}

function text(bytes: Uint8Array, what: string): string {
  try {
    return utf8.decode(bytes)
  } catch {
    throw malformed(`${what} is not valid UTF-8`)
  }
}

function malformed(message: string): ArchiveError {
  return new ArchiveError('malformed', `malformed tar: ${message}`)
}
