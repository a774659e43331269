import type { RunOutcome } from '@cordon/contracts'
import { afterAll, describe, expect, it } from 'vitest'
import type { RunJob } from '../../engine.ts'
import { HEAP_OVERHEAD_BYTES } from './module-pool.ts'
import { QuickJSEngine } from './quickjs-engine.ts'
import { nodeQuickJSOptions } from './quickjs-node-build.ts'

const engine = new QuickJSEngine(nodeQuickJSOptions())
const limits = {
  cpuMs: 1000,
  wallMs: 2000,
  memoryMb: 32,
  outputBytes: 65536,
  bindingCalls: 0,
  processes: 32,
  openFiles: 64,
}
const run = (code: string, extra: Partial<RunJob> = {}): Promise<RunOutcome> =>
  engine.run({
    engine: 'quickjs',
    language: 'javascript',
    code,
    inputJSON: '{"a":2,"b":3}',
    limits,
    tenantKey: 'tenant-a',
    ...extra,
  })

afterAll(() => engine.dispose())

describe('the guest contract', () => {
  it('uses the default export as the result', async () => {
    expect(await run('export default { ok: [1, "two", null] }')).toMatchObject({
      status: 'ok',
      result: { ok: [1, 'two', null] },
    })
  })

  it('calls a default-exported function with input and awaits it', async () => {
    expect((await run('export default async ({ a, b }) => a * b')).result).toBe(6)
  })

  it('supports top-level await', async () => {
    expect((await run('const v = await Promise.resolve(5); export default v + 1')).result).toBe(6)
  })

  it('answers null when there is no default export', async () => {
    expect(await run('const x = 1')).toMatchObject({ status: 'ok', result: null })
  })

  it('exposes input as a global copy that the guest cannot use to change the argument', async () => {
    const outcome = await run('input.a = 100; export default (arg) => [input.a, arg.a]')
    expect(outcome.result).toEqual([100, 2])
  })

  it('runs TypeScript, enums included, with types stripped', async () => {
    const code =
      'enum Color { Red, Green }\nconst n: number = 40\nexport default (i: { a: number }): number => n + i.a + Color.Green'
    expect(await run(code, { language: 'typescript' })).toMatchObject({ status: 'ok', result: 43 })
  })

  it('reports a thrown error as GUEST_EXCEPTION with its name and message', async () => {
    expect(await run('throw new TypeError("nope")')).toMatchObject({
      status: 'error',
      error: { code: 'GUEST_EXCEPTION', message: 'TypeError: nope' },
    })
  })

  it('reports a SyntaxError thrown at run time as a guest exception, not a syntax error', async () => {
    expect((await run('JSON.parse("{")')).error?.code).toBe('GUEST_EXCEPTION')
    expect((await run('export default (')).error?.code).toBe('SYNTAX_ERROR')
  })

  it('a guest cannot choose its failure status through Object.prototype.toJSON', async () => {
    const outcome = await run(
      'Object.prototype.toJSON = () => ({ name: "InternalError", message: "out of memory" }); throw 1',
    )
    expect(outcome).toMatchObject({
      status: 'error',
      error: { code: 'GUEST_EXCEPTION', message: 'Error: 1' },
    })
  })

  it('reports invalid TypeScript as a syntax error', async () => {
    expect(await run('const x: = 1', { language: 'typescript' })).toMatchObject({
      status: 'error',
      error: { code: 'SYNTAX_ERROR' },
    })
  })

  it('formats console output like Node for common values', async () => {
    const outcome = await run(
      'console.log("s", 1, true, null, undefined, [1, [2]], { k: "v" }, 5n); console.warn(new RangeError("r")); const o = {}; o.o = o; console.info(o)',
    )
    expect(outcome.stdout).toBe('s 1 true null undefined [ 1, [ 2 ] ] { k: "v" } 5n\n{ o: [Circular] }\n')
    expect(outcome.stderr).toBe('RangeError: r\n')
  })

  it('has no host globals: only standard JavaScript plus console and input', async () => {
    const outcome = await run(
      'export default ["process","require","module","Buffer","setTimeout","setInterval","fetch","globalThis.process","__dirname","WebAssembly","std","os"].filter((n) => { try { return eval("typeof " + n) !== "undefined" } catch { return false } })',
    )
    expect(outcome.result).toEqual([])
  })

  it('refuses imports', async () => {
    expect((await run('import fs from "node:fs"; export default 1')).error?.code).toBe('IMPORT_NOT_ALLOWED')
  })

  it('gives every run a fresh context: globals and prototype changes do not carry over', async () => {
    await run('globalThis.leak = 1; Object.prototype.polluted = true; Array.prototype.push = null')
    expect((await run('export default [typeof leak, typeof ({}).polluted, typeof [].push]')).result).toEqual([
      'undefined',
      'undefined',
      'function',
    ])
  })

  it('patching JSON, String or Promise in the guest does not change what the host reads', async () => {
    const outcome = await run(
      'JSON.stringify = () => "{\\"forged\\":true}"; String = () => "x"; Promise.prototype.then = function () {}; export default { real: true }',
    )
    expect(outcome).toMatchObject({ status: 'ok', result: { real: true } })
  })
})

