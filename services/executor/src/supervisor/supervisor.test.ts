import { afterEach, describe, expect, it } from 'vitest'
import type { RunJob } from '../engine.ts'
import { Supervisor } from './supervisor.ts'

const limits = {
  cpuMs: 2000,
  wallMs: 3000,
  memoryMb: 16,
  outputBytes: 4096,
  bindingCalls: 0,
  processes: 32,
  openFiles: 64,
}
const job = (code: string, overrides: Partial<RunJob['limits']> = {}): RunJob => ({
  engine: 'quickjs',
  language: 'javascript',
  code,
  inputJSON: 'null',
  limits: { ...limits, ...overrides },
  tenantKey: 'tenant-a',
})

/** A job stuck inside one long built-in (JSON.stringify of a huge array): only a kill ends it. */
const stuckInBuiltin = (wallMs: number): RunJob =>
  job('const a = new Array(3e6).fill({ x: 1 }); export default JSON.stringify(a).length', {
    wallMs,
    memoryMb: 512,
  })

let supervisor: Supervisor | null = null
afterEach(async () => {
  if (supervisor === null) return
  await supervisor.stop()
  // Every worker process is gone after stop: nothing outlives the supervisor.
  expect(supervisor.stats().workers).toBe(0)
  supervisor = null
})

describe('Supervisor', () => {
  it('runs jobs in worker processes, never in the calling process', async () => {
    supervisor = new Supervisor({ workers: 1 })
    await supervisor.start()
    const outcome = await supervisor.run(job('export default typeof process'), 't')
    expect(outcome).toMatchObject({ status: 'ok', result: 'undefined' })
  })

  it('kills a worker whose RSS passes the limit, answers memory_limit and replaces it', async () => {
    // An RSS budget of nothing makes any growth an overrun: this exercises the outside line alone.
    supervisor = new Supervisor({ workers: 1, rssBudget: () => 0 })
    await supervisor.start()
    const outcome = await supervisor.run(
      job('const a = []; for (;;) a.push([1, 2, 3])', { memoryMb: 256 }),
      't',
    )
    expect(outcome).toMatchObject({ status: 'memory_limit', error: { code: 'MEMORY_LIMIT' } })
    expect(outcome.error?.message).toContain('worker was killed')
    expect(supervisor.stats().restarts).toBe(1)
  })

  it('kills a job that outlives its wall time inside a long built-in, and the replacement serves', async () => {
    supervisor = new Supervisor({ workers: 1, graceMs: 100 })
    await supervisor.start()
    const stuck = await supervisor.run(stuckInBuiltin(200), 't')
    expect(stuck).toMatchObject({ status: 'timeout', error: { code: 'WALL_TIME_LIMIT' } })
    const next = await supervisor.run(job('export default 40 + 2'), 't')
    expect(next).toMatchObject({ status: 'ok', result: 42 })
  })

  it('kills a job that burns CPU inside one long built-in call, past cpuMs', async () => {
    // A quadratic indexOf never reaches the interrupt handler, and its wall limit is far away.
    supervisor = new Supervisor({ workers: 1, graceMs: 100 })
    await supervisor.start()
    const outcome = await supervisor.run(
      job("const s = 'a'.repeat(2 ** 22); export default s.indexOf('a'.repeat(2 ** 12) + 'b')", {
        cpuMs: 200,
        wallMs: 60_000,
        memoryMb: 64,
      }),
      't',
    )
    expect(outcome).toMatchObject({ status: 'timeout', error: { code: 'CPU_TIME_LIMIT' } })
    expect(outcome.error?.message).toContain('worker was killed')
    expect(outcome.usage.cpuMs).toBeGreaterThanOrEqual(200)
  })

  it('keeps other workers serving while one is killed', async () => {
    supervisor = new Supervisor({ workers: 2, graceMs: 100 })
    await supervisor.start()
    const stuck = supervisor.run(stuckInBuiltin(300), 'noisy')
    const quick = await Promise.all(
      [1, 2, 3].map((n) => supervisor?.run(job(`export default ${n}`), 'quiet')),
    )
    expect(quick.map((o) => o?.result)).toEqual([1, 2, 3])
    expect((await stuck).status).toBe('timeout')
  })

  it('cancels a running job through its AbortSignal, killing the worker', async () => {
    supervisor = new Supervisor({ workers: 1 })
    await supervisor.start()
    const controller = new AbortController()
    const running = supervisor.run(job('while (true) {}'), 't', controller.signal)
    setTimeout(() => controller.abort(), 100)
    expect(await running).toMatchObject({ status: 'killed', error: { code: 'CANCELLED' } })
  })

  it('answers a job whose signal is already aborted without running it', async () => {
    supervisor = new Supervisor({ workers: 1 })
    await supervisor.start()
    const outcome = await supervisor.run(job('while (true) {}'), 't', AbortSignal.abort())
    expect(outcome).toMatchObject({ status: 'killed', error: { code: 'CANCELLED' } })
    expect(supervisor.stats().busy).toBe(0)
  })

  it('refuses a job that waited in the queue past queueTimeoutMs with QUEUE_TIMEOUT', async () => {
    supervisor = new Supervisor({ workers: 1, queueTimeoutMs: 100 })
    await supervisor.start()
    const running = supervisor.run(job('while (true) {}', { cpuMs: 400 }), 't')
    await expect(supervisor.run(job('export default 1'), 't')).rejects.toMatchObject({
      code: 'QUEUE_TIMEOUT',
    })
    expect((await running).status).toBe('timeout')
  })

  it('refuses a worker count that is not a whole number from 1 to 64', () => {
    for (const workers of [0, -1, 1.5, Number.NaN, 65])
      expect(() => new Supervisor({ workers })).toThrow(RangeError)
  })

  it('refuses new work after stop', async () => {
    supervisor = new Supervisor({ workers: 1 })
    await supervisor.start()
    await supervisor.stop()
    let refusal: unknown = null
    try {
      await supervisor.run(job('export default 1'), 't')
    } catch (error) {
      refusal = error
    }
    expect(refusal).toMatchObject({ code: 'SHUTTING_DOWN' })
  })
})

