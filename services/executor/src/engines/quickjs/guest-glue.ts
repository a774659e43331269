import type {
  QuickJSContext,
  QuickJSHandle,
  QuickJSRuntime,
  QuickJSWASMModule,
} from 'quickjs-emscripten-core'
import type { OutputBuffer } from '../../output-buffer.ts'
import { type Description, describe } from './classify.ts'
import { heapEnd, MemoryImage, type MemoryLayout, verifyLayout } from './memory-image.ts'
import { locateRandomState, seedRandomState } from './random-state.ts'

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

/**
 * The guest library: `describe(error)` (name, message and the start of the stack, each bounded, every
 * getter guarded) and `format(args)` (a Node-like `inspect` for a few levels). Compiled into the image
 * with the intrinsics the host captured before any user code as parameters.
 * (It still uses a few built-ins the guest may patch, such as `Math.min` or `Array.prototype.join`:
 * that changes only the guest's own console text; the host re-checks type and length of all it reads.)
 */
const GUEST_LIBRARY = `(function (J, S, isArray, keys, protoOf, ErrorProto, create) {
'use strict'
const MAX_DEPTH = 4, MAX_ITEMS = 100
const str = (v, n) => { try { return S(v).slice(0, n) } catch (_) { return '' } }
// A null-prototype copy: JSON.stringify must not find a toJSON the guest put on Object.prototype.
const plain = (fields) => { const o = create(null); o.name = fields.name; o.message = fields.message; if (fields.stack !== undefined) o.stack = fields.stack; return o }
const describe = (e) => {
  if (e !== null && (typeof e === 'object' || typeof e === 'function')) {
    let name = 'Error', message = '', stack = ''
    try { name = str(e.name, 200) } catch (_) {}
    try { message = str(e.message, 4000) } catch (_) {}
    try { stack = str(e.stack, 200) } catch (_) {}
    return plain({ name, message, stack })
  }
  return plain({ name: e === null ? 'null' : 'Error', message: str(e, 4000) })
}
const safe = (v) => { try { return S(v) } catch (_) { return '[unprintable]' } }
const isError = (v) => { try { for (let p = protoOf(v); p !== null; p = protoOf(p)) if (p === ErrorProto) return true } catch (_) {} return false }
const inspect = (value, depth, seen) => {
  switch (typeof value) {
    case 'string': return depth === 0 ? value : J(value)
    case 'function': return '[Function' + (value.name ? ': ' + safe(value.name) : '') + ']'
    case 'bigint': return safe(value) + 'n'
    case 'object': break
    default: return safe(value)
  }
  if (value === null) return 'null'
  if (isError(value)) { const d = describe(value); return d.message ? d.name + ': ' + d.message : d.name }
  if (seen.includes(value)) return '[Circular]'
  if (depth >= MAX_DEPTH) return isArray(value) ? '[Array]' : '[Object]'
  seen.push(value)
  const parts = []
  let out
  if (isArray(value)) {
    const n = Math.min(value.length, MAX_ITEMS)
    for (let i = 0; i < n; i++) parts.push(inspect(value[i], depth + 1, seen))
    if (value.length > n) parts.push('... ' + (value.length - n) + ' more items')
    out = '[ ' + parts.join(', ') + ' ]'
  } else {
    const k = keys(value), n = Math.min(k.length, MAX_ITEMS)
    for (let i = 0; i < n; i++) parts.push(k[i] + ': ' + inspect(value[k[i]], depth + 1, seen))
    if (k.length > n) parts.push('... ' + (k.length - n) + ' more keys')
    out = parts.length === 0 ? '{}' : '{ ' + parts.join(', ') + ' }'
  }
  seen.pop()
  return out
}
const format = (...args) => {
  const parts = []
  for (let i = 0; i < args.length; i++) {
    try { parts.push(inspect(args[i], 0, [])) } catch (e) { parts.push('[unprintable: ' + describe(e).message + ']') }
  }
  return parts.join(' ') + '\\n'
}
return { describe, format }
})`

/** Intrinsics captured from the fresh context before any user code runs. */
const INTRINSICS = [
  ['JSON', 'stringify'],
  ['String', null],
  ['Array', 'isArray'],
  ['Object', 'keys'],
  ['Object', 'getPrototypeOf'],
  ['Error', 'prototype'],
  ['Object', 'create'],
] as const

/** Handles quickjs-emscripten caches on a context the first time a host call needs them. */
const LAZY_CONTEXT_CACHES = ['_BigInt', '_Symbol', '_SymbolIterator', '_SymbolAsyncIterator']

/** What the glue needs from the run in progress. */
export interface Session {
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
 * run's output budget), `input` (parsed inside the guest), and handles to the intrinsics the host
 * relies on, captured before a guest could patch them. No host object, function or error is reachable
 * from the guest except the two console functions, which type-check nothing but count bytes: the host
 * only ever reads strings whose length it checked first.
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
    const intrinsics = INTRINSICS.map(([name, key]) =>
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
    this.#hostRefs = new HostRefsImage(runtime)
    this.#image = MemoryImage.capture(memory, facts.layout)
  }

  /**
   * Starts a run: restores the image if a run used it since, seeds `Math.random`, sets the memory
   * limit and the `input` global. Throws `InputTooLarge` when the heap cannot hold the input.
   */
  begin(session: Session, inputJSON: string, memoryLimitBytes: number): void {
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
  }

  /**
   * Ends a run. What it left in the heap (objects, pending jobs) is discarded by the next restore.
   * Answers false when the host side cached a heap pointer the restore would rewind (a value
   * quickjs-emscripten creates on first use): the module must then be dropped, not restored.
   */
  end(): boolean {
    this.#session = null
    this.#input = null
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
      if (this.#length(result.value) > maxLength) return { tooLong: true }
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
      const cut = this.#length(line) > budget
      if (cut) {
        const from = ctx.newNumber(0)
        const to = ctx.newNumber(budget)
        const sliced = ctx.callFunction(this.#slice, line, from, to)
        from.dispose()
        to.dispose()
        if (sliced.error) return sliced
        line.dispose()
        line = sliced.value
        if (ctx.typeof(line) !== 'string' || this.#length(line) > budget) {
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

  #length(text: QuickJSHandle): number {
    const length = this.ctx.getProp(text, 'length')
    try {
      return this.ctx.getNumber(length)
    } finally {
      length.dispose()
    }
  }
}

/** quickjs-emscripten's table of host functions the guest holds (ids in the heap, functions in JS). */
interface HostRefState {
  nextId: number
  freelist: number[]
  groups: Map<number, Map<number, unknown>>
}

/**
 * The JS side of the image. QuickJS tells the host when it frees a host function (a guest could
 * `delete console.log` and collect it); after a restore the heap holds that function again, so the
 * table goes back to its captured state too.
 */
class HostRefsImage {
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

  restore(): void {
    this.#state.nextId = this.#nextId
    this.#state.freelist = [...this.#freelist]
    this.#state.groups = new Map(this.#groups.map(([id, group]) => [id, new Map(group)]))
  }
}
