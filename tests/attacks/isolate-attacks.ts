import { GuestErrorCode } from '@cordon/contracts'
import { expect } from 'vitest'
import { type Attack, endedOnEither, failed, ok } from './attack-suite.ts'

const MEMORY_STOP = endedOnEither('memory_limit/MEMORY_LIMIT')

/** Everything reachable from the global object: own properties and prototypes, breadth first. */
const WALK = `const seen = new Set()
const queue = [globalThis]
const found = []
const suspicious = /^(Reference|Callback|ExternalCopy|Isolate|Context|Module|Script|NativeModule)$/
while (queue.length > 0 && seen.size < 20000) {
  const value = queue.shift()
  if (value === null || (typeof value !== 'object' && typeof value !== 'function') || seen.has(value)) continue
  seen.add(value)
  if (typeof value === 'function' && suspicious.test(value.name)) found.push(value.name)
  // Method names of isolated-vm's handles (WeakRef's deref is standard, so it is not among them).
  for (const key of ['derefInto', 'copyInto', 'applySync', 'applySyncPromise', 'applyIgnored', 'getSync', 'setSync', 'evalClosure', 'compileScript', 'createContext']) {
    try { if (typeof value[key] === 'function') found.push(key) } catch {}
  }
  queue.push(Object.getPrototypeOf(value))
  for (const key of Reflect.ownKeys(value)) {
    let descriptor
    try { descriptor = Object.getOwnPropertyDescriptor(value, key) } catch { continue }
    if (descriptor === undefined) continue
    for (const v of [descriptor.value, descriptor.get, descriptor.set]) if (v !== undefined) queue.push(v)
  }
}`

/**
 * Attacks on what the isolate engine adds: isolated-vm's handles behind the glue, V8's allocators
 * and its blocking or off-heap primitives. Run on the isolate engine only.
 */
