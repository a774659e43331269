import { GuestErrorCode } from '@cordon/contracts'
import { type Attack, endedOnEither, failed, ok, stopped } from './attack-suite.ts'

const CPU_STOP = stopped('timeout', GuestErrorCode.CPU_TIME_LIMIT)
// QuickJS: "InternalError: stack overflow"; V8: "RangeError: Maximum call stack size exceeded".
const STACK = failed(GuestErrorCode.STACK_OVERFLOW, /stack overflow|Maximum call stack size exceeded/)

/** Code that never ends or never stops descending: loops, job floods, recursion, slow native calls. */
export const RUNAWAY_ATTACKS: readonly Attack[] = [
  {
    name: 'synchronous infinite loop',
    code: `for (;;) {}`,
    expect: CPU_STOP,
  },
  {
    name: 'infinite loop after an await inside the async default export',
    code: `export default async () => { await null; for (;;) {} }`,
    expect: CPU_STOP,
  },
  {
    name: 'infinite loop inside a getter read by console.log',
    code: `console.log({ get x() { for (;;) {} } })`,
    expect: CPU_STOP,
  },
  {
    name: 'catching the interrupt and looping again from catch and finally',
    code: `for (;;) { try { for (;;) {} } catch { for (;;) {} } finally { continue } }`,
    expect: CPU_STOP,
  },
  {
    name: 'finally block that re-enters the looping function',
    code: `function spin() { try { for (;;) {} } finally { spin() } }\nspin()`,
    expect: CPU_STOP,
  },
  {
    name: 'microtask flood while the result never settles',
    code: `const spin = () => { Promise.resolve().then(spin) }\nspin()\nexport default new Promise(() => {})`,
    expect: CPU_STOP,
  },
  {
    name: 'promise chain that grows without end while the result never settles',
    code: `const grow = () => Promise.resolve().then(grow)\ngrow()\nexport default new Promise(() => {})`,
    expect: stopped('memory_limit', GuestErrorCode.MEMORY_LIMIT),
    // V8 fills its heap at about the pace isolated-vm's CPU clock counts: under load the CPU line
    // can come first (seen in CI while the machine ran a second suite).
    on: { isolate: endedOnEither('memory_limit/MEMORY_LIMIT', 'timeout/CPU_TIME_LIMIT') },
  },
  {
    name: 'microtask queued before the result that loops forever',
    code: `Promise.resolve().then(() => { for (;;) {} })\nexport default 1`,
    expect: CPU_STOP,
  },
  {
    name: 'microtask flood left running after the result settles',
    code: `const spin = () => { Promise.resolve().then(spin) }\nspin()\nexport default 1`,
    expect: ok(1),
  },
  {
    name: 'FinalizationRegistry callbacks that would loop once the run is over',
    code: `const registry = new FinalizationRegistry(() => { for (;;) {} })
for (let i = 0; i < 1e4; i++) registry.register({}, i)
export default 1`,
    expect: ok(1),
    // V8 would run them as tasks outside the engine's view: the isolate engine does not offer it.
    on: {
      isolate: failed(
        GuestErrorCode.GUEST_EXCEPTION,
        /^ReferenceError: FinalizationRegistry is not defined$/,
      ),
    },
  },
  {
    name: "catastrophic regex backtracking /(a+)+$/.test('a'.repeat(40) + 'b')",
    code: `export default /(a+)+$/.test('a'.repeat(40) + 'b')`,
    expect: CPU_STOP,
  },
  {
    name: 'plain unbounded recursion',
    code: `const f = () => f()\nexport default f()`,
    expect: STACK,
  },
  {
    name: 'recursion through a getter',
    code: `const o = { get x() { return this.x } }\nexport default o.x`,
    expect: STACK,
  },
  {
    name: 'recursion through a Proxy get trap',
    code: `const p = new Proxy({}, { get: (target, key, receiver) => receiver[key] })\nexport default p.x`,
    expect: STACK,
  },
  {
    name: 'recursion through async functions',
    code: `const f = async () => f()\nexport default await f()`,
    expect: STACK,
    // Each level also makes a promise: on a busy machine V8 may reach the CPU line first.
    on: { isolate: endedOnEither('error/STACK_OVERFLOW', 'timeout/CPU_TIME_LIMIT') },
  },
  {
    name: 'recursion through toString coercion',
    code: `const o = {}\no.toString = () => 'o' + o\nexport default String(o)`,
    expect: STACK,
  },
  {
    // QuickJS's JSON.stringify checks for cycles by walking its stack: quadratic in depth, inside one
    // built-in call that never reaches the interrupt handler. The supervisor's CPU line ends it
    // (about 1 s of CPU before QuickJS's own stack limit would).
    name: 'JSON.stringify of 100 000 nested arrays',
    code: `let a = []\nfor (let i = 0; i < 1e5; i++) a = [a]\nexport default JSON.stringify(a).length`,
    expect: CPU_STOP,
    // V8 recurses into its stack limit after about 400 ms: on a busy machine the CPU line may come first.
    on: { isolate: endedOnEither('error/STACK_OVERFLOW', 'timeout/CPU_TIME_LIMIT') },
  },
  {
    name: 'JSON.parse of 100 000 nested brackets',
    code: `export default JSON.parse('['.repeat(1e5) + ']'.repeat(1e5)).length`,
    expect: STACK,
    // V8's JSON parser does not recurse: it builds the 100 000 arrays within the limits.
    on: { isolate: ok(1) },
  },
  {
    name: 'eval of 100 000 nested parentheses (parser recursion)',
    code: `export default eval('('.repeat(1e5) + '1' + ')'.repeat(1e5))`,
    expect: STACK,
  },
  {
    name: 'module source of 60 000 nested array literals',
    code: `export default ${'['.repeat(60_000)}${']'.repeat(60_000)}`,
    expect: STACK,
  },
  {
    name: 'one native call that burns several CPU budgets and then returns (quadratic indexOf)',
    code: `export default 'a'.repeat(2 ** 20).indexOf('a'.repeat(2 ** 10) + 'b')`,
    expect: CPU_STOP,
    // V8 searches with Boyer-Moore-Horspool: milliseconds, not quadratic.
    on: { isolate: ok(-1) },
  },
  {
    name: 'one native call that never returns (quadratic indexOf on a 4 MiB string)',
    code: `export default 'a'.repeat(2 ** 22).indexOf('a'.repeat(2 ** 16) + 'b')`,
    expect: CPU_STOP,
    on: { isolate: ok(-1) },
  },
]