describe('Supervisor: the next job of a tenant, sent ahead to its busy worker', () => {
  const busy = (ms: number, result: string) =>
    job(`const end = Date.now() + ${ms}; while (Date.now() < end) {}; export default "${result}"`)

  it('runs it right after the current one, both answered', async () => {
    supervisor = new Supervisor({ workers: 1 })
    await supervisor.start()
    const [first, second] = await Promise.all([
      supervisor.run(busy(100, 'first'), 't'),
      supervisor.run(job('export default "second"'), 't'),
    ])
    expect(first).toMatchObject({ status: 'ok', result: 'first' })
    expect(second).toMatchObject({ status: 'ok', result: 'second' })
  })

  it('never queues another tenant’s job behind a busy worker while another worker frees up', async () => {
    supervisor = new Supervisor({ workers: 2 })
    await supervisor.start()
    const finished: string[] = []
    const track = (name: string, outcome: Promise<unknown>) => outcome.then(() => finished.push(name))
    const long = track('long', supervisor.run(busy(1500, 'long'), 'tenant-a'))
    const medium = track('medium', supervisor.run(busy(200, 'medium'), 'tenant-b'))
    // Both workers are busy now: tenant-b's next job may only wait behind tenant-b's own.
    const short = track('short', supervisor.run(job('export default "short"'), 'tenant-b'))
    await Promise.all([long, medium, short])
    expect(finished).toEqual(['medium', 'short', 'long'])
  })

  it('answers every job of a steady stream with its own outcome (held-ahead jobs start in order)', async () => {
    supervisor = new Supervisor({ workers: 2 })
    await supervisor.start()
    const running = supervisor
    let next = 0
    const wrong: unknown[] = []
    const client = async () => {
      while (next < 400) {
        const n = next++
        const outcome = await running.run(job(`export default ${n}`), 't')
        if (outcome.status !== 'ok' || outcome.result !== n) wrong.push({ n, outcome })
      }
    }
    await Promise.all(Array.from({ length: 8 }, client))
    expect(wrong).toEqual([])
  })

  it('attack: one tenant’s backlog never keeps another tenant waiting for more than its turn', async () => {
    supervisor = new Supervisor({ workers: 1 })
    await supervisor.start()
    const finished: string[] = []
    const track = (name: string, outcome: Promise<unknown>) => outcome.then(() => finished.push(name))
    const all = [track('A1', supervisor.run(busy(200, 'A1'), 'tenant-a'))]
    for (const name of ['A2', 'A3', 'A4', 'A5'])
      all.push(track(name, supervisor.run(busy(30, name), 'tenant-a')))
    all.push(track('B1', supervisor.run(job('export default "B1"'), 'tenant-b')))
    await Promise.all(all)
    // A1 runs, A2 was sent ahead before B1 came; after that the rotation decides: B1 within two turns.
    expect(finished.indexOf('B1')).toBeLessThanOrEqual(3)
  })

  it('attack: a cancel that reaches the worker after it started the job ahead still stops that job', async () => {
    supervisor = new Supervisor({ workers: 1 })
    await supervisor.start()
    const first = supervisor.run(busy(100, 'first'), 't')
    const abort = new AbortController()
    const ahead = supervisor.run(stuckInBuiltin(20_000), 't', abort.signal)
    // Keep this thread busy while the worker finishes the first job and starts the one ahead.
    const until = Date.now() + 400
    while (Date.now() < until) {}
    abort.abort()
    expect(await first).toMatchObject({ status: 'ok' })
    expect(await ahead).toMatchObject({ status: 'killed', error: { code: 'CANCELLED' } })
    // Either the worker saw the cancel in time and skipped it, or it had started it and was killed and
    // replaced: never left running for its 20 s (the next job would wait behind it past this test's
    // 10 s timeout).
    expect(await supervisor.run(job('export default "after"'), 't')).toMatchObject({ result: 'after' })
    expect(supervisor.stats().restarts).toBeLessThanOrEqual(1)
  }, 10_000)

  it('runs a job held ahead by two workers that were killed for other jobs', async () => {
    supervisor = new Supervisor({ workers: 2, graceMs: 100 })
    await supervisor.start()
    const stuck = [supervisor.run(stuckInBuiltin(200), 't'), supervisor.run(stuckInBuiltin(400), 't')]
    const innocent = supervisor.run(job('export default "innocent"'), 't')
    for (const outcome of await Promise.all(stuck)) expect(outcome).toMatchObject({ status: 'timeout' })
    expect(await innocent).toMatchObject({ status: 'ok', result: 'innocent' })
  })

  it('attack: cancelling a job sent ahead answers it at once and leaves the worker serving', async () => {
    supervisor = new Supervisor({ workers: 1 })
    await supervisor.start()
    const running = supervisor.run(busy(400, 'running'), 't')
    const abort = new AbortController()
    // If it ran, this job would get its worker killed (stuck in one built-in past its wall time).
    const stuck = stuckInBuiltin(200)
    const ahead = supervisor.run(stuck, 't', abort.signal)
    await new Promise((resolve) => setTimeout(resolve, 50))
    abort.abort()
    expect(await ahead).toMatchObject({ status: 'killed', error: { code: 'CANCELLED' } })
    expect(await running).toMatchObject({ status: 'ok', result: 'running' })
    // The dropped job never ran: no worker was killed, and the next job is served.
    expect(await supervisor.run(job('export default "after"'), 't')).toMatchObject({ result: 'after' })
    expect(supervisor.stats().restarts).toBe(0)
  })

  it('puts a job sent ahead back in the queue when its worker is killed, and runs it on the replacement', async () => {
    supervisor = new Supervisor({ workers: 1, graceMs: 100 })
    await supervisor.start()
    // Stuck inside one built-in: only the supervisor's kill ends it.
    const runaway = supervisor.run(stuckInBuiltin(200), 't')
    const ahead = supervisor.run(job('export default "survived"'), 't')
    expect(await runaway).toMatchObject({ status: 'timeout' })
    expect(await ahead).toMatchObject({ status: 'ok', result: 'survived' })
    expect(supervisor.stats().restarts).toBe(1)
  })
})

