import {
  type ExecutionStatus,
  type GuestError,
  GuestErrorCode,
  type JsonValue,
  parseJsonBounded,
  type RunOutcome,
} from '@cordon/contracts'
import type { QuickJSContext, QuickJSHandle, QuickJSRuntime } from 'quickjs-emscripten-core'
import type { Engine, RunJob } from '../../engine.ts'
import { OutputBuffer } from '../../output-buffer.ts'
import { stripTypes } from '../../typescript.ts'
import { CONSOLE_FORMATTER, GUEST_PRELUDE } from './guest-prelude.ts'
import { ModulePool } from './module-pool.ts'

const MiB = 1024 * 1024
/**
 * QuickJS's own stack limit. Measured here: with the worker's `--stack-size=4000`, 256 KiB turns
 * every deep recursion we know of (plain calls, getters, Proxy traps, JSON of nested arrays) into a
 * guest `InternalError` before V8's native stack runs out.
 */
export const QUICKJS_STACK_BYTES = 256 * 1024
/** Results nest at most this deep. */
export const MAX_RESULT_DEPTH = 64
/** Microtasks run between deadline checks. */
const JOB_BATCH = 512

type Stop = 'cpu' | 'wall' | 'output' | 'done' | null
type Outcome = { status: ExecutionStatus; error: GuestError | null; result: JsonValue }

export interface QuickJSEngineOptions {
  maxRunsPerModule?: number
}

/**
 * Runs JavaScript/TypeScript modules in QuickJS (wasm). A fresh runtime and context per run, on a
 * module that is only ever used for one tenant key; limits: CPU and wall deadline (interrupt
 * handler), memory (runtime limit plus a hard cap on the module's linear memory), stack depth, and
 * one byte budget for stdout + stderr + result. Nothing of the host reaches the guest but
 * `write(stream, text)` handed to the prelude; values leave the guest only as one JSON string.
 */
export class QuickJSEngine implements Engine {
  readonly name = 'quickjs' as const
  readonly #modules: ModulePool
  #liveRuntimes = 0

  constructor(options: QuickJSEngineOptions = {}) {
    this.#modules = new ModulePool({ maxRunsPerModule: options.maxRunsPerModule ?? 500 })
  }

  /** Creates a module ahead of time so that the first run does not wait for instantiation. */
  warm(memoryMb: number): void {
    this.#modules.warm(memoryMb)
  }

