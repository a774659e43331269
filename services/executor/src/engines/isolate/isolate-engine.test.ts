import { GuestErrorCode } from '@cordon/contracts'
import { afterAll, describe, expect, it } from 'vitest'
import type { BindingChannel, RunJob } from '../../engine.ts'
import { IsolateEngine } from './isolate-engine.ts'

// In-process runs of guests that end by themselves or on a limit the watchdog enforces. Guests that
// defeat isolated-vm (allocation loops) are tested only through worker processes (tests/attacks).

const engine = new IsolateEngine()
afterAll(() => engine.dispose())

const limits = {
  cpuMs: 300,
  wallMs: 2000,
  memoryMb: 16,
  outputBytes: 1024,
  bindingCalls: 4,
  processes: 32,
  openFiles: 64,
}
const job = (code: string, extra: Partial<RunJob> = {}): RunJob => ({
  engine: 'isolate',
  language: 'javascript',
  code,
  inputJSON: 'null',
  limits,
  tenantKey: 't',
  ...extra,
})
/** Grants `kv` only. */
const KV = { fetch: false, kv: true, fs: false, tools: [], secrets: {} }

/** A channel that answers every call with `null` and counts them. */
function countingChannel(): { channel: BindingChannel; sent: () => number } {
  let count = 0
  const channel: BindingChannel = async () => {
    count++
    return { ok: true, value: null }
  }
  return { channel, sent: () => count }
}

const run = (code: string, extra: Partial<RunJob> = {}, channel?: BindingChannel, signal?: AbortSignal) =>
  engine.run(job(code, extra), channel, signal)

describe('IsolateEngine', () => {
  it('runs a module: default export, top-level await, a function called with a fresh copy of input', async () => {
    expect((await run('export default 6 * 7')).result).toBe(42)
    expect((await run('await null\nexport default "later"')).result).toBe('later')
    const out = await run('export default (input) => { input.n++; return [input.n, globalThis.input.n] }', {
      inputJSON: '{"n":1}',
    })
    expect(out).toMatchObject({ status: 'ok', result: [2, 1], error: null })
    expect(engine.poisoned).toBe(false)
  })

  it('runs TypeScript with its types stripped, and names a TypeScript syntax error', async () => {
    expect((await run('const n: number = 2\nexport default n', { language: 'typescript' })).result).toBe(2)
    const bad = await run('const n: = 2', { language: 'typescript' })
    expect(bad.error?.code).toBe(GuestErrorCode.SYNTAX_ERROR)
  })

  it('tells a failed module (thrown, or a rejected top-level await) from a stray rejection it leaves', async () => {
    expect((await run('throw new TypeError("now")')).error).toEqual({
      code: GuestErrorCode.GUEST_EXCEPTION,
      message: 'TypeError: now',
    })
    expect((await run('await null\nthrow new RangeError("later")')).error?.message).toBe('RangeError: later')
    expect((await run('Promise.reject(new Error("stray"))\nexport default 3')).result).toBe(3)
    expect((await run('Promise.reject(new Error("stray"))\nawait null\nexport default 4')).result).toBe(4)
    expect((await run('throw null')).error?.message).toBe('null was thrown')
  })

  it('answers UNSETTLED_PROMISE for a module that awaits what can never settle', async () => {
    const out = await run('export default new Promise(() => {})')
    expect(out.error?.code).toBe(GuestErrorCode.UNSETTLED_PROMISE)
  })

  it('keeps console output within outputBytes, result included, and stops a guest that keeps writing', async () => {
    const out = await run('console.log("a".repeat(600)); console.error("b".repeat(600)); export default 1')
    expect(out.status).toBe('output_limit')
    expect(Buffer.byteLength(out.stdout) + Buffer.byteLength(out.stderr)).toBe(1024)
    const greedy = await run('export default "x".repeat(2000)')
    expect(greedy.status).toBe('output_limit')
  })

  it('stops a loop at the CPU budget and reports the time it used', async () => {
    const out = await run('for (;;) {}')
    expect(out).toMatchObject({ status: 'timeout', error: { code: GuestErrorCode.CPU_TIME_LIMIT } })
    expect(out.usage.cpuMs).toBeGreaterThanOrEqual(limits.cpuMs)
    expect(engine.poisoned).toBe(false)
  })

  it('stops a run whose caller aborts, while it waits for a reply that never comes (wall time)', async () => {
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 20)
    const never: BindingChannel = () => new Promise(() => {})
    const out = await run('export default await kv.get("k")', { grants: KV }, never, controller.signal)
    expect(out).toMatchObject({ status: 'timeout', error: { code: GuestErrorCode.WALL_TIME_LIMIT } })
    expect(out.usage.wallMs).toBeLessThan(limits.wallMs)
  })

  it('asks for its process to be replaced after maxRuns executions, not before', async () => {
    const short = new IsolateEngine({ maxRuns: 2, warmIsolates: 0 })
    await short.run(job('export default 1'))
    expect(short.retiring).toBe(false)
    await short.run(job('export default 2'))
    expect([short.retiring, short.poisoned]).toEqual([true, false])
    short.dispose()
  })

  it('carries binding calls to the channel and their replies back, bodies included', async () => {
    const seen: unknown[] = []
    const channel: BindingChannel = async (call) => {
      seen.push([call.kind, call.op, call.args])
      return { ok: true, value: 'v', bytes: Buffer.from('body').toString('base64') }
    }
    const grants = { fetch: false, kv: true, fs: true, tools: [], secrets: {} }
    const out = await run(
      'const v = await kv.get("k")\nconst text = await fs.readFile("/workspace/a")\nexport default [v, text]',
      { grants },
      channel,
    )
    expect(out).toMatchObject({ status: 'ok', result: ['v', 'body'] })
    expect(seen).toEqual([
      ['kv', 'get', ['k']],
      ['fs', 'readFile', ['/workspace/a']],
    ])
  })

  it('a stray rejection racing a reply: the module check never blocks the worker on running guest code', async () => {
    // Found in review: a synchronous link of the probe module waited on the worker's main thread for
    // a guest the next reply had set running again, so the watchdog never fired.
    const channel: BindingChannel = async () => ({ ok: true, value: 1 })
    const out = await run(
      `const p = kv.get('a')
Promise.reject(new Error('stray'))
await p
const until = Date.now() + 50
while (Date.now() < until) {}
await kv.get('b')
for (;;) {}`,
      { grants: KV },
      channel,
    )
    expect(out).toMatchObject({ status: 'timeout', error: { code: GuestErrorCode.CPU_TIME_LIMIT } })
  })

  it('binding calls the guest makes after its result reach nobody', async () => {
    // Found in review: microtasks queued while the result was serialised wrote to kv after the run.
    const { channel, sent } = countingChannel()
    const out = await run(
      `export default { toJSON() { Promise.resolve().then(() => { for (let i = 0; i < 5; i++) kv.set('late', i) }); return 'r' } }`,
      { grants: KV },
      channel,
    )
    expect(out.result).toBe('r')
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(sent()).toBe(0)
  })

  it('refuses calls past bindingCalls without sending them', async () => {
    const { channel, sent } = countingChannel()
    const out = await run(
      'const codes = []\nfor (let i = 0; i < 6; i++) { try { await kv.get("k") } catch (e) { codes.push(e.code) } }\nexport default codes',
      { grants: KV },
      channel,
    )
    expect(out.result).toEqual(['BINDING_LIMIT', 'BINDING_LIMIT'])
    expect(sent()).toBe(4)
  })
})
