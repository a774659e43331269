import { GUEST_API, GUEST_API_INTRINSICS } from '../../bridge/guest-api.ts'
import { GUEST_LIBRARY, GUEST_LIBRARY_INTRINSICS } from '../quickjs/guest-library.ts'

/** Global names removed from every guest context before user code runs. */
export const REMOVED_GLOBALS = [
  // WebAssembly memory is allocated outside the isolate's heap limit, and compiling guest-supplied
  // wasm adds a second compiler to the attack surface: the isolate engine offers JavaScript only.
  'WebAssembly',
  // ICU's formatters, collators and segmenters live outside the heap limit too (measured: 3.3 GB of RSS
  // from DateTimeFormats kept under a 16 MiB limit). QuickJS has no Intl either.
  'Intl',
  // V8 runs its cleanup callbacks as tasks of its own on the isolate's thread, outside every task the
  // engine tracks: guest code could run after the outcome, or while the run looks idle (a review made
  // one allocate gigabytes after its result). QuickJS keeps it: there, its callbacks are jobs the
  // engine itself runs, within the run.
  'FinalizationRegistry',
] as const

/** `[global, property]` pairs as guest expressions (`JSON.stringify`, `String`). */
const expressions = (pairs: readonly (readonly [string, string | null])[]) =>
  pairs.map(([name, key]) => (key === null ? name : `${name}.${key}`)).join(', ')

/**
 * The glue, compiled as a closure in each fresh context before any user code (see `IsolateGlue`).
 * Parameters: `$0` write(stream, text) -> bytes of budget left (negative once it is exhausted),
 * `$1` call(kind, op, argsJSON) -> reply JSON text now, or a call id whose reply comes later through
 * `deliver`, `$2` decode(ArrayBuffer) -> text, `$3` report(kind, text), `$4` the name of the global
 * the setup module reads `done` from once. Answers `{ begin, deliver }`; the host keeps only references
 * to those two functions. Every host function is held in this closure, never on a guest object.
 */
