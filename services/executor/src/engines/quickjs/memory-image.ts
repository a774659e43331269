/**
 * A copy of a QuickJS module's state in linear memory, restored before every run.
 *
 * The emscripten build lays its memory out data first: `[0, dataEnd)` static data and BSS,
 * `[dataEnd, stackTop)` the shadow stack (it grows down and holds nothing live while no wasm call is
 * running), `[stackTop, brk)` the malloc heap. Everything QuickJS knows (runtime, context, atoms,
 * shapes, pending jobs, the allocator's own bookkeeping and `brk`) lives in the data and heap ranges,
 * so copying those two ranges back puts the module in exactly the state it had when the image was
 * taken. Heap bytes above the image (and the dead stack) still hold what earlier runs wrote there:
 * free space to the restored allocator, which QuickJS initialises before any guest can read it, and
 * only ever bytes of the same tenant, since a module serves one.
 */

const KiB = 1024
const MiB = 1024 * KiB

/**
 * The shadow stack size the pinned build (`@jitl/quickjs-wasmfile-release-sync` 0.32.0) was linked
 * with. The binary does not record it; `readLayout` and `verifyLayout` refuse a build where it is wrong.
 */
export const STACK_BYTES = 5 * MiB
/** Static data beyond the last data segment (BSS) is small; more means the layout is not understood. */
const MAX_BSS_BYTES = 64 * KiB

export interface MemoryLayout {
  /** End of static data and BSS: the low end of the shadow stack. */
  readonly dataEnd: number
  /** The stack pointer's initial value: the high end of the shadow stack and the heap's base. */
  readonly stackTop: number
}

/**
 * Reads the layout from the wasm binary: the stack pointer is its first defined global, and the
 * active data segments end where BSS begins.
 */
export function readLayout(wasm: Uint8Array): MemoryLayout {
  const reader = new WasmReader(wasm)
  let stackTop: number | null = null
  let segmentsEnd = 0
  for (const section of reader.sections()) {
    if (section.id === 6) stackTop = reader.firstI32Global()
    if (section.id === 11) segmentsEnd = reader.dataSegmentsEnd()
    reader.seek(section.end)
  }
  if (stackTop === null) throw new LayoutError('the module defines no stack pointer global')
  const dataEnd = stackTop - STACK_BYTES
  if (dataEnd < segmentsEnd || dataEnd > segmentsEnd + MAX_BSS_BYTES || dataEnd % 16 !== 0) {
    throw new LayoutError(
      `stack top ${stackTop} minus ${STACK_BYTES} stack bytes does not end the static data (segments end at ${segmentsEnd})`,
    )
  }
  return { dataEnd, stackTop }
}

/**
 * Checks a live module against the layout, once per process: with runtime and context created, the
 * deep part of the stack must be untouched and the heap must start at the stack's top. A build whose
 * heap or stack sits elsewhere fails here instead of being restored wrongly.
 */
export function verifyLayout(memory: WebAssembly.Memory, layout: MemoryLayout): void {
  const bytes = new Uint8Array(memory.buffer)
  const deepStackEnd = layout.stackTop - MiB
  if (!isZero(bytes, layout.dataEnd, deepStackEnd)) {
    throw new LayoutError('memory below the stack top is in use: the heap does not start at the stack top')
  }
  if (isZero(bytes, layout.stackTop, Math.min(bytes.length, layout.stackTop + 64 * KiB))) {
    throw new LayoutError('nothing was allocated at the stack top: the heap starts elsewhere')
  }
}

export class LayoutError extends Error {
  override name = 'LayoutError'
  constructor(message: string) {
    super(`unexpected QuickJS memory layout: ${message}`)
  }
}

/** The data and heap ranges of one module, taken once and restored before every run. */
export class MemoryImage {
  readonly #layout: MemoryLayout
  readonly #data: Uint8Array
  readonly #heap: Uint8Array

  private constructor(layout: MemoryLayout, data: Uint8Array, heap: Uint8Array) {
    this.#layout = layout
    this.#data = data
    this.#heap = heap
  }

  /** Copies the module's state; memory above the heap's last non-zero byte was never written. */
  static capture(memory: WebAssembly.Memory, layout: MemoryLayout): MemoryImage {
    const bytes = new Uint8Array(memory.buffer)
    const heapEnd = usedEnd(bytes, layout.stackTop)
    return new MemoryImage(layout, bytes.slice(0, layout.dataEnd), bytes.slice(layout.stackTop, heapEnd))
  }

