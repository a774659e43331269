import { GuestErrorCode, type RunOutcome } from '@cordon/contracts'
import { NO_GRANTS } from '../../bridge/bridge.ts'
import type { BindingChannel, Engine, RunJob } from '../../engine.ts'
import { OutputBuffer, type OutputListener } from '../../output-buffer.ts'
import { stripTypes } from '../../typescript.ts'
import {
  classifyFailure,
  classifyResult,
  classifyUnserializable,
  type Description,
  describe,
  memoryLimit,
  type Outcome,
  type Stop,
} from '../quickjs/classify.ts'
import { IsolateCalls } from './isolate-calls.ts'
import { IsolatePool } from './isolate-pool.ts'
import type { IVM, PreparedIsolate } from './prepared-isolate.ts'

/** How often the watchdog reads the isolate's CPU time, the wall clock and the output budget. */
const WATCH_MS = 5
/** After the outcome, how long the task that reported it may take to end by itself. */
const FINISH_MS = 20
/** After a stop, how long the isolate's thread may take to leave guest code before it counts as stuck. */
const STUCK_MS = 250
const IMPORT_REFUSED = 'imports are not available in the sandbox'

export interface IsolateEngineOptions {
  /** Prepared isolates kept ready per memory size (default 1). */
  warmIsolates?: number
  /**
   * Executions after which the engine asks for its process to be replaced (default 20 000): defence
   * in depth against what isolated-vm leaves behind per isolate (measured: the worker's RSS settles
   * after a garbage collection, about 10 MiB above its start over 4 000 executions).
   */
  maxRuns?: number
}

/**
 * Runs JavaScript/TypeScript modules in V8 isolates (isolated-vm). Every execution gets an isolate of
 * its own, prepared ahead of time by `IsolatePool` and disposed after the run: nothing of one
 * execution (globals, prototypes, pending jobs, modules) exists in the next, and no isolate is ever
 * shared between tenants or agents.
 *
 * The guest module runs behind an entry module (`import * as ns from 'main.js'; done(ns)`): the glue's
 * `done` settles the default export and reports it. A failure of the module itself (thrown, or a
 * rejected top-level await) reaches the host only as an unhandled rejection at the end of a task; a
 * probe module that imports `main.js` again tells a module failure (V8 rethrows it) from a stray
 * rejection the guest left behind (ignored, as in the QuickJS engine).
 *
 * Limits, first line: isolated-vm's heap limit, and a watchdog on the worker's main thread that
 * disposes the isolate at the CPU budget (the isolate's own CPU time), the wall deadline or the output
 * budget. After the outcome, the task that reported it gets `FINISH_MS` to end by itself (guest code
 * can still run then: queued microtasks, getters isolated-vm reads on a stray rejection) before the
 * isolate is disposed. Some guests keep the isolate's thread busy even after `dispose()` (allocation
 * loops once the heap is full, V8 out of heap): the run is answered after `STUCK_MS` (at once for a
 * thread isolated-vm parked) and the engine reports itself `poisoned`; the worker process, which must
 * not take another job, is replaced. The host never makes a synchronous call into an isolate whose
 * thread may be running guest code. The supervisor's wall, CPU and RSS lines hold beyond all of this.
 */
export class IsolateEngine implements Engine {
  readonly name = 'isolate' as const
  readonly #pool: IsolatePool
  readonly #maxRuns: number
  #runs = 0
  #poisoned = false

  constructor(options: IsolateEngineOptions = {}) {
    this.#pool = new IsolatePool(options.warmIsolates ?? 1)
    this.#maxRuns = options.maxRuns ?? 20_000
  }

  /** Prepares isolates for `memoryMb` in the background so that a run does not wait for one. */
  warm(memoryMb: number): void {
    this.#pool.warm(memoryMb)
  }

  /** True once an isolate could not be stopped: its thread may still run, so the process must go. */
  get poisoned(): boolean {
    return this.#poisoned
  }

  /** True when the process should be replaced: poisoned, or past `maxRuns` executions. */
  get retiring(): boolean {
    return this.#poisoned || this.#runs >= this.#maxRuns
  }

