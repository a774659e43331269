import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import RELEASE_SYNC_MODULE from '@jitl/quickjs-wasmfile-release-sync'
import {
  newQuickJSWASMModuleFromVariant,
  newVariant,
  type QuickJSSyncVariant,
  type QuickJSWASMModule,
} from 'quickjs-emscripten-core'

// The package's typings are CommonJS-shaped; under Node's ESM loader the default export is the variant.
const RELEASE_SYNC = RELEASE_SYNC_MODULE as unknown as QuickJSSyncVariant

const MiB = 1024 * 1024
const WASM_PAGE = 64 * 1024
/** The emscripten build's own initial heap; a module's memory starts here and may grow to its cap. */
const INITIAL_HEAP_BYTES = 16 * MiB
/** Room above the guest's memory limit for QuickJS's own bookkeeping and the glue's allocations. */
export const HEAP_OVERHEAD_BYTES = 16 * MiB

/** A dropped module whose heap grew past this is garbage-collected right away. */
const RECLAIM_AT_BYTES = 64 * MiB

export interface ModulePoolOptions {
  /** Runs after which a module is replaced even when healthy (bounds fragmentation and leaks). */
  maxRunsPerModule: number
}

interface Slot {
  key: string
  memoryMb: number
  module: QuickJSWASMModule
  runs: number
}

/** A module leased for one run. Return it with `release`, saying whether the run left it unusable. */
export interface ModuleLease {
  readonly module: QuickJSWASMModule
  readonly slot: Slot
}

/**
 * Hands out QuickJS WebAssembly modules. Each module has its own linear memory whose maximum is the
 * guest's memory limit plus a fixed overhead, so no guest can grow the heap past its limit, whatever
 * QuickJS's own accounting says. A module is used only for runs of one tenant key and memory size:
 * one tenant's freed heap pages are never handed to another. One spare module is kept warm.
 */
export class ModulePool {
  readonly #wasm: WebAssembly.Module
  readonly #options: ModulePoolOptions
  #current: Slot | null = null
  #spare: { memoryMb: number; module: Promise<QuickJSWASMModule> } | null = null

  constructor(options: ModulePoolOptions) {
    this.#options = options
    const require = createRequire(import.meta.url)
    this.#wasm = new WebAssembly.Module(
      readFileSync(require.resolve('@jitl/quickjs-wasmfile-release-sync/wasm')),
    )
  }

  async acquire(key: string, memoryMb: number): Promise<ModuleLease> {
    const current = this.#current
    if (current !== null && current.key === key && current.memoryMb === memoryMb) {
      current.runs++
      return { module: current.module, slot: current }
    }
    this.#drop(current)
    const slot: Slot = { key, memoryMb, module: await this.#take(memoryMb), runs: 1 }
    this.#current = slot
    return { module: slot.module, slot }
  }

  /** Ends a lease; a tainted module (host-side fault inside wasm) is dropped, never reused. */
  release(lease: ModuleLease, tainted: boolean): void {
    if (tainted || lease.slot.runs >= this.#options.maxRunsPerModule) {
      if (this.#current === lease.slot) this.#drop(lease.slot)
    }
    this.warm(lease.slot.memoryMb)
  }

  /**
   * Forgets a module. A large heap is reclaimed at once (the worker runs with --expose-gc) rather
   * than whenever V8 gets to it, so it never counts against the next tenant's memory.
   */
  #drop(slot: Slot | null): void {
    this.#current = null
    if (slot === null) return
    const heapBytes = slot.module.getWasmMemory().buffer.byteLength
    if (heapBytes > RECLAIM_AT_BYTES) (globalThis as { gc?: () => void }).gc?.()
  }

  /** Prepares a spare module for the given size in the background, if none is ready. */
  warm(memoryMb: number): void {
    if (this.#spare !== null && this.#spare.memoryMb === memoryMb) return
    const module = this.#create(memoryMb)
    module.catch(() => {
      if (this.#spare?.module === module) this.#spare = null
    })
    this.#spare = { memoryMb, module }
  }

  #take(memoryMb: number): Promise<QuickJSWASMModule> {
    const spare = this.#spare
    if (spare !== null && spare.memoryMb === memoryMb) {
      this.#spare = null
      return spare.module
    }
    return this.#create(memoryMb)
  }

  #create(memoryMb: number): Promise<QuickJSWASMModule> {
    const maximumBytes = Math.max(INITIAL_HEAP_BYTES, memoryMb * MiB + HEAP_OVERHEAD_BYTES)
    const wasmMemory = new WebAssembly.Memory({
      initial: INITIAL_HEAP_BYTES / WASM_PAGE,
      maximum: Math.ceil(maximumBytes / WASM_PAGE),
    })
    return newQuickJSWASMModuleFromVariant(newVariant(RELEASE_SYNC, { wasmModule: this.#wasm, wasmMemory }))
  }

  dispose(): void {
    this.#current = null
    this.#spare = null
  }
}
