import type { QuickJSContext, QuickJSHandle, QuickJSRuntime } from 'quickjs-emscripten-core'

/**
 * Where the engine reaches past quickjs-emscripten's public API (stable in 0.32): allocations that
 * check for a full module, and the runtime's table of host functions, which the memory image must
 * rewind with the heap. Each accessor checks the shape it relies on and throws when a build lacks it.
 */

/** The length of a guest string, read without copying the string into the host. */
export function lengthOf(ctx: QuickJSContext, text: QuickJSHandle): number {
  const length = ctx.getProp(text, 'length')
  try {
    return ctx.getNumber(length)
  } finally {
    length.dispose()
  }
}

/**
 * A guest `ArrayBuffer` holding a copy of `bytes`, or null when the module has no room for it.
 * (quickjs-emscripten's own `newArrayBuffer` does not check its allocation: it would write at
 * address 0 when the module is full.) The buffer is QuickJS's to free from then on.
 */
export function newBytes(context: QuickJSContext, bytes: Uint8Array): QuickJSHandle | null {
  const { ffi, module, memory, ctx } = internals(context)
  const pointer = module._malloc(Math.max(1, bytes.length))
  if (pointer === 0) return null
  module.HEAPU8.set(bytes, pointer)
  return memory.heapValueHandle(ffi.QTS_NewArrayBuffer(ctx.value, pointer, bytes.length))
}

/** A guest string, or null when the module has no room for the temporary UTF-8 copy. */
export function newText(context: QuickJSContext, text: string): QuickJSHandle | null {
  const { ffi, module, memory, ctx } = internals(context)
  const size = module.lengthBytesUTF8(text) + 1
  const pointer = module._malloc(size)
  if (pointer === 0) return null
  try {
    module.stringToUTF8(text, pointer, size)
    const handle = memory.heapValueHandle(ffi.QTS_NewString(ctx.value, pointer))
    if (context.typeof(handle) === 'string') return handle
    handle.dispose()
    return null
  } finally {
    module._free(pointer)
  }
}

/** The parts of quickjs-emscripten's context that checked allocations need. */
interface ContextInternals {
  ffi: {
    QTS_NewArrayBuffer(ctx: number, pointer: number, length: number): number
    QTS_NewString(ctx: number, pointer: number): number
  }
  module: {
    _malloc(size: number): number
    _free(pointer: number): void
    HEAPU8: Uint8Array
    lengthBytesUTF8(text: string): number
    stringToUTF8(text: string, pointer: number, size: number): void
  }
  memory: { heapValueHandle(pointer: number): QuickJSHandle }
  ctx: { value: number }
}

function internals(ctx: QuickJSContext): ContextInternals {
  const inner = ctx as unknown as Partial<ContextInternals>
  if (
    typeof inner.ffi?.QTS_NewArrayBuffer !== 'function' ||
    typeof inner.module?._malloc !== 'function' ||
    typeof inner.memory?.heapValueHandle !== 'function' ||
    typeof inner.ctx?.value !== 'number'
  ) {
    throw new Error('unsupported quickjs-emscripten: no allocation internals on the context')
  }
  return inner as ContextInternals
}

/** quickjs-emscripten's table of host functions the guest holds (ids in the heap, functions in JS). */
interface HostRefState {
  nextId: number
  freelist: number[]
  groups: Map<number, Map<number, unknown>>
}

/**
 * The JS side of the memory image. QuickJS tells the host when it frees a host function (a guest could
 * `delete console.log` and collect it); after a restore the heap holds that function again, so the
 * table goes back to its captured state too. Construct it after the last host function is created:
 * one made later would be missing from the table after a restore.
 */
export class HostRefsImage {
  readonly #state: HostRefState
  readonly #nextId: number
  readonly #freelist: number[]
  readonly #groups: [number, [number, unknown][]][]

  constructor(runtime: QuickJSRuntime) {
    const state = (runtime as unknown as { hostRefs?: Partial<HostRefState> }).hostRefs
    if (
      typeof state?.nextId !== 'number' ||
      !Array.isArray(state.freelist) ||
      !(state.groups instanceof Map)
    ) {
      throw new Error('unsupported quickjs-emscripten: the runtime has no host reference table')
    }
    this.#state = state as HostRefState
    this.#nextId = state.nextId
    this.#freelist = [...state.freelist]
    this.#groups = [...state.groups].map(([id, group]) => [id, [...group]])
  }

  /** Puts the table back as it was when this image was taken. */
  restore(): void {
    this.#state.nextId = this.#nextId
    this.#state.freelist = [...this.#freelist]
    this.#state.groups = new Map(this.#groups.map(([id, group]) => [id, new Map(group)]))
  }
}