export const ISOLATE_ATTACKS: readonly Attack[] = [
  {
    name: 'no isolated-vm Reference, Callback, ExternalCopy or ivm module anywhere reachable from the global',
    // The walk must have covered the realm (about 700 objects and functions in V8), not stopped early.
    code: `${WALK}\nexport default [seen.size > 500, found]`,
    expect: ok([true, []]),
  },
  {
    name: 'console functions carry no host handle: no own properties beyond name and length, no caller',
    code: `const own = (f) => Reflect.ownKeys(f).map(String).filter((k) => k !== 'length' && k !== 'name' && k !== 'prototype')
let caller = 'none'
try { caller = typeof console.log.caller } catch (e) { caller = e.constructor.name }
export default [own(console.log), own(console.error), caller, Object.getPrototypeOf(console.log) === Function.prototype]`,
    expect: ok([[], [], 'TypeError', true]),
  },
  {
    name: 'stack frames seen while console.log runs guest getters expose no glue function or receiver',
    code: `let leaked = []
Error.prepareStackTrace = (error, sites) => sites
const probe = { get x() {
  const sites = new Error('probe').stack
  leaked = sites.filter((s) => s.getFileName() !== 'main.js').map((s) => [String(s.getFileName()), typeof s.getFunction(), typeof s.getThis()]).filter(([, fn, self]) => fn !== 'undefined' || self !== 'undefined')
  return 1
} }
console.log(probe)
export default leaked`,
    expect: ok([]),
  },
  {
    name: 'a patched Map.prototype or Promise cannot reach the glue state that maps call ids to resolvers',
    code: `const stolen = []
Map.prototype.set = function (k, v) { stolen.push(typeof v); return this }
Map.prototype.get = function (k) { stolen.push('get'); return undefined }
Promise.prototype.then = function () { stolen.push('then') }
console.log('still works')
export default stolen`,
    expect: (record) => {
      ok([])(record)
      expect(record.stdout).toBe('still works\n')
    },
  },
  {
    name: 'host callbacks re-entered from a getter while the host formats a line',
    code: `let depth = 0
const nest = { get x() { depth++; if (depth < 50) console.log(nest); return depth } }
console.log(nest)
export default depth`,
    expect: (record) => {
      ok(50)(record)
      expect(record.stdout.split('\n').filter(Boolean)).toHaveLength(50)
    },
  },
  {
    name: 'async re-entry: a thousand microtasks log while the result settles',
    code: `const jobs = []
for (let i = 0; i < 1000; i++) jobs.push(Promise.resolve(i).then((n) => console.log(n)))
export default Promise.all(jobs).then(() => 'settled')`,
    expect: (record) => {
      ok('settled')(record)
      expect(record.stdout.split('\n').filter(Boolean)).toHaveLength(1000)
    },
  },
  {
    name: 'globals, pending jobs and module bindings of one execution are gone in the next',
    code: `globalThis.leftover = 'tenant data'
export const secret = 'kept?'
new Promise(() => {}).then(() => { globalThis.late = true })
Promise.resolve().then(() => { globalThis.queued = true })
export default 1`,
    expect: ok(1),
    next: {
      code: `await null
export default [typeof leftover, typeof secret, typeof late, typeof queued]`,
      expect: ok(['undefined', 'undefined', 'undefined', 'undefined']),
    },
  },
  {
    // Found in review: disposing the isolate from inside the report callback lost V8's termination,
    // and every such job retired its worker (with crash back-off, a way to starve other tenants).
    name: 'a microtask loop queued from toJSON while the result is reported',
    code: `export default { toJSON() { Promise.resolve().then(() => { for (;;) {} }); return 'reported' } }`,
    expect: ok('reported'),
  },
  {
    name: 'a stray rejection whose stack getter loops, read by isolated-vm after the result',
    code: `const e = new Error('x')
Object.defineProperty(e, 'stack', { get() { for (;;) {} } })
export default async () => { await null; Promise.reject(e); return 5 }`,
    expect: ok(5),
  },
  {
    // Found in review: V8 ran the callback as a task of its own after the result, outside the
    // engine's view, and it allocated gigabytes in a worker that looked idle.
    name: 'a FinalizationRegistry callback that allocates without end after the result: there is none',
    code: `const registry = new FinalizationRegistry(() => { const a = []; while (true) a.push(new Array(1000).fill(1)) })
;(() => { registry.register({}, 1) })()
export default 'r'`,
    expect: failed(GuestErrorCode.GUEST_EXCEPTION, /^ReferenceError: FinalizationRegistry is not defined$/),
  },
  {
    name: 'a stray rejection that claims the isolate was disposed does not end a working run',
    code: `Promise.reject(new Error('Isolate was disposed during execution due to memory limit'))
await null
export default 7`,
    expect: ok(7),
  },
  {
    name: 'Intl formatters kept in a loop (ICU memory is outside the heap limit): there is no Intl',
    code: `const keep = []\nfor (;;) keep.push(new Intl.DateTimeFormat('en', { dateStyle: 'full', timeStyle: 'full' }))`,
    expect: failed(GuestErrorCode.GUEST_EXCEPTION, /^ReferenceError: Intl is not defined$/),
  },
  {
    name: 'locale methods still answer without Intl, and keep nothing',
    code: `export default [typeof Intl, (1234.5).toLocaleString('en-US'), 'a'.localeCompare('b')]`,
    expect: ok(['undefined', '1,234.5', -1]),
  },
  {
    name: 'Atomics.waitAsync (settled by tasks the engine cannot see) is not offered',
    code: `export default [typeof Atomics.wait, typeof Atomics.waitAsync]`,
    expect: ok(['function', 'undefined']),
  },
  {
    name: 'allocation loop of fresh arrays (defeats isolated-vm limits: the worker is replaced)',
    code: `const a = []\nwhile (true) a.push(new Array(1000).fill(1))`,
    expect: endedOnEither('memory_limit/MEMORY_LIMIT', 'timeout/CPU_TIME_LIMIT', 'timeout/WALL_TIME_LIMIT'),
  },
  {
    name: 'allocation loop of fresh arrays, counted',
    code: `const a = []\nfor (let i = 0; ; i++) a.push(new Array(1000).fill(i))`,
    expect: endedOnEither('memory_limit/MEMORY_LIMIT', 'timeout/CPU_TIME_LIMIT', 'timeout/WALL_TIME_LIMIT'),
  },
  {
    name: 'ArrayBuffer flood of 1 MiB buffers',
    code: `const a = []\nfor (;;) a.push(new ArrayBuffer(2 ** 20))`,
    expect: MEMORY_STOP,
  },
  {
    name: 'ArrayBuffer flood that swallows every allocation failure',
    code: `const a = []\nfor (;;) try { a.push(new ArrayBuffer(2 ** 20)) } catch {}`,
    expect: endedOnEither('memory_limit/MEMORY_LIMIT', 'timeout/CPU_TIME_LIMIT'),
  },
  {
    name: 'SharedArrayBuffer flood',
    code: `const a = []\nfor (;;) a.push(new SharedArrayBuffer(2 ** 20))`,
    expect: MEMORY_STOP,
  },
  {
    name: 'typed arrays filled past the heap limit',
    code: `const a = []\nfor (;;) a.push(new Float64Array(2 ** 17).fill(Math.PI))`,
    expect: MEMORY_STOP,
  },
  {
    name: 'a resizable ArrayBuffer grown past the heap limit (off-heap memory)',
    code: `const b = new ArrayBuffer(8, { maxByteLength: 2 ** 30 })\nb.resize(2 ** 28)\nnew Uint8Array(b).fill(1)\nexport default b.byteLength`,
    expect: failed(GuestErrorCode.GUEST_EXCEPTION, /resizable buffers are not available in the sandbox$/),
  },
  {
    name: 'a growable SharedArrayBuffer reached through a subclass',
    code: `class Big extends SharedArrayBuffer { constructor() { super(8, { maxByteLength: 2 ** 30 }) } }\nexport default new Big().growable`,
    expect: failed(GuestErrorCode.GUEST_EXCEPTION, /resizable buffers are not available in the sandbox$/),
  },
  {
    name: "the original ArrayBuffer constructor is not recoverable from a buffer's prototype",
    code: `const viaBuffer = new Uint8Array(1).buffer.constructor
const viaProto = Object.getPrototypeOf(new ArrayBuffer(1)).constructor
let made = 'refused'
try { new viaBuffer(8, { maxByteLength: 2 ** 30 }); made = 'resizable' } catch {}
export default [viaBuffer === ArrayBuffer, viaProto === ArrayBuffer, made]`,
    expect: ok([true, true, 'refused']),
  },
  {
    name: 'ArrayBuffer.prototype.transfer to a length past the heap limit',
    code: `const b = new ArrayBuffer(8).transfer(2 ** 28)\nnew Uint8Array(b).fill(1)\nexport default b.byteLength`,
    expect: MEMORY_STOP,
  },
  {
    name: 'Atomics.wait on a SharedArrayBuffer nobody will notify',
    code: `const cell = new Int32Array(new SharedArrayBuffer(4))\nexport default Atomics.wait(cell, 0, 0)`,
    expect: endedOnEither('timeout/CPU_TIME_LIMIT', 'timeout/WALL_TIME_LIMIT'),
  },
  {
    name: 'Atomics.wait in a loop that swallows the interruption',
    code: `const cell = new Int32Array(new SharedArrayBuffer(4))\nfor (;;) try { Atomics.wait(cell, 0, 0, 10) } catch {}`,
    expect: endedOnEither('timeout/CPU_TIME_LIMIT', 'timeout/WALL_TIME_LIMIT'),
  },
  {
    name: 'WebAssembly memory growth: there is no WebAssembly to grow',
    code: `const m = new WebAssembly.Memory({ initial: 1, maximum: 65536 })\nm.grow(30000)\nexport default m.buffer.byteLength`,
    expect: failed(GuestErrorCode.GUEST_EXCEPTION, /^ReferenceError: WebAssembly is not defined$/),
  },
  {
    name: 'WebAssembly is not reachable through Function, eval or the global object',
    code: `export default [typeof globalThis.WebAssembly, Function('return typeof WebAssembly')(), eval('typeof WebAssembly'), Object.getOwnPropertyNames(globalThis).includes('WebAssembly')]`,
    expect: ok(['undefined', 'undefined', 'undefined', false]),
  },
  {
    name: 'gc is not a global, whatever flags the worker runs with',
    code: `export default [typeof gc, typeof globalThis.gc]`,
    expect: ok(['undefined', 'undefined']),
  },
  {
    name: 'eval of a string larger than isolated-vm lets code generation take',
    code: `export default eval('1+' + ' '.repeat(8 * 2 ** 20) + '1')`,
    expect: endedOnEither('error/GUEST_EXCEPTION', 'memory_limit/MEMORY_LIMIT'),
  },
]