export const ISOLATE_GLUE = `'use strict'
const write = $0, hostCall = $1, decodeHost = $2, report = $3, doneKey = $4
const G = globalThis
const J = JSON.stringify, P = JSON.parse, S = String, E = Error, RE = RangeError
const Pr = Promise, resolved = Promise.resolve.bind(Promise), M = Map
const mapGet = Map.prototype.get, mapSet = Map.prototype.set, mapDelete = Map.prototype.delete
const apply = Reflect.apply, slice = String.prototype.slice, define = Object.defineProperty
for (const name of ${JSON.stringify(REMOVED_GLOBALS)}) delete G[name]

// Resizable ArrayBuffers and growable SharedArrayBuffers get memory outside isolated-vm's heap
// accounting (measured: 256 MiB filled under a 16 MiB limit). Their constructors are replaced by ones
// that refuse \`maxByteLength\` and otherwise construct the original, with the same prototype (whose
// \`constructor\` now names the replacement), so the original constructor is reachable nowhere.
const fixedLength = (Original, name) => {
  const construct = Reflect.construct, hasMax = (o) => o !== null && typeof o === 'object' && o.maxByteLength !== undefined
  const Replacement = {
    [name]: function (length, options) {
      if (new.target === undefined) throw new TypeError("Constructor " + name + " requires 'new'")
      if (hasMax(options)) throw new RangeError(name + ': resizable buffers are not available in the sandbox')
      return construct(Original, [length], new.target)
    },
  }[name]
  Object.setPrototypeOf(Replacement, Object.getPrototypeOf(Original))
  for (const key of Reflect.ownKeys(Original)) {
    if (key === 'prototype' || key === 'length' || key === 'name') continue
    define(Replacement, key, Object.getOwnPropertyDescriptor(Original, key))
  }
  define(Replacement, 'prototype', { value: Original.prototype, writable: false, enumerable: false, configurable: false })
  define(Replacement, 'length', { value: 1, configurable: true })
  define(Original.prototype, 'constructor', { value: Replacement, writable: true, enumerable: false, configurable: true })
  define(G, name, { value: Replacement, writable: true, enumerable: false, configurable: true })
}
fixedLength(ArrayBuffer, 'ArrayBuffer')
fixedLength(SharedArrayBuffer, 'SharedArrayBuffer')
// Atomics.waitAsync settles through V8's own platform tasks, which the engine does not track: a run
// waiting on one would look like one that can never settle.
delete Atomics.waitAsync

const library = (${GUEST_LIBRARY})(${expressions(GUEST_LIBRARY_INTRINSICS)})
let room = 0
const writer = (stream) => (...args) => {
  if (room < 0) throw new RE('output limit exceeded')
  let line = library.format(...args)
  if (typeof line !== 'string') return
  if (line.length > room) line = apply(slice, line, [0, room + 1])
  room = write(stream, line)
  if (room < 0) throw new RE('output limit exceeded')
}
const log = writer(1), error = writer(2)
const consoleObject = { log, info: log, debug: log, warn: error, error, trace: error }
define(G, 'console', { value: consoleObject, writable: true, enumerable: false, configurable: true })

// Calls awaiting their reply, and reply bodies not taken yet, by the ids the host gave them.
const waiting = new M(), bodies = new M()
const call = (kind, op, argsJSON) => {
  const answer = hostCall(kind, op, argsJSON)
  if (typeof answer === 'string') return resolved(answer)
  return new Pr((resolve) => { apply(mapSet, waiting, [answer, resolve]) })
}
const take = (id) => {
  const body = apply(mapGet, bodies, [id])
  apply(mapDelete, bodies, [id])
  return body
}
// The host answers a body's text, or null for what it will not decode (as QuickJS's glue, it throws).
const decode = (body) => {
  const text = decodeHost(body)
  if (typeof text !== 'string') throw new RE('the body cannot be decoded within the limits')
  return text
}
const install = (${GUEST_API})(call, take, decode, ${expressions(GUEST_API_INTRINSICS)}, G)

let inputJSON = 'null', finished = false
const done = async (ns) => {
  if (finished) return
  finished = true
  let value
  try {
    value = ns.default
    value = typeof value === 'function' ? await value(P(inputJSON)) : await value
  } catch (e) {
    report('error', J(library.describe(e)))
    return
  }
  let text
  try { text = J(value) } catch (e) {
    report('unserializable', J(library.describe(e)))
    return
  }
  if (typeof text !== 'string') text = 'null'
  if (text.length > room) report('too-long', '')
  else report('ok', text)
}
define(G, doneKey, { value: done, writable: false, enumerable: false, configurable: true })

return {
  begin(input, grantsJSON, budget) {
    inputJSON = input
    room = budget
    define(G, 'input', { value: P(input), writable: true, enumerable: false, configurable: true })
    install(grantsJSON)
  },
  deliver(id, replyJSON, bytesId, body) {
    if (body !== undefined) apply(mapSet, bodies, [bytesId, body])
    const resolve = apply(mapGet, waiting, [id])
    apply(mapDelete, waiting, [id])
    if (resolve !== undefined) resolve(replyJSON)
  },
}`

/**
 * The setup module: imported by the entry module before the guest's, so it runs before any user code
 * and takes `done` off the global object. `%KEY%` is replaced by the per-context key.
 */
export const SETUP_MODULE = `export const done = globalThis[%KEY%]\ndelete globalThis[%KEY%]\n`

/** The entry module: setup first, then the guest's module, then `done` with its namespace. */
export const ENTRY_MODULE = `import { done } from 'cordon:setup'\nimport * as ns from 'main.js'\ndone(ns)\n`

/** Imports the guest's module once more: asks V8 whether it failed (it rethrows the same error). */
export const PROBE_MODULE = `import 'main.js'\n`
