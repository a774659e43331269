import { GuestErrorCode } from '@cordon/contracts'
import { expect } from 'vitest'
import { type Attack, failed, ok } from './attack-suite.ts'

/**
 * The global names a guest may see: standard ECMAScript and ECMA-402 (as QuickJS and V8 ship them;
 * `InternalError` is QuickJS's own), `console`, `input`.
 */
const STANDARD_GLOBALS = new Set(
  `AggregateError Array ArrayBuffer AsyncDisposableStack Atomics BigInt BigInt64Array BigUint64Array
  Boolean DataView Date DisposableStack Error EvalError FinalizationRegistry Float16Array Float32Array
  Float64Array Function Infinity Int16Array Int32Array Int8Array InternalError Intl Iterator JSON Map
  Math NaN Number Object Promise Proxy RangeError ReferenceError Reflect RegExp Set SharedArrayBuffer
  String SuppressedError Symbol SyntaxError TypeError URIError Uint16Array Uint32Array Uint8Array
  Uint8ClampedArray WeakMap WeakRef WeakSet console decodeURI decodeURIComponent encodeURI
  encodeURIComponent escape eval globalThis input isFinite isNaN parseFloat parseInt undefined
  unescape`.split(/\s+/),
)

/** Names under which Node, Deno, Bun, browsers, the QuickJS shell or the engine glue expose the host. */
const HOST_NAMES = `process require module exports Buffer __dirname __filename global setTimeout setInterval
  setImmediate queueMicrotask fetch XMLHttpRequest WebAssembly Deno Bun std os print scriptArgs window
  self navigator write ivm _ivm isolatedVm Reference Callback ExternalCopy`.split(/\s+/)

const REFERENCE_ERROR = (name: string) => new RegExp(`^ReferenceError: '?${name}'? is not defined$`)
const IMPORT_REFUSED = /^imports are not available in the sandbox$/

