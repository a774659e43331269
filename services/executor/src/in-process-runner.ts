import {
  CordonError,
  type EngineName,
  ErrorCode,
  GuestErrorCode,
  type Language,
  type RunOutcome,
} from '@cordon/contracts'
import type { Limits } from '@cordon/policy'
import {
  BINDING_OPERATIONS,
  type BindingHost,
  failure,
  isBindingReply,
  type NestedRunner,
} from './bridge/bridge.ts'
import type { BindingChannel, Engine, JobRunner, RunJob } from './engine.ts'
import { outcomeOf } from './outcome.ts'

/** An engine the in-process runner can use, with what it can run. */
export interface InProcessEngine extends Engine {
  readonly languages: readonly Language[]
  /**
   * The largest `memoryMb` this engine's jobs may have, where its jobs' memory is not the runner's own
   * (a container, an isolate of its own); by default the runner's `maxMemoryMb`.
   */
  readonly maxMemoryMb?: number
  /**
   * The memory every job of this engine gets, where the engine cannot set less (a platform isolate):
   * a profile must state exactly this, never a lower limit that would not hold.
   */
  readonly fixedMemoryMb?: number
}

export interface InProcessRunnerOptions {
  /**
   * Top-level jobs of one engine running at once (QuickJS jobs share one thread: a job runs while
   * another awaits a reply; a container job mostly waits for its container).
   */
  maxRunning: number
  /** Jobs of one engine waiting for a turn; one more is refused with QUEUE_FULL. */
  maxQueued: number
  /**
   * The largest `memoryMb` a job may have, for engines that run in the runtime's own memory (shared by
   * every job in it); an engine whose jobs have memory of their own says its own bound.
   */
  maxMemoryMb: number
  /** The largest `outputBytes` a job may have (where the store takes values of bounded size). */
  maxOutputBytes: number
}

interface Waiting {
  start: () => void
  cancel: () => void
}

/**
 * Runs jobs in this process, on engines that need no worker process: a Durable Object's QuickJS,
 * where there are no processes to fork. The engine enforces the job's limits itself (CPU, memory,
 * output, binding calls); what a supervisor would enforce from outside is the platform's here (a
 * Worker's own CPU and memory limits), so the runner bounds what it lets in: the jobs running at once,
 * the queue, and each job's memory. Tools a job calls run beside it, without waiting for a turn.
 */
export class InProcessRunner implements JobRunner {
  readonly #engines: Partial<Record<EngineName, InProcessEngine>>
  readonly #options: InProcessRunnerOptions
  /** Per engine: the jobs running, and those waiting for a turn. */
  readonly #lanes = new Map<EngineName, { running: number; queue: Waiting[] }>()

  constructor(engines: Partial<Record<EngineName, InProcessEngine>>, options: InProcessRunnerOptions) {
    this.#engines = engines
    this.#options = options
  }

