import type { QuickJSContext, QuickJSHandle } from 'quickjs-emscripten-core'
import type { OutputBuffer } from '../../output-buffer.ts'
import { type Description, describe } from './classify.ts'

/**
 * Awaits the module's namespace, then its default export (called with a fresh copy of `input` when it
 * is a function). The only guest code compiled on every execution: QuickJS compiles about 5 µs per
 * function, so the rest of the glue is built from the host or compiled on first use.
 */
const FINISHER = `(async (ns, parse, input) => { const v = (await ns).default; return typeof v === 'function' ? await v(parse(input)) : await v })`

/**
 * The guest library: `describe(error)` (name, message and the start of the stack, each bounded, every
 * getter guarded) and `format(args)` (a Node-like `inspect` for a few levels). Compiled inside the
 * guest on first use, with the intrinsics the host captured before user code ran as parameters.
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

/** Intrinsics captured from a fresh context before any user code runs. */
const INTRINSICS = [
  ['JSON', 'stringify'],
  ['String', null],
  ['Array', 'isArray'],
  ['Object', 'keys'],
  ['Object', 'getPrototypeOf'],
  ['Error', 'prototype'],
  ['Object', 'create'],
] as const

/**
 * The glue between host and guest for one execution, built in the fresh context before user code:
 * `console` (host functions that format through the guest library and write within the output
 * budget), `input` (parsed inside the guest), and handles to the intrinsics the host relies on,
 * captured before a guest could patch them. No host object, function or error is reachable from the
 * guest except the two console functions, which type-check nothing but count bytes: the host only
 * ever reads strings whose length it checked first.
 */
export class GuestGlue {
  readonly #ctx: QuickJSContext
  readonly #output: OutputBuffer
  readonly #handles: QuickJSHandle[] = []
  readonly #stringify: QuickJSHandle
  readonly #parse: QuickJSHandle
  readonly #slice: QuickJSHandle
  readonly #intrinsics: QuickJSHandle[]
  readonly #input: QuickJSHandle
  #library: { describe: QuickJSHandle; format: QuickJSHandle } | null = null

  constructor(ctx: QuickJSContext, output: OutputBuffer, inputJSON: string) {
    this.#ctx = ctx
    this.#output = output
    const own = (handle: QuickJSHandle) => {
      this.#handles.push(handle)
      return handle
    }
    const json = own(ctx.getProp(ctx.global, 'JSON'))
    this.#stringify = own(ctx.getProp(json, 'stringify'))
    this.#parse = own(ctx.getProp(json, 'parse'))
    const stringCtor = own(ctx.getProp(ctx.global, 'String'))
    const stringProto = own(ctx.getProp(stringCtor, 'prototype'))
    this.#slice = own(ctx.getProp(stringProto, 'slice'))
    this.#intrinsics = INTRINSICS.map(([name, key]) => {
      const owner = own(ctx.getProp(ctx.global, name))
      return key === null ? owner : own(ctx.getProp(owner, key))
    })
    this.#input = own(ctx.newString(inputJSON))
    const console = own(ctx.newObject())
    const out = own(ctx.newFunction('log', (...args) => this.#write('stdout', args)))
    const err = own(ctx.newFunction('error', (...args) => this.#write('stderr', args)))
    for (const key of ['log', 'info', 'debug']) ctx.setProp(console, key, out)
    for (const key of ['warn', 'error', 'trace']) ctx.setProp(console, key, err)
    ctx.setProp(ctx.global, 'console', console)
    const input = ctx.callFunction(this.#parse, ctx.undefined, this.#input)
    if (input.error) {
      // Only reachable when the heap cannot hold the input: nothing is left owned on the way out.
      input.error.dispose()
      this.dispose()
      throw new RangeError('the input exceeds the guest memory limit')
    }
    ctx.setProp(ctx.global, 'input', own(input.value))
  }

  /** Starts settling the module: answers a promise handle (the caller owns it). */
  finish(namespace: QuickJSHandle): { value: QuickJSHandle } | { error: QuickJSHandle } {
    const finisher = this.#ctx.evalCode(FINISHER, 'cordon:finish.js')
    if (finisher.error) return { error: finisher.error }
    const settled = this.#ctx.callFunction(
      finisher.value,
      this.#ctx.undefined,
      namespace,
      this.#parse,
      this.#input,
    )
    finisher.value.dispose()
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
    const result = this.#ctx.callFunction(this.#stringify, this.#ctx.undefined, value)
    if (result.error) return { error: result.error }
    try {
      if (this.#ctx.typeof(result.value) !== 'string') return { text: 'null' }
      if (this.#length(result.value) > maxLength) return { tooLong: true }
      return { text: this.#ctx.getString(result.value) }
    } finally {
      result.value.dispose()
    }
  }

  /** `{ name, message, stack }` of a guest error, read by the guest library; null if even that fails. */
  explain(error: QuickJSHandle): Description | null {
    const library = this.#lib()
    if (library === null) return null
    const described = this.#ctx.callFunction(library.describe, this.#ctx.undefined, error)
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
    const ctx = this.#ctx
    const refuse = () => ({ error: ctx.newError({ name: 'RangeError', message: 'output limit exceeded' }) })
    if (this.#output.exceeded) return refuse()
    const library = this.#lib()
    if (library === null) return refuse()
    const formatted = ctx.callFunction(library.format, ctx.undefined, ...args)
    if (formatted.error) return formatted
    let line = formatted.value
    try {
      if (ctx.typeof(line) !== 'string') return undefined
      // Cut inside the guest a line that cannot fit; never copy more than the budget into the host.
      const budget = this.#output.remaining
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
          this.#output.overflow()
          return refuse()
        }
      }
      const kept = this.#output.append(stream, ctx.getString(line))
      if (cut) this.#output.overflow()
      return kept && !cut ? undefined : refuse()
    } finally {
      line.dispose()
    }
  }

  #lib(): { describe: QuickJSHandle; format: QuickJSHandle } | null {
    if (this.#library !== null) return this.#library
    const factory = this.#ctx.evalCode(GUEST_LIBRARY, 'cordon:library.js')
    if (factory.error) {
      factory.error.dispose()
      return null
    }
    const made = this.#ctx.callFunction(factory.value, this.#ctx.undefined, ...this.#intrinsics)
    factory.value.dispose()
    if (made.error) {
      made.error.dispose()
      return null
    }
    const describeFn = this.#ctx.getProp(made.value, 'describe')
    const formatFn = this.#ctx.getProp(made.value, 'format')
    made.value.dispose()
    this.#handles.push(describeFn, formatFn)
    this.#library = { describe: describeFn, format: formatFn }
    return this.#library
  }

  #length(text: QuickJSHandle): number {
    const length = this.#ctx.getProp(text, 'length')
    try {
      return this.#ctx.getNumber(length)
    } finally {
      length.dispose()
    }
  }

  dispose(): void {
    for (const handle of this.#handles.reverse()) if (handle.alive) handle.dispose()
  }
}
