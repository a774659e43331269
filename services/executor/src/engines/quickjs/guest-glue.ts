import type {
  QuickJSContext,
  QuickJSHandle,
  QuickJSRuntime,
  QuickJSWASMModule,
} from 'quickjs-emscripten-core'
import { GUEST_API, GUEST_API_INTRINSICS } from '../../bridge/guest-api.ts'
import type { OutputBuffer } from '../../output-buffer.ts'
import { type Description, describe } from './classify.ts'
import { type CallSession, GuestCalls } from './guest-calls.ts'
import { GUEST_LIBRARY, GUEST_LIBRARY_INTRINSICS } from './guest-library.ts'
import { heapEnd, MemoryImage, type MemoryLayout, verifyLayout } from './memory-image.ts'
import { HostRefsImage, lengthOf } from './quickjs-internals.ts'
import { locateRandomState, seedRandomState } from './random-state.ts'

export { MAX_REPLY_BYTES_PER_RUN, MAX_REPLY_TEXT } from './guest-calls.ts'

/**
 * QuickJS's own stack limit. Measured here: with the worker's `--stack-size=4000`, 256 KiB turns
 * every deep recursion we know of (plain calls, getters, Proxy traps, JSON of nested arrays) into a
 * guest `InternalError` before V8's native stack runs out.
 */
export const QUICKJS_STACK_BYTES = 256 * 1024

/**
 * Awaits the module's namespace, then its default export (called with a fresh copy of `input` when it
 * is a function).
 */
const FINISHER = `(async (ns, parse, input) => { const v = (await ns).default; return typeof v === 'function' ? await v(parse(input)) : await v })`

/** Handles quickjs-emscripten caches on a context the first time a host call needs them. */
const LAZY_CONTEXT_CACHES = ['_BigInt', '_Symbol', '_SymbolIterator', '_SymbolAsyncIterator']

/** What the glue needs from the run in progress (the bridge's part is `CallSession`). */
export interface Session extends CallSession {
  readonly output: OutputBuffer
  /** Asked by QuickJS's interrupt handler: true stops the guest. */
  interrupted(): boolean
}

/** What the engine learns about the wasm build from its first module and checks on the next ones. */
export interface BuildFacts {
  readonly layout: MemoryLayout
  verified: boolean
  randomStateAt: number | null
}

/** The input does not fit in the guest's heap. */
export class InputTooLarge extends RangeError {
  constructor() {
    super('the input exceeds the guest memory limit')
  }
}

/**
 * One QuickJS runtime and context on one wasm module, with the glue between host and guest, captured
 * as a memory image before any user code runs and restored before every run. Each run therefore starts
 * from the same bytes a fresh runtime and context would have, glue included, for the cost of copying
 * about 160 KiB instead of building all intrinsics again; only `Math.random` gets a fresh seed.
 *
 * The glue: `console` (host functions that format through the guest library and write within the
 * run's output budget), `input` (parsed inside the guest), the binding bridge (the guest API's
 * `install`, holding the three host functions of `GuestCalls`), and handles to the intrinsics the host
 * relies on, captured before a guest could patch them. No host object, function or error is reachable
 * from the guest except those five host functions, and the host only ever reads strings whose length
 * it checked first. Every host function is created before the image is captured, so a restore brings
 * each back with the heap.
 */
export class GuestGlue {
  readonly runtime: QuickJSRuntime
  readonly ctx: QuickJSContext
  readonly #system: QuickJSContext
  readonly #memory: WebAssembly.Memory
  readonly #stringify: QuickJSHandle
  readonly #parse: QuickJSHandle
  readonly #slice: QuickJSHandle
  readonly #finisher: QuickJSHandle
  readonly #library: { describe: QuickJSHandle; format: QuickJSHandle }
  readonly #install: QuickJSHandle
  /** The host side of the binding bridge and the current run's calls. */
  readonly #calls: GuestCalls
  readonly #randomStateAt: number
  readonly #hostRefs: HostRefsImage
  readonly #image: MemoryImage
  #session: Session | null = null
  #input: QuickJSHandle | null = null
  #dirty = false

  static create(module: QuickJSWASMModule, facts: BuildFacts): GuestGlue {
    const runtime = module.newRuntime()
    runtime.setMaxStackSize(QUICKJS_STACK_BYTES)
    return new GuestGlue(module.getWasmMemory(), runtime, runtime.newContext(), facts)
  }

