import { GuestErrorCode, type Language, type RunOutcome } from '@cordon/contracts'
import type { QuickJSHandle } from 'quickjs-emscripten-core'
import { NO_GRANTS } from '../../bridge/bridge.ts'
import type { BindingChannel, Engine, RunJob } from '../../engine.ts'
import { OutputBuffer, type OutputListener } from '../../output-buffer.ts'
import type { StripResult } from '../../typescript.ts'
import {
  classifyFailure,
  classifyResult,
  classifyUnserializable,
  isParseError,
  lostToMemory,
  mayBeMemoryExhaustion,
  memoryLimit,
  type Outcome,
  type Stop,
} from './classify.ts'
import type { CpuMeter } from './cpu-meter.ts'
import { type GuestGlue, InputTooLarge } from './guest-glue.ts'
import { ModulePool } from './module-pool.ts'
import type { QuickJSBuild } from './quickjs-build.ts'

export { QUICKJS_STACK_BYTES } from './guest-glue.ts'

const MiB = 1024 * 1024
/** Microtasks run between deadline checks. */
const JOB_BATCH = 512
/** A failed run whose heap is this full is reported as `memory_limit`, whatever the guest threw. */
const EXHAUSTED_FRACTION = 0.9

export interface QuickJSEngineOptions {
  /** The compiled build (on Node: `nodeQuickJSBuild()`). */
  build: QuickJSBuild
  /** How a run's CPU time is measured (on Node: the thread's clock). */
  meter: CpuMeter
  /** Erases TypeScript's types; without it, TypeScript jobs are refused (see `languages`). */
  stripTypes?: (code: string) => StripResult
  maxRunsPerModule?: number
  /** Keep a spare module made ahead for the next run (default true; off where memory is tight). */
  warmSpare?: boolean
}

/**
 * Runs JavaScript/TypeScript modules in QuickJS (wasm). Every run starts from a fresh runtime and
 * context: the image of one captured right after creation (see `GuestGlue`), restored byte for byte,
 * on a module that is only ever used for one tenant key. Limits: CPU and wall deadline (interrupt
 * handler), memory (runtime limit plus a hard cap on the module's linear memory), stack depth, and
 * one byte budget for stdout + stderr + result. Nothing of the host reaches the guest but the console
 * functions and the binding bridge of the glue; values leave the guest only as strings whose length
 * was checked. While binding calls are in flight, the run waits for their replies (wall time only).
 */
export class QuickJSEngine implements Engine {
  readonly name = 'quickjs' as const
  readonly #modules: ModulePool
  readonly #meter: CpuMeter
  readonly #stripTypes: ((code: string) => StripResult) | undefined

