import RELEASE_SYNC_MODULE from '@jitl/quickjs-wasmfile-release-sync'
import {
  newQuickJSWASMModuleFromVariant,
  newVariant,
  type QuickJSSyncVariant,
  type QuickJSWASMModule,
} from 'quickjs-emscripten-core'
import { type BuildFacts, GuestGlue } from './guest-glue.ts'
import type { QuickJSBuild } from './quickjs-build.ts'

// The package's typings are CommonJS-shaped; under Node's ESM loader the default export is the variant.
const RELEASE_SYNC = RELEASE_SYNC_MODULE as unknown as QuickJSSyncVariant

const MiB = 1024 * 1024
const WASM_PAGE = 64 * 1024
/** The emscripten build's own initial heap; a module's memory starts here and may grow to its cap. */
const INITIAL_HEAP_BYTES = 16 * MiB
/**
 * Room above the guest's memory limit for QuickJS's own bookkeeping and the glue's allocations,
 * among them reply bodies handed to the guest (at most `MAX_REPLY_BYTES_PER_RUN`, 4 MiB) and the
 * short-lived UTF-8 copy of a reply's text (at most 3 MiB).
 */
export const HEAP_OVERHEAD_BYTES = 16 * MiB

/** A dropped module whose heap grew past this is garbage-collected right away. */
const RECLAIM_AT_BYTES = 64 * MiB

export interface ModulePoolOptions {
  /** Runs after which a module is replaced even when healthy (defence in depth: each run restores it). */
  maxRunsPerModule: number
  build: QuickJSBuild
  /** Keep a spare module ready for the next run (default true; off where memory is tight). */
  warmSpare: boolean
}

/** A module with its runtime, context and glue, captured before any user code. */
interface Prepared {
  module: QuickJSWASMModule
  glue: GuestGlue
}

interface Slot extends Prepared {
  key: string
  memoryMb: number
  runs: number
  /** A run holds it now. */
  leased: boolean
}

/** A module leased for one run. Return it with `release`, saying whether the run left it unusable. */
export interface ModuleLease {
  readonly module: QuickJSWASMModule
  readonly glue: GuestGlue
  readonly slot: Slot
}

/**
 * Hands out QuickJS WebAssembly modules, each with its runtime, context and glue ready. Each module
 * has its own linear memory whose maximum is the guest's memory limit plus a fixed overhead, so no
 * guest can grow the heap past its limit, whatever QuickJS's own accounting says. A module is used
 * only for runs of one tenant key and memory size: one tenant's heap pages are never handed to
 * another. One spare module is kept warm.
 */
export class ModulePool {
  readonly #build: QuickJSBuild
  readonly #facts: BuildFacts
  readonly #options: ModulePoolOptions
  #current: Slot | null = null
  #spare: { memoryMb: number; prepared: Promise<Prepared> } | null = null

  constructor(options: ModulePoolOptions) {
    this.#options = options
    this.#build = options.build
    this.#facts = { layout: options.build.layout, verified: false, randomStateAt: null }
  }

  /**
   * A module for one run. While a run holds the current module (a tool running beside its caller in
   * the same worker), the next run gets a module of its own, used once and dropped.
   */
  async acquire(key: string, memoryMb: number): Promise<ModuleLease> {
    const current = this.#current
    if (current !== null && !current.leased && current.key === key && current.memoryMb === memoryMb) {
      current.runs++
      current.leased = true
      return { module: current.module, glue: current.glue, slot: current }
    }
    const busy = current?.leased === true
    if (!busy) this.#drop(current)
    const slot: Slot = { key, memoryMb, ...(await this.#take(memoryMb)), runs: 1, leased: true }
    if (!busy) this.#current = slot
    return { module: slot.module, glue: slot.glue, slot }
  }

  /**
   * Ends a lease. A module the engine cannot restore (a host-side fault inside wasm, a heap the run
   * grew) is dropped, never reused.
   */
  release(lease: ModuleLease, drop: boolean): void {
    lease.slot.leased = false
    if (this.#current !== lease.slot) this.#reclaim(lease.slot)
    else if (drop || lease.slot.runs >= this.#options.maxRunsPerModule) this.#drop(lease.slot)
    if (this.#options.warmSpare) this.warm(lease.slot.memoryMb)
  }

  /**
   * Forgets a module. A large heap is reclaimed at once (where the runtime lets us collect garbage) rather
   * than whenever V8 gets to it, so it never counts against the next tenant's memory.
   */
  #drop(slot: Slot | null): void {
    this.#current = null
    if (slot !== null) this.#reclaim(slot)
  }

  #reclaim(slot: Slot): void {
    const heapBytes = slot.module.getWasmMemory().buffer.byteLength
    if (heapBytes > RECLAIM_AT_BYTES) this.#build.collectGarbage?.()
  }

  /** Prepares a spare module for the given size in the background, if none is ready. */
  warm(memoryMb: number): void {
    if (this.#spare !== null && this.#spare.memoryMb === memoryMb) return
    const prepared = this.#create(memoryMb)
    prepared.catch(() => {
      if (this.#spare?.prepared === prepared) this.#spare = null
    })
    this.#spare = { memoryMb, prepared }
  }

  #take(memoryMb: number): Promise<Prepared> {
    const spare = this.#spare
    if (spare !== null && spare.memoryMb === memoryMb) {
      this.#spare = null
      return spare.prepared
    }
    return this.#create(memoryMb)
  }

  async #create(memoryMb: number): Promise<Prepared> {
    const maximumBytes = Math.max(INITIAL_HEAP_BYTES, memoryMb * MiB + HEAP_OVERHEAD_BYTES)
    const wasmMemory = new WebAssembly.Memory({
      initial: INITIAL_HEAP_BYTES / WASM_PAGE,
      maximum: Math.ceil(maximumBytes / WASM_PAGE),
    })
    const module = await newQuickJSWASMModuleFromVariant(
      newVariant(RELEASE_SYNC, { wasmModule: this.#build.wasm, wasmMemory }),
    )
    return { module, glue: GuestGlue.create(module, this.#facts) }
  }

  dispose(): void {
    this.#current = null
    this.#spare = null
  }
}