describe('Supervisor: worker settings from the environment', () => {
  for (const [name, value] of [
    ['CORDON_WARM_ISOLATES', 'lots'],
    ['CORDON_WARM_ISOLATES', '-1'],
    ['CORDON_ISOLATE_MAX_RUNS', '0'],
    ['CORDON_ISOLATE_MAX_RUNS', '1.5'],
    ['CORDON_WARM_MEMORY_MB', '1e9'],
  ] as const) {
    it(`refuses ${name}=${value} before any worker starts, naming the variable`, () => {
      process.env[name] = value
      try {
        expect(() => new Supervisor({ workers: 1 })).toThrow(new RegExp(`^${name} must be a whole number`))
      } finally {
        delete process.env[name]
      }
    })
  }
})

describe('Supervisor: workers that retire themselves (isolate engine)', () => {
  const isolateJob = (code: string, grants?: RunJob['grants']): RunJob => ({
    ...job(code),
    engine: 'isolate',
    ...(grants === undefined ? {} : { grants }),
    limits: { ...limits, cpuMs: 1000, bindingCalls: 4 },
  })
  const withTools = { fetch: false, kv: false, fs: false, tools: ['t'], secrets: {} }
  /**
   * Runs every tool call as a nested job of `code`, after keeping the supervisor's thread busy for
   * `blockMs` (so that the caller's answer can arrive, unread, before the nested job is sent).
   */
  const toolHost = (code: string, blockMs = 0) => {
    const host = {
      async call(
        _call: unknown,
        _signal: AbortSignal,
        nest: (job: RunJob, host: unknown) => Promise<{ result: unknown }>,
      ) {
        const until = performance.now() + blockMs
        while (performance.now() < until) {}
        const outcome = await nest(isolateJob(code), host)
        return { ok: true as const, value: (outcome.result ?? null) as null }
      },
    }
    return host as never
  }
  const busyParent = (ms: number) =>
    `tools.call('t', null).catch(() => {})\nconst until = Date.now() + ${ms}\nwhile (Date.now() < until) {}\nexport default 'parent'`

  it('a quota retirement after a drain hands the queued job of another tenant to the new worker, never the old', async () => {
    // Found in review: the job was given to the worker between the end of the drain and its retirement.
    process.env.CORDON_ISOLATE_MAX_RUNS = '2'
    try {
      supervisor = new Supervisor({ workers: 1 })
      await supervisor.start()
    } finally {
      delete process.env.CORDON_ISOLATE_MAX_RUNS
    }
    // Run 1: the parent; run 2: its tool, still running (for 300 ms) when the parent ends.
    const parent = supervisor.run(
      isolateJob(busyParent(50), withTools),
      'a',
      undefined,
      toolHost('const until = Date.now() + 300\nwhile (Date.now() < until) {}\nexport default 1'),
    )
    await new Promise((resolve) => setTimeout(resolve, 10))
    const other = supervisor.run(job('export default "b"'), 'b')
    expect(await parent).toMatchObject({ status: 'ok', result: 'parent' })
    expect(await other).toMatchObject({ status: 'ok', result: 'b' })
    expect(supervisor.stats().restarts).toBe(1)
  })
})
