// For tests only (not exported): writes tar and zip archives byte by byte, including the hostile
// shapes real tools refuse to write (links, devices, `..` paths, lying sizes, overlapping entries).
import { Buffer } from 'node:buffer'
import { crc32, deflateRawSync, gzipSync } from 'node:zlib'

export interface TarEntry {
  name: string
  data?: string | Uint8Array
  /** The ustar typeflag: '0' file (default), '1' hard link, '2' symlink, '3' char device, '5' folder, '6' FIFO. */
  type?: string
  linkName?: string
  /** How a name over 100 bytes is written: a pax `path` record (default) or a GNU `L` entry. */
  longName?: 'pax' | 'gnu'
}

/** A tar archive (ustar headers, pax or GNU long names), ended by two zero blocks. */
export function tar(entries: readonly TarEntry[]): Uint8Array {
  const blocks: Uint8Array[] = []
  for (const entry of entries) {
    const data = bytes(entry.data ?? '')
    const name = Buffer.from(entry.name)
    if (name.length > 100) {
      const gnu = entry.longName === 'gnu'
      const meta = gnu ? Buffer.concat([name, Buffer.from([0])]) : paxRecord('path', entry.name)
      blocks.push(header(gnu ? '././@LongLink' : 'PaxHeader', meta.length, gnu ? 'L' : 'x'), padded(meta))
    }
    blocks.push(header(entry.name, data.length, entry.type ?? '0', entry.linkName), padded(data))
  }
  blocks.push(new Uint8Array(1024))
  return Buffer.concat(blocks)
}

export function tarGzip(entries: readonly TarEntry[]): Uint8Array {
  return gzipSync(tar(entries))
}

function header(name: string, size: number, type: string, linkName = ''): Uint8Array {
  const block = Buffer.alloc(512)
  block.write(name, 0, 100, 'utf8')
  block.write('0000644\0', 100)
  block.write('0000000\0', 108)
  block.write('0000000\0', 116)
  block.write(`${size.toString(8).padStart(11, '0')}\0`, 124)
  block.write('00000000000\0', 136)
  block.write(type, 156)
  block.write(linkName, 157, 100, 'utf8')
  block.write('ustar\u000000', 257)
  block.fill(0x20, 148, 156)
  let sum = 0
  for (const byte of block) sum += byte
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148)
  return block
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`
  let length = Buffer.byteLength(body) + 1
  while (Buffer.byteLength(`${length}${body}`) !== length) length = Buffer.byteLength(`${length}${body}`)
  return Buffer.from(`${length}${body}`)
}

function padded(data: Uint8Array): Uint8Array {
  return Buffer.concat([data, new Uint8Array((512 - (data.length % 512)) % 512)])
}

export interface ZipEntry {
  name: string
  data?: string | Uint8Array
  method?: 'store' | 'deflate'
  /** Unix mode, type bits included (0o120777 is a symlink); written into the external attributes. */
  mode?: number
  /** The uncompressed size the headers declare, when it should lie. */
  declaredSize?: number
}

/** A zip archive: local headers and data, then the central directory and its end record. */
export function zip(entries: readonly ZipEntry[], options: { overlap?: boolean } = {}): Uint8Array {
  const locals: Uint8Array[] = []
  const centrals: Uint8Array[] = []
  let offset = 0
  for (const entry of entries) {
    const data = bytes(entry.data ?? '')
    const deflate = entry.method === 'deflate'
    const stored = deflate ? deflateRawSync(data, { level: 9 }) : data
    const name = Buffer.from(entry.name)
    const fields = {
      method: deflate ? 8 : 0,
      crc: crc32(data),
      compressed: stored.length,
      size: entry.declaredSize ?? data.length,
    }
    const local = Buffer.alloc(30)
    local.writeUInt32LE(0x04034b50, 0)
    local.writeUInt16LE(20, 4)
    local.writeUInt16LE(0x800, 6)
    local.writeUInt16LE(fields.method, 8)
    local.writeUInt32LE(fields.crc, 14)
    local.writeUInt32LE(fields.compressed, 18)
    local.writeUInt32LE(fields.size, 22)
    local.writeUInt16LE(name.length, 26)
    const central = Buffer.alloc(46)
    central.writeUInt32LE(0x02014b50, 0)
    central.writeUInt16LE((3 << 8) | 20, 4)
    central.writeUInt16LE(20, 6)
    central.writeUInt16LE(0x800, 8)
    central.writeUInt16LE(fields.method, 10)
    central.writeUInt32LE(fields.crc, 16)
    central.writeUInt32LE(fields.compressed, 20)
    central.writeUInt32LE(fields.size, 24)
    central.writeUInt16LE(name.length, 28)
    central.writeUInt32LE(((entry.mode ?? 0o100644) << 16) >>> 0, 38)
    // Overlap: every entry after the first points at the first one's local header.
    central.writeUInt32LE(options.overlap === true ? 0 : offset, 42)
    centrals.push(central, name)
    locals.push(local, name, stored)
    offset += 30 + name.length + stored.length
  }
  const directory = Buffer.concat(centrals)
  const end = Buffer.alloc(22)
  end.writeUInt32LE(0x06054b50, 0)
  end.writeUInt16LE(entries.length, 8)
  end.writeUInt16LE(entries.length, 10)
  end.writeUInt32LE(directory.length, 12)
  end.writeUInt32LE(offset, 16)
  return Buffer.concat([...locals, directory, end])
}

function bytes(data: string | Uint8Array): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data) : data
}
