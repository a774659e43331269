export type InflateResult = { ok: true; bytes: Uint8Array } | { ok: false; reason: 'too_large' | 'corrupt' }

/**
 * Decompresses `data` (a gzip stream, or raw deflate as zip stores it) with the platform's
 * `DecompressionStream` (Node 24 and Workers alike), counting the output as it streams out: past
 * `maxBytes` it stops and cancels the stream, so a bomb costs at most `maxBytes` plus one chunk, whatever
 * it claims. Trailing bytes after the compressed stream are corruption.
 */
export async function inflate(
  data: Uint8Array,
  format: 'gzip' | 'deflate-raw',
  maxBytes: number,
): Promise<InflateResult> {
  const input = new Uint8Array(data)
  const source = new ReadableStream<Uint8Array<ArrayBuffer>>({
    start(controller) {
      controller.enqueue(input)
      controller.close()
    },
  })
  const reader = source.pipeThrough(new DecompressionStream(format)).getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      total += value.byteLength
      if (total > maxBytes) {
        await reader.cancel()
        return { ok: false, reason: 'too_large' }
      }
      chunks.push(value)
    }
  } catch {
    return { ok: false, reason: 'corrupt' }
  }
  return { ok: true, bytes: concat(chunks, total) }
}

export function concat(chunks: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total)
  let at = 0
  for (const chunk of chunks) {
    out.set(chunk, at)
    at += chunk.byteLength
  }
  return out
}

/** CRC-32 (IEEE 802.3, as zip and gzip use it). */
export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff
  for (const byte of bytes) crc = (TABLE[(crc ^ byte) & 0xff] as number) ^ (crc >>> 8)
  return (crc ^ 0xffffffff) >>> 0
}

const TABLE = makeTable()

function makeTable(): Uint32Array {
  const out = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    out[n] = c >>> 0
  }
  return out
}