  async run(job: RunJob): Promise<RunOutcome> {
    const started = performance.now()
    const cpuStart = process.threadCpuUsage()
    const output = new OutputBuffer(job.limits.outputBytes)
    const finish = (
      status: ExecutionStatus,
      error: GuestError | null,
      result: JsonValue = null,
      memoryBytes = 0,
    ) => {
      const cpu = process.threadCpuUsage(cpuStart)
      return {
        status,
        result,
        stdout: output.stdout,
        stderr: output.stderr,
        error,
        usage: {
          cpuMs: Math.round((cpu.user + cpu.system) / 100) / 10,
          wallMs: Math.round((performance.now() - started) * 10) / 10,
          memoryBytes,
        },
      }
    }

    let source = job.code
    if (job.language === 'typescript') {
      const stripped = stripTypes(job.code)
      if (!stripped.ok)
        return finish('error', { code: GuestErrorCode.SYNTAX_ERROR, message: stripped.message })
      source = stripped.code
    }

    const lease = await this.#modules.acquire(job.tenantKey, job.limits.memoryMb)
    const runtime = lease.module.newRuntime()
    this.#liveRuntimes++
    let context: QuickJSContext | null = null
    let tainted = false
    let stop: Stop = null
    try {
      const cpuDeadline = job.limits.cpuMs * 1000
      const wallDeadline = started + job.limits.wallMs
      runtime.setMemoryLimit(job.limits.memoryMb * MiB)
      runtime.setMaxStackSize(QUICKJS_STACK_BYTES)
      runtime.setInterruptHandler(() => {
        if (stop !== null) return true
        if (output.exceeded) stop = 'output'
        else if (performance.now() > wallDeadline) stop = 'wall'
        else {
          const cpu = process.threadCpuUsage(cpuStart)
          if (cpu.user + cpu.system > cpuDeadline) stop = 'cpu'
        }
        return stop !== null
      })
      const ctx = runtime.newContext()
      context = ctx
      const outcome = this.#evaluate(
        ctx,
        runtime,
        source,
        job,
        output,
        () => stop ?? (output.exceeded ? 'output' : null),
      )
      return finish(
        outcome.status,
        outcome.error,
        outcome.result,
        lease.module.getWasmMemory().buffer.byteLength,
      )
    } catch (error) {
      // A host-side exception from inside wasm (native stack exhausted, emscripten abort) leaves the
      // module in an unknown state: it is dropped, and the guest gets a plain error.
      tainted = true
      const hostError = error instanceof Error ? error : new Error('engine failure')
      if (hostError instanceof RangeError && /call stack/i.test(hostError.message)) {
        return finish('error', { code: GuestErrorCode.STACK_OVERFLOW, message: 'RangeError: stack overflow' })
      }
      if (/memory|enlarge/i.test(hostError.message)) {
        return finish('memory_limit', memoryLimitError(job.limits.memoryMb))
      }
      return finish('error', {
        code: GuestErrorCode.STACK_OVERFLOW,
        message: 'engine fault while running guest code',
      })
    } finally {
      if (!tainted) {
        try {
          tainted = !drainJobs(runtime, () => {
            stop ??= 'done'
          })
          context?.dispose()
          runtime.dispose()
        } catch {
          tainted = true
        }
      }
      // A tainted module is dropped whole, runtime included.
      this.#liveRuntimes--
      this.#modules.release(lease, tainted)
    }
  }

  #evaluate(
    ctx: QuickJSContext,
    runtime: QuickJSRuntime,
    source: string,
    job: RunJob,
    output: OutputBuffer,
    stopped: () => Stop,
  ): Outcome {
    const write = ctx.newFunction('write', (streamHandle, textHandle) => {
      if (ctx.typeof(streamHandle) !== 'number' || ctx.typeof(textHandle) !== 'string') return ctx.false
      const stream = ctx.getNumber(streamHandle) === 2 ? 'stderr' : 'stdout'
      return output.append(stream, ctx.getString(textHandle)) ? ctx.true : ctx.false
    })
    const handles: QuickJSHandle[] = [write]
    const own = <T extends QuickJSHandle>(handle: T): T => {
      handles.push(handle)
      return handle
    }
    try {
      const factory = own(ctx.unwrapResult(ctx.evalCode(GUEST_PRELUDE, 'cordon:prelude.js')))
      const inputText = own(ctx.newString(job.inputJSON))
      const formatter = own(ctx.newString(CONSOLE_FORMATTER))
      const glue = own(
        ctx.unwrapResult(ctx.callFunction(factory, ctx.undefined, write, inputText, formatter)),
      )
      const finishFn = own(ctx.getProp(glue, 0))
      const explainFn = own(ctx.getProp(glue, 1))
      // Guest errors are read through the prelude's `explain`, never by touching the guest object.
      const fail = (errorHandle: QuickJSHandle, compiling = false): Outcome => {
        const stop = stopped()
        if (stop !== null) {
          errorHandle.dispose()
          return this.#failure(null, stop, job)
        }
        const explained = ctx.callFunction(explainFn, ctx.undefined, errorHandle)
        errorHandle.dispose()
        let description: unknown = null
        if (explained.error) explained.error.dispose()
        else {
          const text = ctx.typeof(explained.value) === 'string' ? ctx.getString(explained.value) : ''
          explained.value.dispose()
          const parsed = parseJsonBounded(text, { maxBytes: 16 * 1024, maxDepth: 2 })
          if (parsed.ok) description = parsed.value
        }
        // Explaining needs a little memory; if even that failed, the heap is exhausted.
        if (description === null && memoryExhausted(ctx, runtime, job.limits.memoryMb)) {
          return { status: 'memory_limit', error: memoryLimitError(job.limits.memoryMb), result: null }
        }
        return this.#failure(description, stopped(), job, compiling)
      }

      const evaluated = ctx.evalCode(source, job.language === 'typescript' ? 'main.ts' : 'main.js', {
        type: 'module',
      })
      if (evaluated.error) return fail(evaluated.error, true)
      own(evaluated.value)
      const settled = ctx.callFunction(finishFn, ctx.undefined, evaluated.value)
      if (settled.error) return fail(settled.error)
      const promise = own(settled.value)

      for (;;) {
        const state = ctx.getPromiseState(promise)
        if (state.type === 'fulfilled') {
          const text = ctx.typeof(state.value) === 'string' ? ctx.getString(state.value) : ''
          state.value.dispose()
          return this.#result(text, output, job)
        }
        if (state.type === 'rejected') return fail(state.error)
        const jobs = runtime.executePendingJobs(JOB_BATCH)
        if (jobs.error) return fail(jobs.error)
        const reason = stopped()
        if (reason !== null) return this.#failure(null, reason, job)
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
      for (const handle of handles.reverse()) if (handle.alive) handle.dispose()
    }
  }

  #result(text: string, output: OutputBuffer, job: RunJob): Outcome {
    const kind = text.charAt(0)
    const body = text.slice(1)
    if (kind === 'E' || kind === 'U') {
      const described = parseJsonBounded(body, { maxBytes: 16 * 1024, maxDepth: 2 })
      const { name, message } = described.ok ? asDescription(described.value) : { name: 'Error', message: '' }
      if (kind === 'U') {
        if (isOutOfMemory(name, message)) {
          return { status: 'memory_limit', error: memoryLimitError(job.limits.memoryMb), result: null }
        }
        return {
          status: 'error',
          error: {
            code: GuestErrorCode.RESULT_NOT_SERIALIZABLE,
            message: `result is not JSON: ${name}: ${message}`,
          },
          result: null,
        }
      }
      return this.#failure({ name, message }, null, job)
    }
    if (kind !== 'O') {
      return {
        status: 'error',
        error: { code: GuestErrorCode.RESULT_NOT_SERIALIZABLE, message: 'no result' },
        result: null,
      }
    }
    const parsed = parseJsonBounded(body, {
      maxBytes: Math.max(0, output.remaining),
      maxDepth: MAX_RESULT_DEPTH,
    })
    if (parsed.ok) return { status: 'ok', error: null, result: parsed.value }
    if (parsed.reason === 'too_large') {
      return {
        status: 'output_limit',
        error: {
          code: GuestErrorCode.OUTPUT_LIMIT,
          message: 'stdout, stderr and result together exceed outputBytes',
        },
        result: null,
      }
    }
    return {
      status: 'error',
      error: {
        code:
          parsed.reason === 'too_deep'
            ? GuestErrorCode.RESULT_TOO_DEEP
            : GuestErrorCode.RESULT_NOT_SERIALIZABLE,
        message: parsed.message,
      },
      result: null,
    }
  }

  /** Classifies a failed run: limit hits first (decided by the host), then the guest's own error. */
  #failure(error: unknown, stop: Stop, job: RunJob, compiling = false): Outcome {
    if (stop === 'cpu') {
      return timeout(GuestErrorCode.CPU_TIME_LIMIT, `CPU time limit of ${job.limits.cpuMs} ms exceeded`)
    }
    if (stop === 'wall') {
      return timeout(GuestErrorCode.WALL_TIME_LIMIT, `wall time limit of ${job.limits.wallMs} ms exceeded`)
    }
    if (stop === 'output') {
      return {
        status: 'output_limit',
        error: {
          code: GuestErrorCode.OUTPUT_LIMIT,
          message: 'stdout, stderr and result together exceed outputBytes',
        },
        result: null,
      }
    }
    const { name, message } = asDescription(error)
    if (isOutOfMemory(name, message)) {
      return { status: 'memory_limit', error: memoryLimitError(job.limits.memoryMb), result: null }
    }
    if (name === 'InternalError' && /stack overflow/.test(message)) {
      return {
        status: 'error',
        error: { code: GuestErrorCode.STACK_OVERFLOW, message: `${name}: ${message}` },
        result: null,
      }
    }
    if (compiling && name === 'SyntaxError') {
      return {
        status: 'error',
        error: { code: GuestErrorCode.SYNTAX_ERROR, message: `${name}: ${message}` },
        result: null,
      }
    }
    if (name === 'ReferenceError' && /could not load module/.test(message)) {
      return {
        status: 'error',
        error: {
          code: GuestErrorCode.IMPORT_NOT_ALLOWED,
          message: 'imports are not available in the sandbox',
        },
        result: null,
      }
    }
    return {
      status: 'error',
      error: { code: GuestErrorCode.GUEST_EXCEPTION, message: message ? `${name}: ${message}` : name },
      result: null,
    }
  }

  /** QuickJS runtimes not yet disposed (0 between runs: nothing outlives an execution). */
  get liveRuntimes(): number {
    return this.#liveRuntimes
  }

  dispose(): void {
    this.#modules.dispose()
  }
}