/** Attempts to reach the host from guest code: constructor chains, imports, host globals, pollution. */
export const ESCAPE_ATTACKS: readonly Attack[] = [
  {
    name: 'constructor chain from an object literal compiles a Function that sees no process',
    code: `export default ({}).constructor.constructor('return typeof process')()`,
    expect: ok('undefined'),
  },
  {
    name: 'this.constructor.constructor("return process")() at module top level (this is undefined)',
    code: `export default this.constructor.constructor('return process')()`,
    // QuickJS: "cannot read property 'constructor' of undefined"; V8: "Cannot read properties of undefined (reading 'constructor')".
    expect: failed(
      GuestErrorCode.GUEST_EXCEPTION,
      /^TypeError: (.*'constructor' of undefined|Cannot read properties of undefined \(reading 'constructor'\))$/,
    ),
  },
  {
    name: 'this.constructor.constructor("return process")() from a sloppy Function (this is the global)',
    code: `export default Function("return this.constructor.constructor('return process')()")()`,
    expect: failed(GuestErrorCode.GUEST_EXCEPTION, REFERENCE_ERROR('process')),
  },
  {
    name: 'Function("return this")() hands out a global with only standard names, down its prototype chain',
    // The global's prototype chain ends at Object.prototype; V8 puts an object between them whose one
    // own property is \`constructor\`, the guest's own Object.
    code: `const g = Function('return this')()
const chain = []
for (let p = Object.getPrototypeOf(g); p !== null; p = Object.getPrototypeOf(p)) chain.push(p === Object.prototype ? 'Object.prototype' : Reflect.ownKeys(p).filter((k) => !(k === 'constructor' && p.constructor === Object)).map(String))
export default [g === globalThis, chain.filter((entry) => entry.length > 0), Object.getOwnPropertyNames(g)]`,
    expect: (record) => {
      ok(expect.anything())(record)
      const [same, chain, names] = record.result as [boolean, unknown[], string[]]
      expect([same, chain]).toEqual([true, ['Object.prototype']])
      expect(names).toEqual(expect.arrayContaining(['Object', 'console', 'input']))
      expect(names.filter((name) => !STANDARD_GLOBALS.has(name))).toEqual([])
    },
  },
  {
    name: 'AsyncFunction constructor compiles code that sees no process',
    code: `export default await (async () => {}).constructor('return typeof process')()`,
    expect: ok('undefined'),
  },
  {
    name: 'GeneratorFunction constructor compiles code that sees no require',
    code: `export default (function* () {}).constructor('yield typeof require')().next().value`,
    expect: ok('undefined'),
  },
  {
    name: 'no host global under any name Node, Deno, Bun, browsers or the QuickJS shell use',
    code: `const names = ${JSON.stringify(HOST_NAMES)}
export default names.filter((name) => typeof globalThis[name] !== 'undefined' || Function('return typeof ' + name)() !== 'undefined')`,
    expect: ok([]),
  },
  {
    name: 'require("child_process") does not exist',
    code: `export default require('child_process').execSync('id').toString()`,
    expect: failed(GuestErrorCode.GUEST_EXCEPTION, REFERENCE_ERROR('require')),
  },
  {
    name: 'reading process.env directly',
    code: `export default Object.keys(process.env)`,
    expect: failed(GuestErrorCode.GUEST_EXCEPTION, REFERENCE_ERROR('process')),
  },
  {
    name: 'import.meta carries no host path or URL',
    code: `export default [JSON.stringify(import.meta), Reflect.ownKeys(import.meta).map(String)]`,
    expect: ok(['{}', []]),
  },
  {
    name: 'dynamic import("fs") is refused',
    code: `export default async () => Object.keys(await import('fs'))`,
    expect: failed(GuestErrorCode.IMPORT_NOT_ALLOWED, IMPORT_REFUSED),
  },
  {
    name: 'static import of node:child_process is refused',
    code: `import { execSync } from 'node:child_process'\nexport default String(execSync('id'))`,
    expect: failed(GuestErrorCode.IMPORT_NOT_ALLOWED, IMPORT_REFUSED),
  },
  {
    name: 'static import of an absolute host file path is refused',
    code: `import secrets from '/etc/passwd'\nexport default secrets`,
    expect: failed(GuestErrorCode.IMPORT_NOT_ALLOWED, IMPORT_REFUSED),
  },
  {
    // QuickJS never calls the hook. V8 does, with its structured frames: every one must be guest code
    // (the host runs in another isolate, so no host frame can be on the stack), and so must every
    // line of a plain stack.
    name: 'Error.prepareStackTrace hook and plain stacks see only guest frames',
    code: `let called = false
let frames = []
Error.stackTraceLimit = Infinity
const plain = new Error('plain').stack
Error.prepareStackTrace = (error, callSites) => { called = true; frames = callSites.map((f) => String(f.getFileName())); return 'hooked' }
const hooked = new Error('probe').stack
const files = plain.split('\\n').filter((line) => /^\\s*at /.test(line)).map((line) => line.replace(/^\\s*at (?:.*\\()?([^()\\s]*?):\\d+:\\d+\\)?$/, '$1'))
export default [called, hooked === 'hooked', [...frames, ...files].filter((file) => !/^(main\\.js|cordon:[\\w.-]+)$/.test(file))]`,
    expect: ok([false, false, []]),
    on: { isolate: ok([true, true, []]) },
  },
  {
    name: 'stack of an error thrown while the engine calls the default export names only guest files',
    code: `export default () => { try { null.x } catch (e) { return e.stack.split('\\n').filter((l) => /^\\s*at /.test(l)).map((l) => l.replace(/^\\s*at (?:.*\\()?([^()\\s]*?):\\d+:\\d+\\)?$/, '$1')) } }`,
    expect: (record) => {
      ok(expect.anything())(record)
      const files = record.result as string[]
      expect(files[0]).toBe('main.js')
      expect(files.filter((file) => !/^(main\.js|cordon:[\w.-]+)$/.test(file))).toEqual([])
    },
  },
  {
    name: 'Function.prototype.caller from a sloppy getter run by console.log reaches no host function',
    code: `const peek = Function("const c = arguments.callee.caller; return c === null || c === undefined ? 'none' : String(c)")
console.log({ get x() { return peek() } })
export default 1`,
    expect: (record) => {
      ok(1)(record)
      expect(record.stdout).toBe('{ x: "none" }\n')
    },
  },
  {
    name: 'replacing JSON.stringify cannot forge the result envelope',
    code: `JSON.stringify = () => 'O{"forged":true}'\nexport default 'honest'`,
    expect: ok('honest'),
  },
  {
    name: "a result string that mimics the engine's out-of-memory envelope stays a plain string",
    code: `export default 'E{"name":"InternalError","message":"out of memory"}'`,
    expect: ok('E{"name":"InternalError","message":"out of memory"}'),
  },
  {
    name: 'Object.prototype pollution and a patched global do not reach the next execution',
    code: `Object.prototype.polluted = 'yes'
Array.prototype.map = () => 'hijacked'
globalThis.leftover = 'tenant data'
Object.defineProperty(Object.prototype, 'then', { get() { for (;;) {} }, configurable: true })
export default 5`,
    expect: ok(5),
    next: {
      code: `export default [typeof ({}).polluted, [1].map((x) => x + 1), typeof globalThis.leftover, 'then' in {}]`,
      expect: ok(['undefined', [2], 'undefined', false]),
    },
  },
  {
    name: 'input carrying a __proto__ key pollutes neither the guest nor the host',
    input: JSON.parse('{"__proto__":{"polluted":"yes"},"a":1}'),
    code: `export default (input) => [typeof ({}).polluted, Object.getPrototypeOf(input) === Object.prototype, input.a]`,
    expect: (record) => {
      ok(['undefined', true, 1])(record)
      expect(Object.hasOwn(Object.prototype, 'polluted')).toBe(false)
    },
  },
]
