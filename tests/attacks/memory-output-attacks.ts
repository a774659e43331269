import { Buffer } from 'node:buffer'
import { GuestErrorCode } from '@cordon/contracts'
import { expect } from 'vitest'
import { type Attack, endedOnEither, failed, LIMITS, stopped } from './attack-suite.ts'

const MEMORY_STOP = stopped('memory_limit', GuestErrorCode.MEMORY_LIMIT)
const OUTPUT_STOP = stopped('output_limit', GuestErrorCode.OUTPUT_LIMIT)
const HEAP_OR_CPU = endedOnEither('memory_limit/MEMORY_LIMIT', 'timeout/CPU_TIME_LIMIT')

/** Memory bombs and output floods: every one must end at its limit, with what was kept bounded. */
export const MEMORY_OUTPUT_ATTACKS: readonly Attack[] = [
  {
    name: 'many small objects',
    code: `const a = []\nfor (let i = 0; ; i++) a.push({ i })`,
    expect: MEMORY_STOP,
    // isolated-vm's CPU clock counts a running task by elapsed time: on a loaded machine the CPU line
    // can come before the heap fills (measured: 500 ms of "CPU" at 868 ms of wall time).
    on: { isolate: HEAP_OR_CPU },
  },
  {
    name: 'many small arrays',
    code: `const a = []\nfor (let i = 0; ; i++) a.push([i, i, i, i, i, i, i, i])`,
    expect: MEMORY_STOP,
    // isolated-vm's CPU clock counts a running task by elapsed time: on a loaded machine the CPU line
    // can come before the heap fills (measured: 500 ms of "CPU" at 868 ms of wall time).
    on: { isolate: HEAP_OR_CPU },
  },
  {
    // Depending on heap layout, QuickJS either fails the allocation (memory_limit) or, once the heap
    // is full, spins inside this exact loop without reaching its interrupt handler (measured: minutes
    // with in-engine limits alone), and then the supervisor's CPU line ends it. Both are safe.
    name: 'arrays of arrays',
    code: `const a = []\nfor (;;) a.push(new Array(1000).fill(0))`,
    expect: (record) => {
      const outcome = `${record.status}/${record.error?.code}`
      expect(['memory_limit/MEMORY_LIMIT', 'timeout/CPU_TIME_LIMIT']).toContain(outcome)
    },
  },
  {
    name: 'arrays of arrays, counted',
    code: `const a = []\nfor (let i = 0; ; i++) a.push(new Array(1000).fill(i))`,
    expect: MEMORY_STOP,
    // isolated-vm's CPU clock counts a running task by elapsed time: on a loaded machine the CPU line
    // can come before the heap fills (measured: 500 ms of "CPU" at 868 ms of wall time).
    on: { isolate: HEAP_OR_CPU },
  },
  {
    name: 'a Map that grows without end',
    code: `const m = new Map()\nfor (let i = 0; ; i++) m.set(i, [i])`,
    expect: MEMORY_STOP,
  },
  {
    name: 'Array.from of 100 million elements',
    code: `export default Array.from({ length: 1e8 }, () => 0).length`,
    expect: MEMORY_STOP,
    on: { isolate: endedOnEither('memory_limit/MEMORY_LIMIT', 'timeout/CPU_TIME_LIMIT') },
  },
  {
    name: 'one ArrayBuffer of 1 GiB',
    code: `export default new ArrayBuffer(2 ** 30).byteLength`,
    expect: MEMORY_STOP,
  },
  {
    name: 'one ArrayBuffer of 2 GiB (past the engine maximum: refused before allocating)',
    code: `export default new ArrayBuffer(2 ** 31).byteLength`,
    expect: failed(GuestErrorCode.GUEST_EXCEPTION, /^RangeError: invalid array buffer length$/),
    // 2 GiB is within V8's maximum: the allocation itself fails at the heap limit.
    on: { isolate: MEMORY_STOP },
  },
  {
    name: 'one Uint8Array of 256 MiB',
    code: `export default new Uint8Array(2 ** 28).length`,
    expect: MEMORY_STOP,
  },
  {
    name: 'a resizable ArrayBuffer grown to 1 GiB',
    code: `const b = new ArrayBuffer(8, { maxByteLength: 2 ** 30 })\nb.resize(2 ** 30)\nexport default b.byteLength`,
    expect: MEMORY_STOP,
    // V8 allocates resizable buffers outside isolated-vm's heap accounting: the glue refuses them.
    on: {
      isolate: failed(GuestErrorCode.GUEST_EXCEPTION, /resizable buffers are not available in the sandbox$/),
    },
  },
  {
    name: "one huge string: 'x'.repeat(2 ** 29)",
    code: `export default 'x'.repeat(2 ** 29).length`,
    expect: MEMORY_STOP,
    // Past V8's longest string (2 ** 29 - 24): refused before allocating.
    on: { isolate: failed(GuestErrorCode.GUEST_EXCEPTION, /^RangeError: Invalid string length$/) },
  },
  {
    name: 'a string doubled until the engine refuses its length',
    code: `let s = 'x'\nfor (;;) s += s`,
    expect: failed(
      GuestErrorCode.GUEST_EXCEPTION,
      /^(InternalError: string too long|RangeError: Invalid string length)$/,
    ),
  },
  {
    name: 'a rope of 2 ** 28 characters flattened to serialise the result',
    code: `let s = 'x'\nfor (let i = 0; i < 28; i++) s += s\nexport default s`,
    expect: MEMORY_STOP,
    // isolated-vm's CPU clock counts a running task by elapsed time: on a loaded machine the CPU line
    // can come before the flattened string fills the heap (seen in CI: 501 ms of "CPU" at 772 ms of wall time).
    on: { isolate: HEAP_OR_CPU },
  },
  {
    name: 'one huge console line',
    code: `console.log('x'.repeat(1e6))\nexport default 1`,
    expect: (record) => {
      OUTPUT_STOP(record)
      expect(record.stdout).toBe('x'.repeat(LIMITS.outputBytes))
    },
  },
  {
    name: 'many console calls',
    // About 3 300 calls fill the 64 KiB budget: well inside the CPU limit even on a busy machine
    // (13 000 calls of a 5-byte line took 150-440 ms of the 500).
    code: `for (;;) console.log('spam spam spam spam')`,
    expect: (record) => {
      OUTPUT_STOP(record)
      expect(record.stdout.startsWith('spam spam spam spam\nspam spam spam spam\n')).toBe(true)
    },
  },
  {
    name: 'swallowing the output-limit error and logging on to stderr',
    code: `for (;;) try { console.error('spam') } catch {}`,
    expect: (record) => {
      OUTPUT_STOP(record)
      expect(record.stdout).toBe('')
      expect(Buffer.byteLength(record.stderr)).toBe(LIMITS.outputBytes)
    },
  },
  {
    name: 'multi-byte console output cut at the budget',
    code: `console.log('\\u{1F600}'.repeat(20000))\nexport default 1`,
    expect: (record) => {
      OUTPUT_STOP(record)
      expect(record.stdout).toMatch(/^(\u{1F600})+$/u)
    },
  },
  {
    name: 'one huge string result',
    code: `export default 'x'.repeat(1e6)`,
    expect: OUTPUT_STOP,
  },
  {
    name: 'a result of 100 000 small numbers',
    code: `export default new Array(1e5).fill(1)`,
    expect: OUTPUT_STOP,
  },
  {
    name: 'console output and result that fit alone but not together',
    code: `console.log('y'.repeat(60000))\nexport default 'x'.repeat(10000)`,
    expect: (record) => {
      OUTPUT_STOP(record)
      expect(record.stdout).toBe(`${'y'.repeat(60000)}\n`)
    },
  },
]
