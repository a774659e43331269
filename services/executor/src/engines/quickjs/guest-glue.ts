import type {
  QuickJSContext,
  QuickJSDeferredPromise,
  QuickJSHandle,
  QuickJSRuntime,
  QuickJSWASMModule,
} from 'quickjs-emscripten-core'
import { type BindingCall, type BindingReply, BRIDGE_LIMITS, failure, readCall } from '../../bridge/bridge.ts'
import { GUEST_API, GUEST_API_INTRINSICS } from '../../bridge/guest-api.ts'
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
  /** Binding calls this run may make (the profile's `bindingCalls`). */
  readonly maxCalls: number
  /** Sends a guest call to the host; absent when the run has no bindings. */
  readonly call?: ((call: BindingCall) => Promise<BindingReply>) | undefined
}

/**
 * Bytes of reply bodies one run may hold in the guest. They live in the module's linear memory
 * outside QuickJS's own accounting (quickjs-emscripten copies them in), so they are bounded here,
 * well inside the room the module has above the guest's memory limit.
 */
export const MAX_REPLY_BYTES_PER_RUN = 4 * 1024 * 1024
/** Longest reply text handed to the guest (its UTF-8 copy is made outside QuickJS's accounting too). */
export const MAX_REPLY_TEXT = 1024 * 1024

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
  readonly #install: QuickJSHandle
  readonly #randomStateAt: number
  readonly #hostRefs: HostRefsImage
  readonly #image: MemoryImage
  #session: Session | null = null
  #input: QuickJSHandle | null = null
  #dirty = false
  /** Calls of the current run: how many were made, which await their reply, reply bodies not taken yet. */
  #calls = 0
  #pending = new Set<QuickJSDeferredPromise>()
  #bytes = new Map<number, QuickJSHandle>()
  #nextBytes = 1
  #replyBytes = 0
  #replied: (() => void) | null = null
  #memoryLimit = 0

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

    const hostCall = ctx.newFunction('call', (kind, op, args) => this.#call(kind, op, args))
    const take = ctx.newFunction('take', (id) => this.#take(id))
    const decode = ctx.newFunction('decode', (buffer) => this.#decode(buffer))
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
    this.#memoryLimit = memoryLimitBytes
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
    this.#calls = 0
    this.#replyBytes = 0
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
    return this.#pending.size
  }

  /** Resolves when the next reply has been handed to the guest (its promise settled). */
  nextReply(): Promise<void> {
    return new Promise((resolve) => {
      this.#replied = resolve
    })
  }

  /**
   * Ends a run. What it left in the heap (objects, pending jobs) is discarded by the next restore.
   * Answers false when the host side cached a heap pointer the restore would rewind (a value
   * quickjs-emscripten creates on first use): the module must then be dropped, not restored.
   */
  end(): boolean {
    this.#session = null
    this.#input = null
    // Replies still on their way find no deferred: their promises belong to a heap about to be reset.
    for (const deferred of this.#pending) deferred.dispose()
    this.#pending.clear()
    for (const handle of this.#bytes.values()) handle.dispose()
    this.#bytes.clear()
    this.#replied = null
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

  /**
   * The host side of `call(kind, op, argsJSON)`: reads three strings whose lengths it checked first,
   * parses the arguments once (bounded) and hands that copy to the host. Always answers a promise of
   * the guest realm, settled with the reply as JSON text (failures included) when it arrives.
   */
  #call(kind: QuickJSHandle, op: QuickJSHandle, args: QuickJSHandle): QuickJSHandle {
    const ctx = this.ctx
    const deferred = ctx.newPromise()
    const session = this.#session
    const answer = (reply: BindingReply) => {
      this.#deliver(deferred, reply)
      return deferred.handle
    }
    if (session === null) return answer(failure('INVALID_STATE', 'no run in progress'))
    const text = (handle: QuickJSHandle, max: number): string | null =>
      ctx.typeof(handle) === 'string' && this.#length(handle) <= max ? ctx.getString(handle) : null
    const kindText = text(kind, 32)
    const opText = text(op, 32)
    if (kindText === null || opText === null) return answer(failure('INVALID_ARGUMENT', 'malformed call'))
    const argsText = text(args, BRIDGE_LIMITS.maxArgumentBytes)
    if (argsText === null) {
      return answer(
        failure(
          'ARGUMENT_TOO_LARGE',
          `the arguments of ${kindText}.${opText} exceed ${BRIDGE_LIMITS.maxArgumentBytes} bytes`,
        ),
      )
    }
    this.#calls++
    if (this.#calls > session.maxCalls) {
      return answer(
        failure('BINDING_LIMIT', `this execution may make at most ${session.maxCalls} binding calls`),
      )
    }
    if (this.#pending.size >= BRIDGE_LIMITS.maxPendingCalls) {
      return answer(
        failure('BINDING_BUSY', `at most ${BRIDGE_LIMITS.maxPendingCalls} binding calls may be in flight`),
      )
    }
    const call = readCall(kindText, opText, argsText)
    if ('ok' in call) return answer(call)
    if (session.call === undefined) return answer(failure('NOT_GRANTED', `${call.kind} is not granted`))
    this.#pending.add(deferred)
    const settle = (reply: BindingReply) => {
      // A reply for an earlier run (or after `end`) finds its deferred gone and is dropped.
      if (this.#session !== session || !this.#pending.delete(deferred)) return
      this.#deliver(deferred, reply)
      const replied = this.#replied
      this.#replied = null
      replied?.()
    }
    session.call(call).then(settle, () => settle(failure('BINDING_FAILED', 'the binding failed')))
    return deferred.handle
  }

  /** Settles a call's promise with the reply as JSON text; bytes become a guest `ArrayBuffer` first. */
  #deliver(deferred: QuickJSDeferredPromise, reply: BindingReply): void {
    const ctx = this.ctx
    let answer: BindingReply = reply
    let bytesId: number | undefined
    if (reply.ok && reply.bytes !== undefined) {
      const bytes = Buffer.from(reply.bytes, 'base64')
      if (this.#replyBytes + bytes.length > MAX_REPLY_BYTES_PER_RUN) {
        answer = failure(
          'REPLY_TOO_LARGE',
          `the bodies of this execution's binding calls exceed ${MAX_REPLY_BYTES_PER_RUN} bytes`,
        )
      } else {
        const buffer = this.#newBytes(bytes)
        if (buffer === null) {
          answer = failure('OUT_OF_MEMORY', 'the body does not fit in the guest memory')
        } else {
          this.#replyBytes += bytes.length
          bytesId = this.#nextBytes++
          this.#bytes.set(bytesId, buffer)
        }
      }
    }
    let json = JSON.stringify(
      answer.ok ? { ok: true, value: answer.value, bytes: bytesId } : { ok: false, error: answer.error },
    )
    if (json.length > MAX_REPLY_TEXT) {
      json = JSON.stringify(failure('REPLY_TOO_LARGE', `the reply exceeds ${MAX_REPLY_TEXT} characters`))
    }
    const text = this.#fits(json.length * 2) ? this.#newText(json) : null
    try {
      deferred.resolve(text ?? ctx.null)
    } catch {
      // The heap is full even for settling: the guest's promise stays pending and its run ends on a limit.
      deferred.dispose()
    } finally {
      text?.dispose()
    }
  }

  /** The reply body `id` as an `ArrayBuffer` of the guest heap, once; undefined after. */
  #take(id: QuickJSHandle): QuickJSHandle | undefined {
    if (this.ctx.typeof(id) !== 'number') return undefined
    const key = this.ctx.getNumber(id)
    const handle = this.#bytes.get(key)
    if (handle === undefined) return undefined
    this.#bytes.delete(key)
    return handle
  }

  /** UTF-8 text of a guest `ArrayBuffer` (the guest API passes only buffers that `take` made). */
  #decode(buffer: QuickJSHandle): QuickJSHandle {
    if (this.ctx.typeof(buffer) !== 'object') throw new TypeError('expected an ArrayBuffer')
    const view = this.ctx.getArrayBuffer(buffer)
    try {
      const text =
        view.value.length <= MAX_REPLY_TEXT && this.#fits(view.value.length * 2)
          ? this.#newText(new TextDecoder().decode(view.value))
          : null
      if (text === null) throw new RangeError('out of memory decoding the body')
      return text
    } finally {
      view.dispose()
    }
  }

  /**
   * A guest `ArrayBuffer` holding a copy of `bytes`, or null when the module has no room for it.
   * (quickjs-emscripten's own `newArrayBuffer` does not check its allocation: it would write at
   * address 0 when the module is full.) The buffer is QuickJS's to free from then on.
   */
  #newBytes(bytes: Uint8Array): QuickJSHandle | null {
    const { ffi, module, memory, ctx } = internals(this.ctx)
    const pointer = module._malloc(Math.max(1, bytes.length))
    if (pointer === 0) return null
    module.HEAPU8.set(bytes, pointer)
    return memory.heapValueHandle(ffi.QTS_NewArrayBuffer(ctx.value, pointer, bytes.length))
  }

  /** A guest string, or null when the module has no room for the temporary UTF-8 copy. */
  #newText(text: string): QuickJSHandle | null {
    const { ffi, module, memory, ctx } = internals(this.ctx)
    const size = module.lengthBytesUTF8(text) + 1
    const pointer = module._malloc(size)
    if (pointer === 0) return null
    try {
      module.stringToUTF8(text, pointer, size)
      const handle = memory.heapValueHandle(ffi.QTS_NewString(ctx.value, pointer))
      if (this.ctx.typeof(handle) === 'string') return handle
      handle.dispose()
      return null
    } finally {
      module._free(pointer)
    }
  }

  /**
   * Whether the heap has room for `bytes` more below the run's memory limit. Small amounts are not
   * measured (measuring costs a few tens of µs): their allocation is checked when it is made.
   */
  #fits(bytes: number): boolean {
    if (bytes < 64 * 1024) return true
    const used = this.memoryUsed()
    return used !== null && used + bytes + 4096 < this.#memoryLimit
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

/** The parts of quickjs-emscripten's context that checked allocations need (stable in 0.32). */
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