  async run(
    job: RunJob,
    channel?: BindingChannel,
    signal?: AbortSignal,
    listener?: OutputListener,
  ): Promise<RunOutcome> {
    this.#runs++
    const started = performance.now()
    const output = new OutputBuffer(job.limits.outputBytes, listener)
    const prepared = this.#pool.take(job.limits.memoryMb)
    let cpuNanos = 0n
    let memoryBytes = 0
    const finish = (outcome: Outcome): RunOutcome => ({
      ...outcome,
      stdout: output.stdout,
      stderr: output.stderr,
      usage: {
        cpuMs: Math.round(Number(cpuNanos / 100_000n)) / 10,
        wallMs: Math.round((performance.now() - started) * 10) / 10,
        memoryBytes,
      },
    })
    const run = new IsolateRun(prepared, job, output, channel, signal, started)
    try {
      const outcome = await run.outcome()
      // The outcome may have been reported from inside a host callback, with the isolate's thread
      // waiting for it to return: nothing touches the isolate before the event loop turns once.
      await new Promise((resolve) => setImmediate(resolve))
      const thread = await run.quiesce()
      cpuNanos = run.cpuNanos()
      memoryBytes = thread.memoryBytes
      // isolated-vm disposing an isolate by itself (its heap limit) has been seen to crash the process
      // later (a segfault in the next run): such a worker is replaced, like one whose thread is stuck.
      if (!thread.stopped || run.disposedByEngine) this.#poisoned = true
      return finish(outcome)
    } finally {
      run.end()
      // Off the answer's path: disposing takes about a millisecond.
      setImmediate(() => {
        prepared.dispose()
        this.#pool.refill()
      })
    }
  }

  dispose(): void {
    this.#pool.dispose()
  }
}

/**
 * The isolate's heap in use plus external memory, or null when it does not answer within `ms`: its
 * thread is busy (with guest code the engine does not track). Asynchronous, so the worker's main
 * thread never waits for guest code.
 */
async function answerWithin(isolate: IVM.Isolate, ms: number): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), ms)
  })
  const read = isolate.getHeapStatistics().then(
    (heap) => heap.used_heap_size + heap.externally_allocated_size,
    () => null,
  )
  try {
    return await Promise.race([read, late])
  } finally {
    clearTimeout(timer)
  }
}

/** One execution in one prepared isolate: its tasks, its watchdog and the outcome it settles on. */
class IsolateRun {
  readonly #prepared: PreparedIsolate
  readonly #job: RunJob
  readonly #output: OutputBuffer
  readonly #signal: AbortSignal | undefined
  readonly #calls: IsolateCalls
  readonly #wallDeadline: number
  readonly #cpuStart: bigint
  readonly #settled: Promise<Outcome>
  #settle!: (outcome: Outcome) => void
  #done = false
  #stop: Stop = null
  #disposedByUs = false
  #tasks = 0
  #idle: (() => void) | null = null
  #main: IVM.Module | null = null
  #watchdog: NodeJS.Timeout
  /** The isolate's CPU time since the run began, as last read (it cannot be read once disposed). */
  #cpu = 0n