  constructor(options: QuickJSEngineOptions) {
    this.#modules = new ModulePool({
      maxRunsPerModule: options.maxRunsPerModule ?? 10_000,
      build: options.build,
      warmSpare: options.warmSpare ?? true,
    })
    this.#meter = options.meter
    this.#stripTypes = options.stripTypes
  }

  /** The languages this engine runs: TypeScript only with a type stripper. */
  get languages(): readonly Language[] {
    return this.#stripTypes === undefined ? ['javascript'] : ['javascript', 'typescript']
  }

  /** Creates a module ahead of time so that the first run does not wait for instantiation. */
  warm(memoryMb: number): void {
    this.#modules.warm(memoryMb)
  }

  async run(
    job: RunJob,
    channel?: BindingChannel,
    signal?: AbortSignal,
    listener?: OutputListener,
  ): Promise<RunOutcome> {
    const started = performance.now()
    const cpuUsed = this.#meter.start()
    let checks = 0
    const output = new OutputBuffer(job.limits.outputBytes, listener)
    const finish = (outcome: Outcome, memoryBytes = 0): RunOutcome => {
      const cpuMicros = cpuUsed(checks)
      return {
        ...outcome,
        stdout: output.stdout,
        stderr: output.stderr,
        usage: {
          cpuMs: Math.round(cpuMicros / 100) / 10,
          wallMs: Math.round((performance.now() - started) * 10) / 10,
          memoryBytes,
        },
      }
    }

    let source = job.code
    if (job.language === 'typescript') {
      const stripped = this.#stripTypes?.(job.code) ?? {
        ok: false,
        message: 'TypeScript is not available on this runtime',
      }
      if (!stripped.ok)
        return finish(
          classifyFailure({ name: 'SyntaxError', message: stripped.message }, null, job.limits, true),
        )
      source = stripped.code
    }

    const lease = await this.#modules.acquire(job.tenantKey, job.limits.memoryMb)
    const glue = lease.glue
    const memory = lease.module.getWasmMemory()
    const heapAtStart = memory.buffer.byteLength
    let tainted = false
    let stop: Stop = null
    const cpuBudget = job.limits.cpuMs * 1000
    const wallDeadline = started + job.limits.wallMs
    const interrupted = () => {
      checks++
      if (stop !== null) return true
      if (signal?.aborted === true) stop = 'wall'
      else if (output.exceeded) stop = 'output'
      else if (performance.now() > wallDeadline) stop = 'wall'
      else if (cpuUsed(checks) > cpuBudget) stop = 'cpu'
      return stop !== null
    }
    try {
      glue.begin(
        { output, interrupted, maxCalls: job.limits.bindingCalls, call: channel },
        job.inputJSON,
        job.limits.memoryMb * MiB,
        JSON.stringify(job.grants ?? NO_GRANTS),
      )
      const stopped = () => stop ?? (output.exceeded ? 'output' : null)
      // Waits for a binding reply, at most until the wall deadline (waiting costs no CPU time).
      const waitForReply = async () => {
        let timer: NodeJS.Timeout | undefined
        const late = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, Math.max(0, wallDeadline - performance.now()) + 1)
        })
        const aborted = new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve()))
        await Promise.race([glue.nextReply(), late, aborted])
        clearTimeout(timer)
        if (stop === null && (performance.now() > wallDeadline || signal?.aborted === true)) stop = 'wall'
      }
      let outcome = await this.#evaluate(glue, source, job, output, stopped, waitForReply)
      const heapBytes = memory.buffer.byteLength
      if (mayBeMemoryExhaustion(outcome)) {
        // Out of memory, QuickJS throws `null` when it cannot allocate even the error object, and a
        // promise job that fails that way leaves its chain unsettled. By the time we look, the garbage
        // may be freed: a heap that grew to the limit during this run counts as exhaustion too.
        const grewToLimit = heapBytes > heapAtStart && heapBytes >= job.limits.memoryMb * MiB
        if ((lostToMemory(outcome) && grewToLimit) || memoryExhausted(glue, job.limits.memoryMb)) {
          outcome = memoryLimit(job.limits)
        }
      }
      return finish(outcome, heapBytes)
    } catch (error) {
      if (error instanceof InputTooLarge) return finish(memoryLimit(job.limits))
      // A host-side exception from inside wasm (native stack exhausted, emscripten abort) may leave
      // the module's own stack pointer anywhere: it is dropped, and the guest gets a plain error.
      tainted = true
      const message = error instanceof Error ? error.message : ''
      if (error instanceof RangeError && /call stack/i.test(message)) {
        return finish(classifyFailure({ name: 'RangeError', message: 'stack overflow' }, null, job.limits))
      }
      if (/memory|enlarge/i.test(message)) return finish(memoryLimit(job.limits))
      return finish({
        status: 'error',
        error: {
          code: GuestErrorCode.WORKER_CRASHED,
          message: 'the engine faulted while running guest code',
        },
        result: null,
      })
    } finally {
      // Jobs the guest left queued are never run (that would hand it a fresh slice of CPU per job):
      // the next run starts from the restored image, where they do not exist. The module is dropped
      // instead when the run left host-side state the image does not cover, or grew the heap: that
      // memory goes back at once, and any growth in a later run is that run's own.
      const restorable = glue.end()
      const grew = memory.buffer.byteLength > heapAtStart
      this.#modules.release(lease, tainted || grew || !restorable)
    }
  }

  async #evaluate(
    glue: GuestGlue,
    source: string,
    job: RunJob,
    output: OutputBuffer,
    stopped: () => Stop,
    waitForReply: () => Promise<void>,
  ): Promise<Outcome> {
    const ctx = glue.ctx
    const owned: QuickJSHandle[] = []
    const filename = job.language === 'typescript' ? 'main.ts' : 'main.js'
    // Guest errors are read through the guest library, never by touching the guest object here.
    const fail = (errorHandle: QuickJSHandle, evaluating = false): Outcome => {
      const description = stopped() === null ? glue.explain(errorHandle) : null
      errorHandle.dispose()
      return classifyFailure(
        description,
        stopped(),
        job.limits,
        evaluating && isParseError(description, filename),
      )
    }
    try {
      const evaluated = ctx.evalCode(source, filename, { type: 'module' })
      if (evaluated.error) return fail(evaluated.error, true)
      owned.push(evaluated.value)
      const settled = glue.finish(evaluated.value)
      if ('error' in settled) return fail(settled.error)
      const promise = settled.value
      owned.push(promise)

      for (;;) {
        const state = ctx.getPromiseState(promise)
        if (state.type === 'fulfilled') {
          const json = glue.stringify(state.value, output.remaining)
          state.value.dispose()
          if ('error' in json) {
            const description = stopped() === null ? glue.explain(json.error) : null
            json.error.dispose()
            const stop = stopped()
            return stop === null
              ? classifyUnserializable(description, job.limits)
              : classifyFailure(null, stop, job.limits)
          }
          return classifyResult('text' in json ? json.text : null, output.remaining)
        }
        if (state.type === 'rejected') return fail(state.error)
        const jobs = ctx.runtime.executePendingJobs(JOB_BATCH)
        if (jobs.error) return fail(jobs.error)
        const reason = stopped()
        if (reason !== null) return classifyFailure(null, reason, job.limits)
        if (jobs.value === 0 && glue.pendingCalls > 0 && ctx.getPromiseState(promise).type === 'pending') {
          await waitForReply()
          const late = stopped()
          if (late !== null) return classifyFailure(null, late, job.limits)
          continue
        }
        if (jobs.value === 0 && ctx.getPromiseState(promise).type === 'pending') {
          return {
            status: 'error',
            error: {
              code: GuestErrorCode.UNSETTLED_PROMISE,
              message: 'the module awaited a promise that can never settle',
            },
            result: null,
          }
        }
      }
    } finally {
      for (const handle of owned.reverse()) if (handle.alive) handle.dispose()
    }
  }

  dispose(): void {
    this.#modules.dispose()
  }
}

/** True when the runtime's heap is at (or too full to measure against) its limit. */
function memoryExhausted(glue: GuestGlue, memoryMb: number): boolean {
  const used = glue.memoryUsed()
  return used === null || used >= memoryMb * MiB * EXHAUSTED_FRACTION
}