  /** Puts the module back into the captured state. Only call between wasm calls. */
  restore(memory: WebAssembly.Memory): void {
    const bytes = new Uint8Array(memory.buffer)
    bytes.set(this.#data, 0)
    bytes.set(this.#heap, this.#layout.stackTop)
  }

  /** Where the captured heap ends. */
  get heapEnd(): number {
    return this.#layout.stackTop + this.#heap.length
  }

  /** Bytes copied by one restore. */
  get byteLength(): number {
    return this.#data.length + this.#heap.length
  }
}

const ZERO_PAGE = new Uint8Array(64 * KiB)

/** Where the module's heap is last written (8-byte aligned end of its last non-zero byte). */
export function heapEnd(memory: WebAssembly.Memory, layout: MemoryLayout): number {
  return usedEnd(new Uint8Array(memory.buffer), layout.stackTop)
}

/** The end (8-byte aligned) of the last non-zero byte at or above `from`. */
function usedEnd(bytes: Uint8Array, from: number): number {
  let end = bytes.length
  // Whole zero pages first (compared natively), then bytes.
  while (end - ZERO_PAGE.length >= from && isZero(bytes, end - ZERO_PAGE.length, end)) end -= ZERO_PAGE.length
  while (end > from && bytes[end - 1] === 0) end--
  return Math.min(bytes.length, Math.ceil(end / 8) * 8)
}

function isZero(bytes: Uint8Array, from: number, to: number): boolean {
  for (let at = from; at < to; at += ZERO_PAGE.length) {
    const length = Math.min(ZERO_PAGE.length, to - at)
    if (Buffer.compare(bytes.subarray(at, at + length), ZERO_PAGE.subarray(0, length)) !== 0) return false
  }
  return true
}

/** Just enough of the wasm binary format to find the stack pointer and the data segments. */
class WasmReader {
  readonly #bytes: Uint8Array
  #at = 8 // magic and version

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes
  }

  *sections(): Generator<{ id: number; end: number }> {
    while (this.#at < this.#bytes.length) {
      const id = this.#byte()
      const size = this.#u32()
      yield { id, end: this.#at + size }
    }
  }

  seek(at: number): void {
    this.#at = at
  }

  /** The init value of the first defined global, which must be a mutable i32 set by `i32.const`. */
  firstI32Global(): number {
    if (this.#u32() === 0) throw new LayoutError('the module defines no globals')
    const type = this.#byte()
    const mutable = this.#byte()
    const opcode = this.#byte()
    if (type !== 0x7f || mutable !== 1 || opcode !== 0x41) {
      throw new LayoutError('the first global is not a mutable i32 stack pointer')
    }
    return this.#i32()
  }

  /** The highest end of an active data segment placed by an `i32.const` offset. */
  dataSegmentsEnd(): number {
    let end = 0
    const count = this.#u32()
    for (let i = 0; i < count; i++) {
      const flags = this.#u32()
      if (flags === 2)
        this.#u32() // memory index
      else if (flags !== 0) throw new LayoutError('passive data segments are not supported')
      if (this.#byte() !== 0x41) throw new LayoutError('a data segment offset is not a constant')
      const offset = this.#i32()
      if (this.#byte() !== 0x0b) throw new LayoutError('a data segment offset is not a constant')
      const length = this.#u32()
      this.#at += length
      end = Math.max(end, offset + length)
    }
    return end
  }

  #byte(): number {
    const value = this.#bytes[this.#at++]
    if (value === undefined) throw new LayoutError('the binary ends early')
    return value
  }

  #u32(): number {
    let result = 0
    for (let shift = 0; ; shift += 7) {
      const byte = this.#byte()
      result += (byte & 0x7f) * 2 ** shift
      if ((byte & 0x80) === 0) return result
    }
  }

  #i32(): number {
    let result = 0
    let shift = 0
    let byte: number
    do {
      byte = this.#byte()
      result |= (byte & 0x7f) << shift
      shift += 7
    } while (byte & 0x80)
    return shift < 32 && byte & 0x40 ? result | (-1 << shift) : result
  }
}