  constructor(
    prepared: PreparedIsolate,
    job: RunJob,
    output: OutputBuffer,
    channel: BindingChannel | undefined,
    signal: AbortSignal | undefined,
    started: number,
  ) {
    this.#prepared = prepared
    this.#job = job
    this.#output = output
    this.#signal = signal
    this.#wallDeadline = started + job.limits.wallMs
    this.#cpuStart = prepared.isolate.cpuTime
    this.#settled = new Promise((resolve) => {
      this.#settle = resolve
    })
    this.#calls = new IsolateCalls(job.limits.bindingCalls, channel, (delivery) => {
      if (this.#done) return
      const task = prepared.deliver(delivery.id, delivery.json, delivery.bytesId, delivery.body)
      this.#task(task, () => this.#calls.handed())
    })
    this.#watchdog = setInterval(() => this.#watch(), WATCH_MS)
    signal?.addEventListener('abort', this.#onAbort, { once: true })
  }

  readonly #onAbort = () => this.#halt('wall')

  /** Starts the run and answers its outcome. */
  outcome(): Promise<Outcome> {
    void this.#start()
    return this.#settled
  }

  /**
   * After the outcome: makes sure the isolate's thread has left guest code. The task that reported
   * the outcome gets `FINISH_MS` to end by itself; then the isolate must answer a request of its own
   * (its heap statistics, which also give `memoryBytes`) within `FINISH_MS`, which it cannot while V8
   * runs guest code the engine does not track. Otherwise it is disposed, and its thread gets
   * `STUCK_MS` to stop; a thread that was busy with untracked work is never counted as stopped, since
   * nothing can tell when it is.
   */
  async quiesce(): Promise<{ stopped: boolean; memoryBytes: number }> {
    const prepared = this.#prepared
    if (prepared.lost !== null) return { stopped: false, memoryBytes: 0 }
    if (await this.#idleWithin(FINISH_MS)) {
      if (prepared.disposed) return { stopped: true, memoryBytes: 0 }
      const memoryBytes = await answerWithin(prepared.isolate, FINISH_MS)
      if (memoryBytes !== null) return { stopped: true, memoryBytes }
      this.#dispose()
      return { stopped: false, memoryBytes: 0 }
    }
    this.#dispose()
    return { stopped: await this.#idleWithin(STUCK_MS), memoryBytes: 0 }
  }

  /** Disposes the isolate (the watchdog's or the run's own decision), its CPU time read first. */
  #dispose(): void {
    if (this.#disposedByUs) return
    this.#sampleCpu()
    this.#disposedByUs = true
    this.#prepared.dispose()
  }

  /** Reads the isolate's CPU time if it is still there; the last reading stands otherwise. */
  #sampleCpu(): bigint {
    try {
      if (!this.#prepared.disposed) this.#cpu = this.#prepared.isolate.cpuTime - this.#cpuStart
    } catch {
      // Gone meanwhile.
    }
    return this.#cpu
  }

  /** The run's CPU time in nanoseconds. */
  cpuNanos(): bigint {
    return this.#sampleCpu()
  }

  /** True once no task runs, waiting at most `ms`. */
  async #idleWithin(ms: number): Promise<boolean> {
    if (this.#tasks === 0) return true
    const idle = new Promise<boolean>((resolve) => {
      this.#idle = () => resolve(true)
    })
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(this.#tasks === 0), ms)
    })
    const result = await Promise.race([idle, late])
    clearTimeout(timer)
    this.#idle = null
    return result
  }

  /** isolated-vm disposed the isolate by itself (the heap limit), not the watchdog. */
  get disposedByEngine(): boolean {
    return !this.#disposedByUs && (this.#prepared.lost !== null || this.#prepared.disposed)
  }

  end(): void {
    clearInterval(this.#watchdog)
    this.#signal?.removeEventListener('abort', this.#onAbort)
    this.#calls.end()
    this.#prepared.end()
    this.#done = true
  }

  async #start(): Promise<void> {
    const job = this.#job
    let source = job.code
    if (job.language === 'typescript') {
      const stripped = stripTypes(job.code)
      if (!stripped.ok) {
        this.#finish(
          classifyFailure({ name: 'SyntaxError', message: stripped.message }, null, job.limits, true),
        )
        return
      }
      source = stripped.code
    }
    const prepared = this.#prepared
    try {
      prepared.begin(
        {
          write: (stream, text) => this.#write(stream, text),
          call: (kind, op, args) => this.#calls.call(kind, op, args),
          decode: (body) => this.#calls.decode(body),
          report: (kind, text) => this.#report(kind, text),
        },
        job.inputJSON,
        JSON.stringify(job.grants ?? NO_GRANTS),
        job.limits.outputBytes,
        (reason) => this.#lose(reason),
      )
    } catch (error) {
      // The input (or grants) do not fit the heap, or the isolate is already gone.
      this.#failTask(error)
      return
    }
    let main: IVM.Module
    try {
      main = await prepared.isolate.compileModule(source, { filename: 'main.js' })
    } catch (error) {
      if (this.#done) return
      const description = describeHostError(error)
      this.#finish(classifyFailure(description, this.#stop, job.limits, description.name === 'SyntaxError'))
      return
    }
    this.#main = main
    try {
      prepared.entry.instantiateSync(prepared.context, (specifier, referrer) => {
        if (referrer === prepared.entry && specifier === 'cordon:setup') return prepared.setup
        if (referrer === prepared.entry && specifier === 'main.js') return main
        throw new Error(IMPORT_REFUSED)
      })
    } catch (error) {
      if (this.#done) return
      const refused = error instanceof Error && error.message.includes(IMPORT_REFUSED)
      this.#finish(
        refused ? importRefused() : classifyFailure(describeHostError(error), this.#stop, job.limits),
      )
      return
    }
    this.#task(prepared.entry.evaluate())
  }

  /** Tracks one task on the isolate's thread; its end is when the run looks for what comes next. */
  #task(task: Promise<unknown>, ended?: () => void): void {
    this.#tasks++
    task.then(
      () => {
        ended?.()
        this.#afterTask({ failed: false })
      },
      (error: unknown) => {
        ended?.()
        this.#afterTask({ failed: true, error })
      },
    )
  }

  #taskEnded(): void {
    this.#tasks--
    if (this.#tasks === 0) this.#idle?.()
  }

  #afterTask(ended: { failed: false } | { failed: true; error: unknown }): void {
    this.#taskEnded()
    if (this.#done) return
    if (ended.failed) this.#failTask(ended.error)
    else this.#checkIdle()
  }

  /** No task runs and no call is pending, yet no outcome: the guest awaits what can never settle. */
  #checkIdle(): void {
    if (this.#done || this.#tasks > 0 || this.#calls.pending > 0) return
    this.#finish({
      status: 'error',
      error: {
        code: GuestErrorCode.UNSETTLED_PROMISE,
        message: 'the module awaited a promise that can never settle',
      },
      result: null,
    })
  }

  /** What a failed task means when the host itself ended the run: its limit, or the heap limit. */
  #hostEnded(): Outcome | null {
    if (this.#stop !== null) return classifyFailure(null, this.#stop, this.#job.limits)
    if (this.#prepared.disposed) return memoryLimit(this.#job.limits)
    return null
  }

  /** A task failed: the isolate is gone, or the guest left an unhandled rejection. */
  #failTask(error: unknown): void {
    if (this.#done) return
    const ended = this.#hostEnded()
    if (ended !== null) this.#finish(ended)
    else void this.#probe(error)
  }

  /**
   * Whether the guest's module failed: importing it again rethrows its error if it did. A rejection
   * that is not the module's own is a stray one, ignored like the QuickJS engine ignores it.
   */
  async #probe(error: unknown): Promise<void> {
    const main = this.#main
    if (main === null) {
      this.#finish(classifyGuestError(describeHostError(error), this.#job))
      return
    }
    this.#tasks++
    let failed: { error: unknown } | null = null
    try {
      const probe = await this.#prepared.compileProbe()
      // Asynchronously: a reply delivered meanwhile may have the guest running again, and a
      // synchronous call into the isolate would wait for it on the worker's main thread.
      await probe.instantiate(this.#prepared.context, (specifier) => {
        if (specifier === 'main.js') return main
        throw new Error(IMPORT_REFUSED)
      })
      await probe.evaluate()
    } catch (thrown) {
      failed = { error: thrown }
    }
    this.#taskEnded()
    if (this.#done) return
    if (failed === null) this.#checkIdle()
    else this.#finish(this.#hostEnded() ?? classifyGuestError(describeHostError(failed.error), this.#job))
  }

  #write(stream: 'stdout' | 'stderr', text: string): number {
    const output = this.#output
    if (this.#done || output.exceeded) return -1
    if (!output.append(stream, text)) {
      setImmediate(() => this.#halt('output'))
      return -1
    }
    return output.remaining
  }

  #report(kind: unknown, text: unknown): void {
    if (this.#done || this.#output.exceeded) return
    const limits = this.#job.limits
    const description = () => describe(typeof text === 'string' ? text : '{}')
    if (kind === 'ok' && typeof text === 'string') this.#finish(classifyResult(text, this.#output.remaining))
    else if (kind === 'too-long') this.#finish(classifyResult(null, 0))
    else if (kind === 'unserializable') this.#finish(classifyUnserializable(description(), limits))
    else this.#finish(classifyGuestError(description(), this.#job))
  }

  #watch(): void {
    if (this.#done) return
    const prepared = this.#prepared
    if (prepared.disposed) {
      // isolated-vm disposed it: the heap limit. The task may never return (see `quiesce`).
      if (!this.#disposedByUs) this.#finish(memoryLimit(this.#job.limits))
      return
    }
    if (this.#signal?.aborted === true || performance.now() > this.#wallDeadline) {
      this.#halt('wall')
      return
    }
    if (this.#output.exceeded) {
      this.#halt('output')
      return
    }
    if (this.#sampleCpu() > BigInt(this.#job.limits.cpuMs) * 1_000_000n) this.#halt('cpu')
  }

  /** The isolate is lost for good (its thread parked by isolated-vm): out of heap, or worse. */
  #lose(reason: string): void {
    this.#finish(
      /out-of-memory/i.test(reason)
        ? memoryLimit(this.#job.limits)
        : {
            status: 'error',
            error: { code: GuestErrorCode.ENGINE_FAULT, message: 'the engine failed while running this job' },
            result: null,
          },
    )
  }

  /** Stops the run for a limit the host measured, and disposes the isolate to stop the guest. */
  #halt(stop: Exclude<Stop, null>): void {
    if (this.#done) return
    this.#stop = stop
    this.#finish(classifyFailure(null, stop, this.#job.limits))
    this.#dispose()
  }

  #finish(outcome: Outcome): void {
    if (this.#done) return
    // A limit the host measured wins over whatever the guest managed to report meanwhile.
    const final =
      this.#output.exceeded && outcome.status !== 'output_limit' && outcome.status !== 'timeout'
        ? classifyFailure(null, 'output', this.#job.limits)
        : outcome
    this.#done = true
    clearInterval(this.#watchdog)
    this.#sampleCpu()
    // Calls the guest makes from now on (queued microtasks, getters run late) reach nobody.
    this.#calls.end()
    this.#settle(final)
  }
}

/**
 * `{ name, message }` of an error isolated-vm copied out of the guest (an `Error` copy, or a primitive
 * thrown as is). Its `stack` is never read: isolated-vm appends the host's own frames to it.
 */
function describeHostError(error: unknown): Description {
  if (error instanceof Error) {
    // isolated-vm names a compile error's place `[main.js:1:17]`, or `[<isolated-vm>:0:0]` for none.
    const message = error.message.replace(/ \[<isolated-vm>:\d+:\d+\]$/, '').slice(0, 4000)
    if (message.startsWith('An object was thrown from supplied code within isolated-vm')) {
      return { name: 'Error', message: '' }
    }
    return { name: String(error.name).slice(0, 200), message }
  }
  if (error === null) return { name: 'null', message: '' }
  return { name: 'Error', message: String(error).slice(0, 4000) }
}

/** A guest error, with V8's wording of the conditions the QuickJS engine names differently. */
function classifyGuestError(description: Description, job: RunJob): Outcome {
  if (description.name === 'RangeError' && description.message === 'Array buffer allocation failed') {
    return memoryLimit(job.limits)
  }
  if (description.name === 'Error' && description.message === 'Not supported') {
    // V8's answer to a dynamic import() where the embedder offers none.
    return importRefused()
  }
  return classifyFailure(description, null, job.limits)
}

function importRefused(): Outcome {
  return {
    status: 'error',
    error: { code: GuestErrorCode.IMPORT_NOT_ALLOWED, message: IMPORT_REFUSED },
    result: null,
  }
}
