import type { RunOutcome } from '@cordon/contracts'
import { afterAll, describe, expect, it } from 'vitest'
import type { BindingHost } from './bridge/bridge.ts'
import type { RunJob } from './engine.ts'
import { interruptCountMeter } from './engines/quickjs/cpu-meter.ts'
import { QuickJSEngine } from './engines/quickjs/quickjs-engine.ts'
import { nodeQuickJSBuild } from './engines/quickjs/quickjs-node-build.ts'
import { InProcessRunner } from './in-process-runner.ts'

// The runner a Worker uses, on Node with the same engine configuration the Worker has: the build
// handed in, CPU counted from interrupt polls, no type stripper, no spare module.
const quickjs = new QuickJSEngine({
  build: nodeQuickJSBuild(),
  meter: interruptCountMeter(),
  warmSpare: false,
})
afterAll(() => quickjs.dispose())

const limits = {
  cpuMs: 200,
  wallMs: 3000,
  memoryMb: 16,
  outputBytes: 4096,
  bindingCalls: 8,
  processes: 1,
  openFiles: 1,
}
const job = (code: string, extra: Partial<RunJob> = {}): RunJob => ({
  engine: 'quickjs',
  language: 'javascript',
  code,
  inputJSON: 'null',
  limits,
  tenantKey: 't',
  grants: { fetch: false, kv: true, fs: false, tools: [], secrets: {} },
  ...extra,
})

/** A host whose kv.get waits until `release` is called. */
function heldHost(): { host: BindingHost; release: () => void; calls: number } {
  let release = () => {}
  const held = new Promise<void>((resolve) => {
    release = resolve
  })
  const state = {
    calls: 0,
    release: () => release(),
    host: {
      call: async () => {
        state.calls++
        await held
        return { ok: true as const, value: 'v' }
      },
    } satisfies BindingHost,
  }
  return state
}

describe('InProcessRunner', () => {
  it('runs a job with its binding calls answered by the host', async () => {
    const runner = new InProcessRunner(
      { quickjs },
      { maxRunning: 1, maxQueued: 1, maxMemoryMb: 64, maxOutputBytes: 65536 },
    )
    const host: BindingHost = { call: async (call) => ({ ok: true, value: `${call.kind}.${call.op}` }) }
    const outcome = await runner.run(job('export default await kv.get("k")'), 't', undefined, host)
    expect(outcome).toMatchObject({ status: 'ok', result: 'kv.get' })
  })

  it('runs one job at a time, queues the next, and refuses one more with QUEUE_FULL', async () => {
    const runner = new InProcessRunner(
      { quickjs },
      { maxRunning: 1, maxQueued: 1, maxMemoryMb: 64, maxOutputBytes: 65536 },
    )
    const first = heldHost()
    const running = runner.run(job('export default await kv.get("k")'), 't', undefined, first.host)
    const queued = runner.run(job('export default 2'), 't')
    expect(() => runner.run(job('export default 3'), 't')).toThrow(
      expect.objectContaining({ code: 'QUEUE_FULL' }),
    )
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(first.calls).toBe(1)
    first.release()
    expect(await running).toMatchObject({ status: 'ok', result: 'v' })
    expect(await queued).toMatchObject({ status: 'ok', result: 2 })
  })

  it('cancels a queued job without running it, and a running one at its next check', async () => {
    const runner = new InProcessRunner(
      { quickjs },
      { maxRunning: 1, maxQueued: 4, maxMemoryMb: 64, maxOutputBytes: 65536 },
    )
    const first = heldHost()
    const cancelRunning = new AbortController()
    const running = runner.run(job('export default await kv.get("k")'), 't', cancelRunning.signal, first.host)
    const cancelQueued = new AbortController()
    const second = heldHost()
    const queued = runner.run(job('export default await kv.get("k")'), 't', cancelQueued.signal, second.host)
    cancelQueued.abort()
    expect(await queued).toMatchObject({ status: 'killed', error: { code: 'CANCELLED' } })
    expect(second.calls).toBe(0)
    await new Promise((resolve) => setTimeout(resolve, 20))
    cancelRunning.abort()
    const outcome: RunOutcome = await running
    expect(outcome).toMatchObject({ status: 'killed', error: { code: 'CANCELLED' } })
    // The runner is free again.
    expect(await runner.run(job('export default 4'), 't')).toMatchObject({ result: 4 })
  })

  it('refuses what it cannot run, saying why: a missing engine, TypeScript without a stripper, too much memory or output', () => {
    const runner = new InProcessRunner(
      { quickjs },
      { maxRunning: 1, maxQueued: 1, maxMemoryMb: 64, maxOutputBytes: 65536 },
    )
    expect(runner.refusal('isolate', 'javascript', limits)).toMatch(/isolate.*not available/)
    expect(runner.refusal('quickjs', 'typescript', limits)).toMatch(/not typescript/)
    expect(runner.refusal('quickjs', 'javascript', { ...limits, memoryMb: 65 })).toMatch(/at most 64 MiB/)
    expect(runner.refusal('quickjs', 'javascript', { ...limits, outputBytes: 65537 })).toMatch(
      /at most 65536 bytes of output/,
    )
    expect(runner.refusal('quickjs', 'javascript', limits)).toBeNull()
    expect(() => runner.run(job('1', { language: 'typescript' }), 't')).toThrow(
      expect.objectContaining({ code: 'ENGINE_UNAVAILABLE' }),
    )
  })

  it('attack: a runaway loop is stopped by the counted CPU budget, with no CPU clock', async () => {
    const runner = new InProcessRunner(
      { quickjs },
      { maxRunning: 1, maxQueued: 1, maxMemoryMb: 64, maxOutputBytes: 65536 },
    )
    for (const code of [
      'for (;;) {}',
      'let s = ""; for (;;) s = (s + "ab").slice(-1000)',
      'function f() { return f() + 1 }; for (;;) { try { f() } catch {} }',
    ]) {
      // The wall time is far away: only the counted CPU budget can stop these (however loaded the machine).
      const outcome = await runner.run(job(code, { limits: { ...limits, wallMs: 120_000 } }), 't')
      expect(outcome).toMatchObject({ status: 'timeout', error: { code: 'CPU_TIME_LIMIT' } })
      expect(outcome.usage.cpuMs).toBeGreaterThanOrEqual(limits.cpuMs)
    }
  })

  it('runs a tool beside its caller without waiting for a turn (no deadlock at one job at a time)', async () => {
    const runner = new InProcessRunner(
      { quickjs },
      { maxRunning: 1, maxQueued: 1, maxMemoryMb: 64, maxOutputBytes: 65536 },
    )
    const host: BindingHost = {
      call: async (_call, _signal, nest) => {
        const tool = await nest(job('export default 5'), { call: async () => ({ ok: true, value: null }) })
        return { ok: true, value: tool.result }
      },
    }
    expect(
      await runner.run(job('export default (await kv.get("t")) + 1'), 't', undefined, host),
    ).toMatchObject({
      status: 'ok',
      result: 6,
    })
  })
})