describe('limits inside the engine', () => {
  it('stops a busy loop at cpuMs', async () => {
    expect(await run('for (;;) {}', { limits: { ...limits, cpuMs: 50 } })).toMatchObject({
      status: 'timeout',
      error: { code: 'CPU_TIME_LIMIT' },
    })
  })

  it('stops a guest that only waits at wallMs (CPU stays low)', async () => {
    // A microtask ping-pong burns CPU, so give CPU room and let the wall deadline end it.
    const outcome = await run(
      'const spin = () => Promise.resolve().then(spin); spin(); await new Promise(() => {})',
      {
        limits: { ...limits, cpuMs: 5000, wallMs: 100 },
      },
    )
    expect(outcome).toMatchObject({ status: 'timeout', error: { code: 'WALL_TIME_LIMIT' } })
  })

  it('bounds the wasm heap itself, not only QuickJS accounting', async () => {
    const outcome = await run('const a = []; for (;;) a.push("x".repeat(4096) + a.length)', {
      limits: { ...limits, memoryMb: 8 },
    })
    expect(outcome.status).toBe('memory_limit')
    // The module's linear memory may not grow past the limit plus the fixed overhead.
    expect(outcome.usage.memoryBytes).toBeLessThanOrEqual(8 * 1024 * 1024 + HEAP_OVERHEAD_BYTES)
  })

  it('turns deep recursion into a guest error even on the default host stack', async () => {
    // vitest's worker runs without the supervisor's --stack-size: the engine must still never throw.
    const outcome = await run(
      'let a = []; for (let i = 0; i < 1e5; i++) a = [a]; export default JSON.stringify(a)',
    )
    expect(outcome).toMatchObject({ status: 'error', error: { code: 'STACK_OVERFLOW' } })
    expect((await run('export default "still fine"')).result).toBe('still fine')
  })

  it('reports exhaustion as memory_limit even when QuickJS can only throw null', async () => {
    const outcome = await run('const a = []; for (let i = 0; ; i++) a.push([i, i, i, i, i, i, i, i])', {
      limits: { ...limits, memoryMb: 16 },
    })
    expect(outcome).toMatchObject({ status: 'memory_limit', error: { code: 'MEMORY_LIMIT' } })
  })

  it('never copies a console string that cannot fit into the host: it is cut inside the guest', async () => {
    const outcome = await run('console.log("x".repeat(2 ** 27)); export default 1', {
      limits: { ...limits, memoryMb: 512, outputBytes: 1024 },
    })
    expect(outcome).toMatchObject({ status: 'output_limit', stdout: 'x'.repeat(1024) })
  })

  it('refuses a result longer than the output budget without reading it', async () => {
    const outcome = await run('export default "y".repeat(2 ** 26)', {
      limits: { ...limits, memoryMb: 512, outputBytes: 1024 },
    })
    expect(outcome).toMatchObject({ status: 'output_limit', result: null })
  })

  it('never runs jobs a stopped guest left behind: a heavy job per microtask cannot stretch the deadline', async () => {
    const started = performance.now()
    const outcome = await run(
      "const big = 'x'.repeat(1 << 20)\nfor (let i = 0; i < 3; i++) Promise.resolve().then(() => { for (;;) big.indexOf('y') })\nfor (;;) {}",
      { limits: { ...limits, cpuMs: 300, wallMs: 600 } },
    )
    expect(outcome).toMatchObject({ status: 'timeout' })
    // Measured before this fix: 44 s, every leftover job getting a fresh slice before its first check.
    expect(performance.now() - started).toBeLessThan(5_000)
  })

  it('reports a promise that can never settle', async () => {
    expect((await run('await new Promise(() => {})')).error?.code).toBe('UNSETTLED_PROMISE')
  })
})

