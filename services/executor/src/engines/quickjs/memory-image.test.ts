import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import { LayoutError, MemoryImage, readLayout, STACK_BYTES, verifyLayout } from './memory-image.ts'
import { locateRandomState } from './random-state.ts'

const MiB = 1024 * 1024

const leb = (value: number, signed = false): number[] => {
  const out: number[] = []
  let rest = value
  for (;;) {
    const byte = rest & 0x7f
    rest = signed ? rest >> 7 : rest >>> 7
    const done = signed
      ? (rest === 0 && (byte & 0x40) === 0) || (rest === -1 && (byte & 0x40) !== 0)
      : rest === 0
    out.push(done ? byte : byte | 0x80)
    if (done) return out
  }
}
const section = (id: number, body: number[]) => [id, ...leb(body.length), ...body]

/** A minimal module: one mutable i32 global (the stack pointer) and the given data segments. */
function wasmWith(
  stackTop: number,
  segments: { flags?: number; offset: number; length: number }[],
): Uint8Array {
  const globals = [1, 0x7f, 1, 0x41, ...leb(stackTop, true), 0x0b]
  const data = [
    ...leb(segments.length),
    ...segments.flatMap(({ flags = 0, offset, length }) =>
      flags === 1
        ? [1, ...leb(length), ...new Array(length).fill(1)]
        : [flags, 0x41, ...leb(offset, true), 0x0b, ...leb(length), ...new Array(length).fill(1)],
    ),
  ]
  return new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, ...section(6, globals), ...section(11, data)])
}

describe('readLayout', () => {
  it('reads the pinned QuickJS build: static data, then a 5 MiB stack, then the heap', () => {
    const require = createRequire(import.meta.url)
    const layout = readLayout(readFileSync(require.resolve('@jitl/quickjs-wasmfile-release-sync/wasm')))
    expect(layout.stackTop - layout.dataEnd).toBe(STACK_BYTES)
    expect(layout.dataEnd).toBeGreaterThan(0)
  })

  it('accepts a build whose static data ends just below the stack', () => {
    const stackTop = 4096 + STACK_BYTES
    expect(readLayout(wasmWith(stackTop, [{ offset: 1024, length: 3000 }]))).toEqual({
      dataEnd: 4096,
      stackTop,
    })
  })

  it('refuses a build whose stack is not the size the image assumes', () => {
    expect(() => readLayout(wasmWith(1 * MiB, [{ offset: 1024, length: 100 }]))).toThrow(LayoutError)
    expect(() => readLayout(wasmWith(STACK_BYTES + 4 * MiB, [{ offset: 1024, length: 100 }]))).toThrow(
      /does not end the static data/,
    )
  })

  it('refuses passive data segments, whose place in memory the binary does not say', () => {
    expect(() => readLayout(wasmWith(4096 + STACK_BYTES, [{ flags: 1, offset: 0, length: 8 }]))).toThrow(
      /passive/,
    )
  })
})

describe('verifyLayout', () => {
  const layout = { dataEnd: 64 * 1024, stackTop: 64 * 1024 + 2 * MiB }
  const memory = () => new WebAssembly.Memory({ initial: 64 }) // 4 MiB

  it('accepts a heap that starts at the stack top', () => {
    const m = memory()
    new Uint8Array(m.buffer)[layout.stackTop + 16] = 1
    expect(() => verifyLayout(m, layout)).not.toThrow()
  })

  it('refuses memory in use deep inside what should be the stack', () => {
    const m = memory()
    new Uint8Array(m.buffer)[layout.stackTop + 16] = 1
    new Uint8Array(m.buffer)[layout.dataEnd + 100] = 1
    expect(() => verifyLayout(m, layout)).toThrow(/heap does not start at the stack top/)
  })

  it('refuses a heap that is not at the stack top', () => {
    expect(() => verifyLayout(memory(), layout)).toThrow(/heap starts elsewhere/)
  })
})

describe('MemoryImage', () => {
  it('puts data and heap back byte for byte, whatever a run wrote there', () => {
    const layout = { dataEnd: 64 * 1024, stackTop: 64 * 1024 + 2 * MiB }
    const m = new WebAssembly.Memory({ initial: 64 })
    const bytes = new Uint8Array(m.buffer)
    bytes.fill(7, 0, 1000)
    bytes.fill(9, layout.stackTop, layout.stackTop + 5000)
    const image = MemoryImage.capture(m, layout)
    expect(image.heapEnd).toBe(layout.stackTop + 5000)
    expect(image.byteLength).toBe(layout.dataEnd + 5000)

    bytes.fill(1, 0, layout.dataEnd)
    bytes.fill(2, layout.stackTop, layout.stackTop + 100_000)
    image.restore(m)
    expect(bytes.subarray(0, 1000).every((b) => b === 7)).toBe(true)
    expect(bytes.subarray(1000, layout.dataEnd).every((b) => b === 0)).toBe(true)
    expect(bytes.subarray(layout.stackTop, layout.stackTop + 5000).every((b) => b === 9)).toBe(true)
  })
})

describe('locateRandomState', () => {
  it('refuses to guess when no word advanced like Math.random', () => {
    const m = new WebAssembly.Memory({ initial: 1 })
    expect(() => locateRandomState(m, 0, 4096, () => 0.5, null)).toThrow(/Math.random state/)
  })
})