/**
 * Drops every job still queued (a guest may leave promise reactions behind, for instance after an
 * out-of-memory error): with the interrupt flag raised each job stops at once. A context must hold
 * no jobs when it is freed. Returns false when the queue would not empty.
 */
function drainJobs(runtime: QuickJSRuntime, raiseInterrupt: () => void): boolean {
  raiseInterrupt()
  for (let round = 0; round < 1000 && runtime.hasPendingJob(); round++) {
    const jobs = runtime.executePendingJobs(64)
    if (jobs.error) jobs.error.dispose()
  }
  return !runtime.hasPendingJob()
}

function timeout(code: GuestErrorCode, message: string) {
  return { status: 'timeout' as const, error: { code, message }, result: null }
}

function memoryLimitError(memoryMb: number): GuestError {
  const limit = memoryMb > 0 ? ` of ${memoryMb} MiB` : ''
  return { code: GuestErrorCode.MEMORY_LIMIT, message: `memory limit${limit} exceeded` }
}

function isOutOfMemory(name: string, message: string): boolean {
  return name === 'InternalError' && message === 'out of memory'
}

/** Reads `{ name, message }` from a dumped guest value, which is host data of any shape. */
function asDescription(value: unknown): { name: string; message: string } {
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>
    const name = typeof record.name === 'string' ? record.name.slice(0, 200) : 'Error'
    const message = typeof record.message === 'string' ? record.message.slice(0, 4000) : ''
    return { name, message }
  }
  return { name: 'Error', message: typeof value === 'string' ? value.slice(0, 4000) : '' }
}

/** True when the runtime's heap is at (or too full to measure against) its limit. */
function memoryExhausted(ctx: QuickJSContext, runtime: QuickJSRuntime, memoryMb: number): boolean {
  try {
    return usedBytes(ctx, runtime) >= memoryMb * MiB * 0.9
  } catch {
    return true
  }
}

function usedBytes(ctx: QuickJSContext, runtime: QuickJSRuntime): number {
  const handle = runtime.computeMemoryUsage()
  try {
    const usage = ctx.dump(handle) as { malloc_size?: unknown }
    return typeof usage.malloc_size === 'number' ? usage.malloc_size : 0
  } finally {
    handle.dispose()
  }
}