  /** The engines this runner has. */
  get engines(): EngineName[] {
    return Object.keys(this.#engines) as EngineName[]
  }

  refusal(
    engine: EngineName,
    language: Language,
    limits: Pick<Limits, 'memoryMb' | 'outputBytes'>,
  ): string | null {
    const runs = this.#engines[engine]
    if (runs === undefined) return `engine "${engine}" is not available in this deployment`
    if (!runs.languages.includes(language)) {
      return `the ${engine} engine runs ${runs.languages.join(' and ')} in this deployment, not ${language}`
    }
    if (runs.fixedMemoryMb !== undefined && limits.memoryMb !== runs.fixedMemoryMb) {
      return `the ${engine} engine here gives every job the platform's ${runs.fixedMemoryMb} MiB and cannot hold it to less: the profile must say memoryMb ${runs.fixedMemoryMb} (it gives ${limits.memoryMb})`
    }
    const maxMemoryMb = runs.fixedMemoryMb ?? runs.maxMemoryMb ?? this.#options.maxMemoryMb
    if (limits.memoryMb > maxMemoryMb) {
      return `this deployment runs ${engine} jobs of at most ${maxMemoryMb} MiB (the profile gives memoryMb ${limits.memoryMb})`
    }
    if (limits.outputBytes > this.#options.maxOutputBytes) {
      return `this deployment keeps at most ${this.#options.maxOutputBytes} bytes of output per job (the profile gives outputBytes ${limits.outputBytes})`
    }
    return null
  }

  run(job: RunJob, _tenant: string, signal?: AbortSignal, host?: BindingHost): Promise<RunOutcome> {
    const refusal = this.refusal(job.engine, job.language, job.limits)
    if (refusal !== null) throw new CordonError(ErrorCode.ENGINE_UNAVAILABLE, refusal)
    if (signal?.aborted === true) return Promise.resolve(cancelled())
    const lane = this.#lane(job.engine)
    if (lane.running < this.#options.maxRunning) return this.#start(job, signal, host)
    if (lane.queue.length >= this.#options.maxQueued) {
      throw new CordonError(ErrorCode.QUEUE_FULL, 'too many executions are waiting; retry later')
    }
    return new Promise((resolve) => {
      const waiting: Waiting = {
        start: () => {
          signal?.removeEventListener('abort', waiting.cancel)
          resolve(this.#start(job, signal, host))
        },
        cancel: () => {
          const index = lane.queue.indexOf(waiting)
          if (index >= 0) lane.queue.splice(index, 1)
          resolve(cancelled())
        },
      }
      signal?.addEventListener('abort', waiting.cancel, { once: true })
      lane.queue.push(waiting)
    })
  }

  async #start(
    job: RunJob,
    signal: AbortSignal | undefined,
    host: BindingHost | undefined,
  ): Promise<RunOutcome> {
    const lane = this.#lane(job.engine)
    lane.running++
    const controller = new AbortController()
    const stop = () => controller.abort()
    signal?.addEventListener('abort', stop, { once: true })
    try {
      const outcome = await this.#runOn(job, controller.signal, host)
      // Cancelled while it ran: the engine stopped it at its next check, as it would at its deadline.
      if (signal?.aborted !== true) return outcome
      return {
        ...outcome,
        status: 'killed',
        result: null,
        error: { code: GuestErrorCode.CANCELLED, message: 'cancelled' },
      }
    } finally {
      controller.abort()
      signal?.removeEventListener('abort', stop)
      lane.running--
      lane.queue.shift()?.start()
    }
  }

  #lane(engine: EngineName): { running: number; queue: Waiting[] } {
    let lane = this.#lanes.get(engine)
    if (lane === undefined) {
      lane = { running: 0, queue: [] }
      this.#lanes.set(engine, lane)
    }
    return lane
  }

  /** Runs `job` now; its binding calls, and the tools they start, end when `signal` aborts. */
  async #runOn(job: RunJob, signal: AbortSignal, host: BindingHost | undefined): Promise<RunOutcome> {
    const engine = this.#engines[job.engine]
    if (engine === undefined) {
      return outcomeOf('error', { code: GuestErrorCode.WORKER_CRASHED, message: `no ${job.engine} engine` })
    }
    const nest: NestedRunner = async (nested, nestedHost) => {
      if (signal.aborted)
        return outcomeOf('killed', { code: GuestErrorCode.CANCELLED, message: 'the caller ended' })
      const refusal = this.refusal(nested.engine, nested.language, nested.limits)
      if (refusal !== null)
        return outcomeOf('error', { code: GuestErrorCode.WORKER_CRASHED, message: refusal })
      return this.#runOn(nested, signal, nestedHost)
    }
    const channel: BindingChannel = async (call) => {
      const operations = (BINDING_OPERATIONS as Record<string, readonly string[] | undefined>)[call?.kind]
      if (operations === undefined || !operations.includes(call.op) || !Array.isArray(call.args)) {
        return failure('INVALID_ARGUMENT', 'malformed binding call')
      }
      if (host === undefined) return failure('NOT_GRANTED', `${call.kind} is not granted`)
      try {
        const reply = await host.call(call, signal, nest)
        return isBindingReply(reply) ? reply : failure('BINDING_FAILED', 'the binding failed')
      } catch {
        return failure('BINDING_FAILED', 'the binding failed')
      }
    }
    const listener = host?.output === undefined ? undefined : host.output.bind(host)
    return engine.run(job, channel, signal, listener)
  }
}

function cancelled(): RunOutcome {
  return outcomeOf('killed', { code: GuestErrorCode.CANCELLED, message: 'cancelled before it started' })
}
