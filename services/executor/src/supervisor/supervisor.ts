import { CordonError, ErrorCode, type GuestError, GuestErrorCode, type RunOutcome } from '@cordon/contracts'
import type { BindingHost } from '../bridge/bridge.ts'
import type { JobRunner, RunJob } from '../engine.ts'
import { sweepSandboxLeftovers } from '../engines/container/sandbox.ts'
import { outcomeOf } from '../outcome.ts'
import type { FromWorker, ToWorker } from '../worker/protocol.ts'
import { FairQueue } from './fair-queue.ts'
import { ProcessProbe } from './process-info.ts'
import { resolveOptions, type SupervisorOptions } from './supervisor-options.ts'
import { endNested, handleCall, handleOutput, type NestingOptions } from './worker-calls.ts'
import { forkWorker, type WorkerSettings, workerSettings } from './worker-process.ts'
import type { Task, Worker } from './worker-records.ts'

export type { SupervisorOptions } from './supervisor-options.ts'

/** How often a job held ahead may go back to the queue after its worker died. */
const MAX_REQUEUES = 3
/**
 * How long aborted nested jobs may take to say they ended, once their caller has: an engine answers
 * within its own stop grace (250 ms for a stuck isolate), so this is generous.
 */
const DRAIN_LIMIT_MS = 2000
/** How long a cancelled, running job may still finish by itself before its worker is killed. */
const CANCEL_GRACE_MS = 50
/** How long an idle worker may take to end its pooled sandboxes at shutdown before it is killed. */
const STOP_GRACE_MS = 1000

export interface SupervisorStats {
  workers: number
  ready: number
  busy: number
  queued: number
  restarts: number
}

/**
 * Runs jobs in pre-started worker processes and enforces, from outside, what a guest could defeat
 * inside: wall time (kill at the job's wall limit plus grace), CPU time and resident memory (both
 * sampled from /proc). A killed or crashed worker answers its job with `timeout`, `memory_limit` or
 * `killed` and is replaced; the gateway process never runs guest code. Jobs queue fairly per tenant,
 * bounded. A job's binding calls are re-checked here (`handleCall`) before its `host` sees them.
 */
