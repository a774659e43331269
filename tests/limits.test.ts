import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { startTestServer, TEST_TOKEN, type TestServer } from './helpers/server.ts'

// Each limit of the profile, hit over HTTP through the real workers, with the status it must end in.
let t: TestServer
beforeAll(async () => {
  t = await startTestServer()
  // wallMs is far above cpuMs so that a loaded machine (CI runs test files in parallel) still hits CPU first.
  const limits = { cpuMs: 400, wallMs: 4000, memoryMb: 24, outputBytes: 2048, bindingCalls: 0 }
  await t.deployAgent('limited', limits)
  await t.deployAgent('big-memory', { ...limits, cpuMs: 5000, wallMs: 300, memoryMb: 512 })
})
afterAll(async () => {
  await t.close()
})

const run = (code: string) => t.execute(code, {}, 'limited')

describe('limits that hold', () => {
  it('cpuMs: a busy loop ends in timeout / CPU_TIME_LIMIT', async () => {
    const res = await run('while (true) {}')
    expect(res.body).toMatchObject({ status: 'timeout', error: { code: 'CPU_TIME_LIMIT' } })
  })

  it('wallMs: a built-in that never checks for interrupts is killed by the supervisor', async () => {
    // JSON.stringify of a large array runs in C without reaching QuickJS's interrupt handler.
    const res = await t.execute(
      'const a = new Array(3e6).fill({ x: 1 }); export default JSON.stringify(a).length',
      {},
      'big-memory',
    )
    expect(res.body).toMatchObject({ status: 'timeout', error: { code: 'WALL_TIME_LIMIT' } })
    expect(res.body.error.message).toContain('worker was killed')
  })

  it('memoryMb: many small allocations end in memory_limit', async () => {
    const res = await run('const a = []; while (true) a.push(new Array(256).fill(Math.random()))')
    expect(res.body).toMatchObject({ status: 'memory_limit', error: { code: 'MEMORY_LIMIT' } })
  })

  it('memoryMb: one huge allocation ends in memory_limit', async () => {
    const res = await run('export default new ArrayBuffer(512 * 1024 * 1024).byteLength')
    expect(res.body).toMatchObject({ status: 'memory_limit', error: { code: 'MEMORY_LIMIT' } })
  })

  it('stack: deep recursion is a guest error, not a host RangeError', async () => {
    const res = await run('const f = (n) => f(n + 1) + 1; export default f(0)')
    expect(res.body).toMatchObject({ status: 'error', error: { code: 'STACK_OVERFLOW' } })
  })

  it('outputBytes: console output past the budget ends in output_limit, keeping what fit', async () => {
    const res = await run('for (;;) console.log("0123456789")')
    expect(res.body).toMatchObject({ status: 'output_limit', error: { code: 'OUTPUT_LIMIT' } })
    expect(res.body.stdout.length).toBeGreaterThan(1000)
    expect(Buffer.byteLength(res.body.stdout)).toBeLessThanOrEqual(2048)
  })

  it('outputBytes: a result past the budget ends in output_limit', async () => {
    const res = await run('export default "x".repeat(4096)')
    expect(res.body).toMatchObject({ status: 'output_limit', result: null, error: { code: 'OUTPUT_LIMIT' } })
  })

  it('outputBytes counts stdout and the result together', async () => {
    const res = await run('console.log("y".repeat(1500)); export default "x".repeat(1000)')
    expect(res.body.status).toBe('output_limit')
  })

  it('result depth: a result nested past 64 levels is refused', async () => {
    const res = await run('let a = []; for (let i = 0; i < 100; i++) a = [a]; export default a')
    expect(res.body).toMatchObject({ status: 'error', error: { code: 'RESULT_TOO_DEEP' } })
  })

  it('keeps serving after every limit', async () => {
    const res = await run('export default [1, 2, 3].map((n) => n * n)')
    expect(res.body).toMatchObject({ status: 'ok', result: [1, 4, 9] })
  })
})

describe('a client that goes away', () => {
  it('cancels its running execution, freeing the worker', async () => {
    await t.deployAgent('patient', {
      cpuMs: 20_000,
      wallMs: 30_000,
      memoryMb: 16,
      outputBytes: 1024,
      bindingCalls: 0,
    })
    const restartsBefore = t.server.supervisor.stats().restarts
    const controller = new AbortController()
    const request = fetch(`${t.server.url}/v1/agents/patient/executions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ language: 'javascript', code: 'for (;;) {}' }),
      signal: controller.signal,
    })
    await vi.waitFor(() => expect(t.server.supervisor.stats().busy).toBe(1), { timeout: 2000, interval: 10 })
    controller.abort()
    await expect(request).rejects.toThrow()
    // The profile allows 20 s of CPU: a worker freed within 2 s was cancelled (killed and replaced).
    await vi.waitFor(
      () => expect(t.server.supervisor.stats()).toMatchObject({ busy: 0, restarts: restartsBefore + 1 }),
      { timeout: 2000, interval: 20 },
    )
  })
})

describe('the queue', () => {
  it('answers 429 QUEUE_FULL once the bounded queue is full, and runs what it accepted', async () => {
    // queueLimit 4 gives one tenant at most 2 queued jobs: 1 runs, 1 waits at its worker (sent
    // ahead), 2 wait in the queue, and the other 2 are refused.
    const small = await startTestServer({ workers: 1, queueLimit: 4 })
    try {
      await small.deployAgent('slow', {
        cpuMs: 300,
        wallMs: 1000,
        memoryMb: 16,
        outputBytes: 1024,
        bindingCalls: 0,
      })
      const answers = await Promise.all(
        Array.from({ length: 6 }, () => small.execute('while (true) {}', {}, 'slow')),
      )
      const statuses = answers.map((a) => a.status)
      expect(statuses.filter((s) => s === 429)).toHaveLength(2)
      expect(answers.find((a) => a.status === 429)?.body.error.code).toBe('QUEUE_FULL')
      for (const a of answers.filter((x) => x.status === 200)) expect(a.body.status).toBe('timeout')
    } finally {
      await small.close()
    }
  })
})

describe("one job cannot spend the next job's memory budget", () => {
  it('a job after a 900 MiB job on the same worker runs normally', async () => {
    const single = await startTestServer({ workers: 1 })
    try {
      await single.deployAgent('big', {
        cpuMs: 10_000,
        wallMs: 20_000,
        memoryMb: 1000,
        outputBytes: 1024,
        bindingCalls: 0,
      })
      const big = await single.execute(
        'const a = []; for (let i = 0; i < 900; i++) a.push(new Uint8Array(1 << 20).fill(1)); export default a.length',
        {},
        'big',
      )
      expect(big.body).toMatchObject({ status: 'ok', result: 900 })
      // The next job uses another module (other memory size): the 900 MiB heap must not count against it.
      const small = await single.execute('export default "fine"')
      expect(small.body).toMatchObject({ status: 'ok', result: 'fine' })
    } finally {
      await single.close()
    }
  })
})