  private constructor(
    memory: WebAssembly.Memory,
    runtime: QuickJSRuntime,
    ctx: QuickJSContext,
    facts: BuildFacts,
  ) {
    this.#memory = memory
    this.runtime = runtime
    this.ctx = ctx
    // quickjs-emscripten creates a "system" context on first `computeMemoryUsage`; made during a run,
    // its pointer would outlive the restore, so it is made here, in the image. It is a second realm
    // with only base objects and JSON: no guest can patch what the host reads there.
    const lazy = runtime as unknown as { context?: QuickJSContext }
    if (lazy.context !== undefined)
      throw new Error('unsupported quickjs-emscripten: the runtime has a context')
    this.#system = runtime.newContext({ intrinsics: { BaseObjects: true, JSON: true } })
    lazy.context = this.#system
    const temporary: QuickJSHandle[] = []
    const get = (owner: QuickJSHandle, key: string, keep = false) => {
      const handle = ctx.getProp(owner, key)
      if (!keep) temporary.push(handle)
      return handle
    }
    const json = get(ctx.global, 'JSON')
    this.#stringify = get(json, 'stringify', true)
    this.#parse = get(json, 'parse', true)
    this.#slice = get(get(get(ctx.global, 'String'), 'prototype'), 'slice', true)
    const intrinsics = GUEST_LIBRARY_INTRINSICS.map(([name, key]) =>
      key === null ? get(ctx.global, name) : get(get(ctx.global, name), key),
    )

    const console = ctx.newObject()
    temporary.push(console)
    const out = ctx.newFunction('log', (...args) => this.#write('stdout', args))
    const err = ctx.newFunction('error', (...args) => this.#write('stderr', args))
    temporary.push(out, err)
    for (const key of ['log', 'info', 'debug']) ctx.setProp(console, key, out)
    for (const key of ['warn', 'error', 'trace']) ctx.setProp(console, key, err)
    ctx.setProp(ctx.global, 'console', console)

    const factory = ctx.evalCode(GUEST_LIBRARY, 'cordon:library.js').unwrap()
    const library = ctx.callFunction(factory, ctx.undefined, ...intrinsics).unwrap()
    temporary.push(factory, library)
    this.#library = { describe: get(library, 'describe', true), format: get(library, 'format', true) }
    this.#finisher = ctx.evalCode(FINISHER, 'cordon:finish.js').unwrap()

    this.#calls = new GuestCalls(
      ctx,
      () => this.#session,
      () => this.memoryUsed(),
    )
    const hostCall = ctx.newFunction('call', (kind, op, args) => this.#calls.call(kind, op, args))
    const take = ctx.newFunction('take', (id) => this.#calls.take(id))
    const decode = ctx.newFunction('decode', (buffer) => this.#calls.decode(buffer))
    temporary.push(hostCall, take, decode)
    const apiIntrinsics = GUEST_API_INTRINSICS.map(([name, key]) =>
      key === null ? get(ctx.global, name) : get(get(ctx.global, name), key),
    )
    const api = ctx.evalCode(GUEST_API, 'cordon:bindings.js').unwrap()
    temporary.push(api)
    this.#install = ctx
      .callFunction(api, ctx.undefined, hostCall, take, decode, ...apiIntrinsics, ctx.global)
      .unwrap()
    runtime.setInterruptHandler(() => this.#session?.interrupted() ?? false)

    const math = get(ctx.global, 'Math')
    const random = get(math, 'random')
    if (!facts.verified) {
      verifyLayout(memory, facts.layout)
      facts.verified = true
    }
    this.#randomStateAt = locateRandomState(
      memory,
      facts.layout.stackTop,
      heapEnd(memory, facts.layout),
      () => {
        const drawn = ctx.callFunction(random, math).unwrap()
        const value = ctx.getNumber(drawn)
        drawn.dispose()
        return value
      },
      facts.randomStateAt,
    )
    facts.randomStateAt = this.#randomStateAt
    for (const handle of temporary.reverse()) handle.dispose()
    // Last: every host function exists by now, so the image and the host-ref table hold all of them.
    this.#hostRefs = new HostRefsImage(runtime)
    this.#image = MemoryImage.capture(memory, facts.layout)
  }

  /**
   * Starts a run: restores the image if a run used it since, seeds `Math.random`, sets the memory
   * limit and the `input` global. Throws `InputTooLarge` when the heap cannot hold the input.
   */
  begin(session: Session, inputJSON: string, memoryLimitBytes: number, grantsJSON: string): void {
    if (this.#dirty) {
      this.#image.restore(this.#memory)
      this.#hostRefs.restore()
    }
    this.#dirty = true
    seedRandomState(this.#memory, this.#randomStateAt)
    this.runtime.setMemoryLimit(memoryLimitBytes)
    this.#session = session
    const ctx = this.ctx
    const text = ctx.newString(inputJSON)
    this.#input = text
    const input = ctx.callFunction(this.#parse, ctx.undefined, text)
    if (input.error) {
      input.error.dispose()
      throw new InputTooLarge()
    }
    ctx.setProp(ctx.global, 'input', input.value)
    input.value.dispose()
    this.#calls.begin(memoryLimitBytes)
    const grants = ctx.newString(grantsJSON)
    const installed = ctx.callFunction(this.#install, ctx.undefined, grants)
    grants.dispose()
    if (installed.error) {
      installed.error.dispose()
      throw new InputTooLarge()
    }
    installed.value.dispose()
  }

  /** Binding calls awaiting their reply. */
  get pendingCalls(): number {
    return this.#calls.pending
  }

  /** Resolves when the next reply has been handed to the guest (its promise settled). */
  nextReply(): Promise<void> {
    return this.#calls.nextReply()
  }

  /**
   * Ends a run. What it left in the heap (objects, pending jobs) is discarded by the next restore.
   * Answers false when the host side cached a heap pointer the restore would rewind (a value
   * quickjs-emscripten creates on first use): the module must then be dropped, not restored.
   */
  end(): boolean {
    this.#session = null
    this.#input = null
    // Before any restore: the calls' promises and bodies belong to the heap about to be reset.
    this.#calls.end()
    const runtime = this.runtime as unknown as { context?: QuickJSContext }
    const caches = this.ctx as unknown as Record<string, unknown>
    return runtime.context === this.#system && LAZY_CONTEXT_CACHES.every((key) => caches[key] === undefined)
  }

  /**
   * QuickJS's count of heap bytes in use, read in the system context; null when the heap is too full
   * to even build the answer.
   */
  memoryUsed(): number | null {
    try {
      const handle = this.runtime.computeMemoryUsage()
      try {
        const used = (this.#system.dump(handle) as { memory_used_size?: unknown }).memory_used_size
        return typeof used === 'number' ? used : null
      } finally {
        handle.dispose()
      }
    } catch {
      return null
    }
  }

  /** Starts settling the module: answers a promise handle (the caller owns it). */
  finish(namespace: QuickJSHandle): { value: QuickJSHandle } | { error: QuickJSHandle } {
    const input = this.#input ?? this.ctx.undefined
    const settled = this.ctx.callFunction(this.#finisher, this.ctx.undefined, namespace, this.#parse, input)
    return settled.error ? { error: settled.error } : { value: settled.value }
  }

  /**
   * The result as JSON text, via the captured JSON.stringify (the guest's toJSON and getters run in
   * the guest, under its limits). Refuses without copying a text longer than `maxLength`.
   */
  stringify(
    value: QuickJSHandle,
    maxLength: number,
  ): { text: string } | { tooLong: true } | { error: QuickJSHandle } {
    const result = this.ctx.callFunction(this.#stringify, this.ctx.undefined, value)
    if (result.error) return { error: result.error }
    try {
      if (this.ctx.typeof(result.value) !== 'string') return { text: 'null' }
      if (lengthOf(this.ctx, result.value) > maxLength) return { tooLong: true }
      return { text: this.ctx.getString(result.value) }
    } finally {
      result.value.dispose()
    }
  }

  /** `{ name, message, stack }` of a guest error, read by the guest library; null if even that fails. */
  explain(error: QuickJSHandle): Description | null {
    const described = this.ctx.callFunction(this.#library.describe, this.ctx.undefined, error)
    if (described.error) {
      described.error.dispose()
      return null
    }
    const text = this.stringify(described.value, 16 * 1024)
    described.value.dispose()
    if ('error' in text) {
      text.error.dispose()
      return null
    }
    return 'text' in text ? describe(text.text) : null
  }

  #write(stream: 'stdout' | 'stderr', args: QuickJSHandle[]) {
    const ctx = this.ctx
    const refuse = () => ({ error: ctx.newError({ name: 'RangeError', message: 'output limit exceeded' }) })
    const output = this.#session?.output
    if (output === undefined || output.exceeded) return refuse()
    const formatted = ctx.callFunction(this.#library.format, ctx.undefined, ...args)
    if (formatted.error) return formatted
    let line = formatted.value
    try {
      if (ctx.typeof(line) !== 'string') return undefined
      // Cut inside the guest a line that cannot fit; never copy more than the budget into the host.
      const budget = output.remaining
      const cut = lengthOf(ctx, line) > budget
      if (cut) {
        const from = ctx.newNumber(0)
        const to = ctx.newNumber(budget)
        const sliced = ctx.callFunction(this.#slice, line, from, to)
        from.dispose()
        to.dispose()
        if (sliced.error) return sliced
        line.dispose()
        line = sliced.value
        if (ctx.typeof(line) !== 'string' || lengthOf(ctx, line) > budget) {
          output.overflow()
          return refuse()
        }
      }
      const kept = output.append(stream, ctx.getString(line))
      if (cut) output.overflow()
      return kept && !cut ? undefined : refuse()
    } finally {
      line.dispose()
    }
  }
}