export class Supervisor implements JobRunner {
  readonly #options: Required<SupervisorOptions>
  readonly #workers = new Set<Worker>()
  readonly #queue: FairQueue<Task>
  #nextId = 1
  /** What binding calls need to start nested jobs: ids from this supervisor, its RSS budget. */
  readonly #nesting: NestingOptions = {
    nextId: () => this.#nextId++,
    rssBudget: (limits) => this.#options.rssBudget(limits),
  }
  #restarts = 0
  #earlyCrashes = 0
  #sampler: NodeJS.Timeout | null = null
  #stopping = false

  /** Read and checked once, when the supervisor is made: a bad value refuses to start. */
  readonly #settings: WorkerSettings

  constructor(options: SupervisorOptions = {}) {
    this.#options = resolveOptions(options)
    this.#settings = workerSettings()
    // One tenant may hold at most half the queue, so a flood from one never locks out the others.
    this.#queue = new FairQueue(
      this.#options.queueLimit,
      Math.max(1, Math.ceil(this.#options.queueLimit / 2)),
    )
  }

  /** Starts the workers and resolves once all of them are ready to take jobs. */
  async start(): Promise<void> {
    // Sandbox cgroups left by the workers of a process that ended without cleaning up.
    sweepSandboxLeftovers()
    const ready: Promise<void>[] = []
    for (let i = 0; i < this.#options.workers; i++) ready.push(this.#spawn())
    this.#sampler = setInterval(() => this.#sample(), this.#options.sampleMs)
    this.#sampler.unref()
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`worker processes did not start within ${this.#options.startTimeoutMs} ms`)),
        this.#options.startTimeoutMs,
      )
    })
    try {
      await Promise.race([Promise.all(ready), timeout])
    } finally {
      clearTimeout(timer)
    }
    if (this.stats().ready < this.#options.workers) throw new Error('worker processes exited while starting')
  }

  /**
   * Queues a job and answers its outcome; guest failures of every kind are outcomes, not rejections.
   * Throws `CordonError` synchronously, before anything is queued: QUEUE_FULL when the bounded queue
   * is full, SHUTTING_DOWN after `stop`. Aborting `signal` cancels the job (status `killed`). The job's
   * binding calls go to `host` once checked here (`handleCall`); without a host each is refused.
   */
  run(job: RunJob, tenant: string, signal?: AbortSignal, host?: BindingHost): Promise<RunOutcome> {
    if (this.#stopping) throw new CordonError(ErrorCode.SHUTTING_DOWN, 'the service is shutting down')
    if (signal?.aborted === true) {
      return Promise.resolve(
        outcomeOf('killed', { code: GuestErrorCode.CANCELLED, message: 'cancelled before it started' }),
      )
    }
    let task: Task | undefined
    const outcome = new Promise<RunOutcome>((resolve, reject) => {
      task = {
        id: this.#nextId++,
        job,
        tenant,
        resolve,
        reject,
        signal,
        onAbort: undefined,
        queueTimer: null,
        requeues: 0,
        dropFor: null,
        answered: false,
        host,
        calls: 0,
        controller: new AbortController(),
      }
    })
    if (task === undefined || !this.#queue.push(tenant, task)) {
      throw new CordonError(ErrorCode.QUEUE_FULL, 'too many executions are waiting; retry later')
    }
    const queued = task
    this.#armQueueTimer(queued)
    if (signal !== undefined) {
      queued.onAbort = () => this.#cancel(queued)
      signal.addEventListener('abort', queued.onAbort, { once: true })
    }
    this.#pump()
    return outcome
  }

  /** Refuses the task with QUEUE_TIMEOUT if it is still queued when the queue timeout ends. */
  #armQueueTimer(task: Task): void {
    if (task.queueTimer !== null) clearTimeout(task.queueTimer)
    task.queueTimer = setTimeout(() => {
      task.queueTimer = null
      if (this.#queue.remove(task.tenant, task)) {
        detach(task)
        task.reject(new CordonError(ErrorCode.QUEUE_TIMEOUT, 'no worker became free in time; retry later'))
      } else this.#dropAhead(task, 'timeout')
    }, this.#options.queueTimeoutMs)
  }

  /**
   * Asks the worker holding `task` ahead to drop it. The answer comes with the worker's reply: the
   * job dropped unstarted (answered for `reason`), or announced as started (then it is running).
   * False when no worker holds it ahead.
   */
  #dropAhead(task: Task, reason: 'cancel' | 'timeout'): boolean {
    for (const worker of this.#workers) {
      if (worker.next !== task) continue
      task.dropFor = reason
      worker.process.send({ type: 'cancel', id: task.id } satisfies ToWorker)
      return true
    }
    return false
  }

  stats(): SupervisorStats {
    const workers = [...this.#workers]
    return {
      workers: workers.length,
      ready: workers.filter((w) => w.ready).length,
      busy: workers.filter((w) => w.task !== null).length,
      queued: this.#queue.size,
      restarts: this.#restarts,
    }
  }

  /** Refuses new jobs, fails queued ones, kills every worker and waits for them to exit. */
  async stop(): Promise<void> {
    this.#stopping = true
    if (this.#sampler !== null) clearInterval(this.#sampler)
    for (const task of this.#queue.drain()) {
      detach(task)
      task.reject(new CordonError(ErrorCode.SHUTTING_DOWN, 'the service is shutting down'))
    }
    const exits = [...this.#workers].map(
      (worker) =>
        new Promise<void>((resolve) => {
          if (worker.process.exitCode !== null || worker.process.signalCode !== null) return resolve()
          const killed = { code: GuestErrorCode.CANCELLED, message: 'the service shut down' }
          // A worker gets a moment to end its pooled sandboxes itself, then is killed (with its job).
          const late = setTimeout(() => this.#kill(worker, 'killed', killed), STOP_GRACE_MS)
          worker.process.once('exit', () => {
            clearTimeout(late)
            resolve()
          })
          if (worker.task !== null || worker.nested.size > 0 || !worker.process.connected)
            this.#kill(worker, 'killed', killed)
          else
            worker.process.send({ type: 'stop' } satisfies ToWorker, (error) => {
              if (error !== null) this.#kill(worker, 'killed', killed)
            })
        }),
    )
    await Promise.all(exits)
  }

  #spawn(): Promise<void> {
    const child = forkWorker(this.#settings)
    const worker: Worker = {
      process: child,
      nested: new Map(),
      probe: new ProcessProbe(child.pid),
      ready: false,
      task: null,
      next: null,
      deadline: null,
      rssLimit: 0,
      startedAt: Date.now(),
      taskStartedAt: 0,
      taskCpuStart: 0,
      taskCpuLast: 0,
      killedFor: null,
      retiring: false,
      draining: new Set(),
      drainingSince: 0,
    }
    this.#workers.add(worker)
    return new Promise<void>((resolve) => {
      child.on('message', (message: FromWorker) => {
        if (message.type === 'ready') {
          worker.ready = true
          resolve()
          this.#pump()
        } else if (message.type === 'done') {
          if (message.retiring === true) retiring(worker)
          this.#finish(worker, message.id, message.outcome, message.starting, message.dropped === true)
        } else if (message.type === 'started') this.#startedAhead(worker, message.id)
        else if (message.type === 'call')
          handleCall(worker, message.id, message.seq, message.call, this.#nesting)
        else if (message.type === 'output') handleOutput(worker, message.id, message.stdout, message.stderr)
        else if (message.type === 'nested-done') {
          if (message.retiring === true) retiring(worker)
          endNested(worker, message.id, message.outcome, true)
          if (worker.draining.delete(message.id) && worker.draining.size === 0) this.#pump()
        }
      })
      child.on('exit', () => {
        resolve()
        this.#onExit(worker)
      })
      child.on('error', () => this.#kill(worker, 'killed', crashed()))
    })
  }

  #pump(): void {
    for (const worker of this.#workers) {
      // A worker still holding a job ahead is not free, even between jobs: that job comes first. Nor
      // is one whose aborted nested jobs have not ended yet.
      if (!worker.ready || worker.task !== null || worker.next !== null || worker.draining.size > 0) continue
      const task = this.#queue.shift()
      if (task === undefined) return
      this.#send(worker, task)
      this.#start(worker, task)
    }
    // Every worker is busy: each may hold one more job of the tenant it is serving, but only while
    // no other tenant is waiting, so sending ahead never changes whose turn comes next.
    for (const worker of this.#workers) {
      if (this.#queue.size === 0) return
      if (!worker.ready || worker.task === null || worker.next !== null || worker.killedFor !== null) continue
      const tenant = worker.task.tenant
      if (this.#queue.sizeOf(tenant) !== this.#queue.size) continue
      const task = this.#queue.shiftKey(tenant)
      if (task === undefined) continue
      this.#send(worker, task, true)
      worker.next = task
    }
  }

  #send(worker: Worker, task: Task, ahead = false): void {
    const message: ToWorker = { type: 'run', id: task.id, job: task.job, ahead }
    worker.process.send(message)
  }

  /** From here the task is the worker's running job: its deadline and baselines start now. */
  #start(worker: Worker, task: Task): void {
    const { limits } = task.job
    if (task.queueTimer !== null) clearTimeout(task.queueTimer)
    task.queueTimer = null
    worker.task = task
    worker.taskStartedAt = performance.now()
    worker.taskCpuStart = worker.probe.cpuMillis() ?? 0
    worker.taskCpuLast = worker.taskCpuStart
    worker.rssLimit = (worker.probe.residentBytes() ?? 0) + this.#options.rssBudget(limits)
    worker.deadline = setTimeout(() => {
      this.#kill(worker, 'timeout', {
        code: GuestErrorCode.WALL_TIME_LIMIT,
        message: `wall time limit of ${limits.wallMs} ms exceeded; the worker was killed`,
      })
    }, limits.wallMs + this.#options.graceMs)
  }

  #finish(worker: Worker, id: number, outcome: RunOutcome, starting: number | null, dropped: boolean): void {
    if (worker.killedFor !== null) return
    const next = worker.next
    if (next !== null && next.id === id) {
      // A job held ahead that the worker dropped unstarted, as asked.
      worker.next = null
      this.#answerDropped(next)
      this.#pump()
      return
    }
    const task = worker.task
    if (task === null || task.id !== id) return
    this.#release(worker)
    // Announced as next, then dropped on a cancel that arrived before it started.
    if (dropped) this.#answerDropped(task)
    else settle(task, outcome)
    if (next !== null && next.id === starting) this.#promote(worker, next)
    this.#pump()
  }

  /** The worker started the job it held ahead without announcing it in a `done` (it was idle). */
  #startedAhead(worker: Worker, id: number): void {
    if (worker.killedFor !== null || worker.next?.id !== id || worker.task !== null) return
    this.#promote(worker, worker.next)
  }

  #promote(worker: Worker, task: Task): void {
    worker.next = null
    this.#start(worker, task)
    // Asked to drop it: the worker may still skip it (answered as dropped), or have started it, when
    // a cancelled job is stopped like any running one, and one past its queue deadline runs.
    if (task.dropFor === 'cancel') this.#cancelRunning(task)
  }

  /** Answers a job its worker dropped unstarted, for the reason it was dropped. */
  #answerDropped(task: Task): void {
    if (task.dropFor === 'timeout') {
      detach(task)
      task.reject(new CordonError(ErrorCode.QUEUE_TIMEOUT, 'no worker became free in time; retry later'))
      return
    }
    settle(
      task,
      outcomeOf('killed', { code: GuestErrorCode.CANCELLED, message: 'cancelled before it started' }),
    )
  }

  #release(worker: Worker): void {
    if (worker.deadline !== null) clearTimeout(worker.deadline)
    worker.deadline = null
    worker.task?.controller.abort()
    worker.task = null
    // Tools still running for the job that ended answer nobody: their host work stops now, and the
    // worker ends them at their own wall limit.
    for (const id of [...worker.nested.keys()]) {
      endNested(
        worker,
        id,
        outcomeOf('killed', { code: GuestErrorCode.CANCELLED, message: 'the caller ended' }),
      )
    }
  }

  /** The outside line: RSS and CPU time of busy workers, read from /proc. */
  #sample(): void {
    for (const worker of this.#workers) {
      // Aborted nested jobs that never say they ended, or that grow past the memory the ended job
      // had, hold their worker: it is replaced (no job is left to answer).
      if (worker.task === null && worker.killedFor === null && worker.draining.size > 0) {
        const rss = worker.probe.residentBytes()
        if (
          performance.now() - worker.drainingSince > DRAIN_LIMIT_MS ||
          (rss !== null && rss > worker.rssLimit)
        ) {
          this.#kill(worker, 'killed', crashed())
        }
        continue
      }
      if (worker.task === null || worker.killedFor !== null) continue
      const { limits } = worker.task.job
      const rss = worker.probe.residentBytes()
      if (rss !== null && rss > worker.rssLimit) {
        this.#kill(worker, 'memory_limit', {
          code: GuestErrorCode.MEMORY_LIMIT,
          message: `memory limit of ${limits.memoryMb} MiB exceeded; the worker was killed`,
        })
        continue
      }
      // Process CPU includes V8's helper threads, hence the grace on top of the guest's budget.
      const cpu = worker.probe.cpuMillis()
      if (cpu !== null) worker.taskCpuLast = cpu
      if (cpu !== null && cpu - worker.taskCpuStart > limits.cpuMs + this.#options.graceMs) {
        this.#kill(worker, 'timeout', {
          code: GuestErrorCode.CPU_TIME_LIMIT,
          message: `CPU time limit of ${limits.cpuMs} ms exceeded; the worker was killed`,
        })
      }
    }
  }

  #cancel(task: Task): void {
    if (this.#queue.remove(task.tenant, task)) {
      settle(
        task,
        outcomeOf('killed', { code: GuestErrorCode.CANCELLED, message: 'cancelled before it started' }),
      )
      return
    }
    if (this.#dropAhead(task, 'cancel')) return
    // Running, or announced and about to start: the worker skips it if it has not started yet.
    for (const worker of this.#workers) {
      if (worker.task !== task) continue
      task.dropFor = 'cancel'
      worker.process.send({ type: 'cancel', id: task.id } satisfies ToWorker)
    }
    this.#cancelRunning(task)
  }

  /**
   * A running job gets a moment to finish by itself: most do within milliseconds, and killing costs a
   * worker restart (which a client could otherwise force at will by disconnecting).
   */
  #cancelRunning(task: Task): void {
    const timer = setTimeout(() => {
      for (const worker of this.#workers) {
        if (worker.task === task)
          this.#kill(worker, 'killed', { code: GuestErrorCode.CANCELLED, message: 'cancelled' })
      }
    }, CANCEL_GRACE_MS)
    timer.unref()
  }

  /**
   * A job held ahead by a worker that died before saying it started it. It goes back to the front of
   * its tenant's line (a job asked to be dropped is answered instead). A `started` message can be lost
   * with the worker, so one that keeps coming back may be what kills them: after three it is
   * answered as crashed.
   */
  #requeue(task: Task, killedFor: Worker['killedFor']): void {
    if (task.answered) return
    if (task.dropFor !== null) {
      this.#answerDropped(task)
      return
    }
    if (this.#stopping) {
      settle(task, outcomeOf('killed', killedFor?.error ?? crashed()))
      return
    }
    if (task.requeues >= MAX_REQUEUES || !this.#queue.unshift(task.tenant, task)) {
      settle(task, outcomeOf('killed', crashed()))
      return
    }
    task.requeues++
    this.#armQueueTimer(task)
  }

  /** Kills the worker's whole process group; its exit answers the running job with `status`. */
  #kill(worker: Worker, status: RunOutcome['status'], error: GuestError): void {
    if (worker.killedFor === null) worker.killedFor = { status, error }
    const pid = worker.process.pid
    try {
      if (pid !== undefined) process.kill(-pid, 'SIGKILL')
    } catch {
      worker.process.kill('SIGKILL')
    }
  }

  #onExit(worker: Worker): void {
    this.#workers.delete(worker)
    // Sandboxes of a killed worker die with it (--die-with-parent); their cgroups are removed here.
    sweepSandboxLeftovers()
    worker.probe.close()
    for (const id of [...worker.nested.keys()]) {
      endNested(worker, id, outcomeOf('killed', worker.killedFor?.error ?? crashed()))
    }
    const task = worker.task
    this.#release(worker)
    const next = worker.next
    worker.next = null
    if (next !== null) this.#requeue(next, worker.killedFor)
    if (task !== null) {
      const reason = worker.killedFor ?? { status: 'killed' as const, error: crashed() }
      settle(task, {
        ...outcomeOf(reason.status, reason.error),
        // What the guest wrote before the kill, as far as its worker streamed it.
        stdout: task.streamed?.stdout ?? '',
        stderr: task.streamed?.stderr ?? '',
        usage: {
          cpuMs: worker.taskCpuLast - worker.taskCpuStart,
          wallMs: Math.round(performance.now() - worker.taskStartedAt),
          memoryBytes: 0,
        },
      })
    }
    if (this.#stopping) return
    this.#restarts++
    // A worker that dies by itself right after starting is restarted after a pause, never in a tight loop.
    // A worker that retired itself (it said so in its last answer) did not crash, however young.
    const crashedEarly = worker.killedFor === null && !worker.retiring && Date.now() - worker.startedAt < 1000
    // A retirement says nothing about whether workers keep crashing: it leaves the count alone.
    if (!worker.retiring) this.#earlyCrashes = crashedEarly ? this.#earlyCrashes + 1 : 0
    const respawn = () => {
      if (!this.#stopping) void this.#spawn()
    }
    // Back off exponentially (0.5 s .. 30 s) while workers keep dying right after starting.
    if (crashedEarly) setTimeout(respawn, Math.min(30_000, 250 * 2 ** this.#earlyCrashes)).unref()
    else respawn()
    this.#pump()
  }
}

/** The worker said it exits next (its own decision, no crash): nothing more may be sent to it. */
function retiring(worker: Worker): void {
  worker.ready = false
  worker.retiring = true
}

function crashed(): GuestError {
  return { code: GuestErrorCode.WORKER_CRASHED, message: 'the worker process running this job died' }
}

/** Marks the task answered and stops listening for its abort signal and queue deadline. */
function detach(task: Task): void {
  task.answered = true
  task.controller.abort()
  if (task.queueTimer !== null) clearTimeout(task.queueTimer)
  if (task.signal !== undefined && task.onAbort !== undefined)
    task.signal.removeEventListener('abort', task.onAbort)
}

function settle(task: Task, outcome: RunOutcome): void {
  detach(task)
  task.resolve(outcome)
}
