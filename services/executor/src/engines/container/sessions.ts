import { GuestErrorCode, type RunOutcome } from '@cordon/contracts'
import type { BindingChannel, RunJob } from '../../engine.ts'
import { outcomeOf } from '../../outcome.ts'
import { execInSandbox, shapeOf, toOutcome } from './container-engine.ts'
import type { FileReply } from './init-messages.ts'
import { type Sandbox, SandboxHost } from './sandbox.ts'

/**
 * Sandboxes that outlive one execution: a session keeps one sandbox, and so its `/workspace` and
 * `/tmp`, across executions and file operations. They are controlled from the service process, not
 * from a worker: the guest runs in the sandbox's own process tree under its cgroup either way, and a
 * session must not end because a worker is replaced (workers retire after a quota of runs, and die
 * with a crash of any job they run).
 */
export class SandboxSessions {
  #host: SandboxHost | { problem: string } | null = null
  readonly #open = new Set<SessionSandbox>()

  /** Starts a session's sandbox for jobs shaped like `job` (its workspace and limits). */
  async open(job: Pick<RunJob, 'workspace' | 'limits'>): Promise<SessionSandbox> {
    this.#host ??= SandboxHost.open(String(process.pid))
    const host = this.#host
    if ('problem' in host) throw new Error(`the container engine is not available here: ${host.problem}`)
    const sandbox = await host.start(shapeOf(job))
    const session = new SessionSandbox(sandbox, () => this.#open.delete(session))
    this.#open.add(session)
    return session
  }

  /** Ends every session's sandbox (the service's shutdown). */
  async close(): Promise<void> {
    await Promise.all([...this.#open].map((session) => session.close()))
    if (this.#host !== null && !('problem' in this.#host)) this.#host.close()
    this.#host = null
  }
}

/** Operations waiting for a session's sandbox at most (beyond, the caller is told it is busy). */
export const MAX_WAITING_OPERATIONS = 8

/** One session's sandbox: executions and file operations, one at a time, in the order asked. */
export class SessionSandbox {
  readonly #sandbox: Sandbox
  readonly #forget: () => void
  #tail: Promise<unknown> = Promise.resolve()
  #waiting = 0

  constructor(sandbox: Sandbox, forget: () => void) {
    this.#sandbox = sandbox
    this.#forget = forget
  }

  /** Whether the sandbox still runs (an execution ended at a limit ends it). */
  get alive(): boolean {
    return this.#sandbox.alive
  }

  /** Whether another operation may queue now. */
  get busy(): boolean {
    return this.#waiting >= MAX_WAITING_OPERATIONS
  }

  /**
   * Runs a job in the session's sandbox. A command that ends at a limit (CPU, wall time, memory,
   * cancellation) ends the whole sandbox, and with it the session; any other outcome keeps it.
   */
  run(job: RunJob, channel: BindingChannel | undefined, signal?: AbortSignal): Promise<RunOutcome> {
    return this.#serial(async () => {
      // A client that went away while its execution waited: nothing ran, and the sandbox stays.
      if (signal?.aborted === true) {
        return outcomeOf('killed', { code: GuestErrorCode.CANCELLED, message: 'cancelled before it started' })
      }
      this.#sandbox.limit(job.limits.memoryMb * 1024 * 1024, job.limits.processes)
      const executed = await execInSandbox(this.#sandbox, job, channel, signal)
      if (executed.end.kind !== 'exited') await this.close()
      return toOutcome(executed, job.limits)
    })
  }

  read(path: string, max: number): Promise<FileReply> {
    return this.#serial(() => this.#sandbox.fileOperation({ t: 'read', path, max }))
  }

  write(path: string, data: Buffer): Promise<FileReply> {
    return this.#serial(() => this.#sandbox.fileOperation({ t: 'write', path, data }))
  }

  list(path: string, max: number): Promise<FileReply> {
    return this.#serial(() => this.#sandbox.fileOperation({ t: 'list', path, max }))
  }

  remove(path: string): Promise<FileReply> {
    return this.#serial(() => this.#sandbox.fileOperation({ t: 'remove', path }))
  }

  async close(): Promise<void> {
    this.#forget()
    await this.#sandbox.destroy()
  }

  #serial<T>(operation: () => Promise<T>): Promise<T> {
    this.#waiting += 1
    const result = this.#tail.then(operation)
    this.#tail = result.then(
      () => {
        this.#waiting -= 1
      },
      () => {
        this.#waiting -= 1
      },
    )
    return result
  }
}