describe('every run starts from the pristine image of a fresh runtime and context', () => {
  const fresh = (code: string, extra: Partial<RunJob> = {}) => run(code, { tenantKey: 'image', ...extra })

  it('attack: a microtask chain left queued never runs in the next execution', async () => {
    await fresh(
      'Promise.resolve().then(function again() { globalThis.ran = (globalThis.ran ?? 0) + 1; console.log("leaked"); Promise.resolve().then(again) }); export default 1',
    )
    const next = await fresh('export default await Promise.resolve(typeof globalThis.ran)')
    expect(next).toMatchObject({ status: 'ok', result: 'undefined', stdout: '' })
  })

  it('attack: replaying the previous execution’s Math.random sequence', async () => {
    const draws = await Promise.all(
      [1, 2, 3].map(() => fresh('export default [Math.random(), Math.random()]')),
    )
    const values = draws.flatMap((outcome) => outcome.result as number[])
    expect(new Set(values).size).toBe(values.length)
    for (const value of values) expect(value >= 0 && value < 1).toBe(true)
  })

  it('attack: reading heap residue of the previous execution through fresh allocations', async () => {
    await fresh(
      'globalThis.secret = "s3cr3t-".repeat(10000); const b = new Uint8Array(4 << 20).fill(0xaa); export default b.length',
    )
    const next = await fresh(
      'const b = new Uint8Array(4 << 20); let dirty = 0; for (let i = 0; i < b.length; i++) dirty |= b[i]; export default [dirty, typeof secret, new Array(8).join("")]',
      // Scanning 4 MiB byte by byte takes most of a second of QuickJS CPU; room for a busy machine.
      { limits: { ...limits, cpuMs: 5000, wallMs: 10_000 } },
    )
    expect(next.result, JSON.stringify(next)).toEqual([0, 'undefined', ''])
  })

  it('attack: freeing the console host functions breaks console for the next execution', async () => {
    await fresh('console.log = null; delete globalThis.console; export default 1')
    expect(await fresh('console.log("still here"); export default 2')).toMatchObject({
      status: 'ok',
      stdout: 'still here\n',
    })
  })

  it('a module whose heap grew is not restored but replaced, so the next run gets its memory back', async () => {
    const big = await fresh(
      'const a = []; for (let i = 0; i < 400; i++) a.push("x".repeat(65536) + i); export default a.length',
      {
        limits: { ...limits, memoryMb: 64 },
      },
    )
    expect(big.usage.memoryBytes).toBeGreaterThan(16 * 1024 * 1024)
    const next = await fresh('export default 1', { limits: { ...limits, memoryMb: 64 } })
    expect(next.usage.memoryBytes).toBe(16 * 1024 * 1024)
  })

  it('gives the same answers over many runs as a fresh engine does for the first', async () => {
    const program = (n: number) =>
      `const m = new Map(); for (let k = 0; k < ${n}; k++) m.set("k" + k, { k, s: "v".repeat(k % 50) })
       const json = JSON.parse(JSON.stringify([...m.values()].slice(-3)))
       let caught = ""; try { null.x } catch (e) { caught = e.constructor.name }
       class A { #p = ${n}; get p() { return this.#p } }
       export default [m.size, json.map((v) => v.k), /a(b+)c/.exec("xa" + "b".repeat(${n % 7} + 1) + "c")[1].length, caught, new A().p, [3, 1, 2].sort().join()]`
    const expected = (n: number) => [n, [n - 3, n - 2, n - 1], (n % 7) + 1, 'TypeError', n, '1,2,3']
    for (let i = 0; i < 150; i++) {
      const n = 3 + ((i * 389) % 4000)
      const outcome = await fresh(program(n))
      expect(outcome, `run ${i}`).toMatchObject({ status: 'ok', result: expected(n) })
    }
  })
})
