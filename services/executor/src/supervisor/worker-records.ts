import type { ChildProcess } from 'node:child_process'
import type { GuestError, RunOutcome } from '@cordon/contracts'
import type { BindingHost } from '../bridge/bridge.ts'
import type { RunJob } from '../engine.ts'
import type { ProcessProbe } from './process-info.ts'

/*
 * What the supervisor keeps per job and per worker process. The records are the supervisor's own: a
 * worker's message counts only for a job these records say that worker holds.
 */

/** A job from `Supervisor.run`, from the queue until it is answered. */
export interface Task {
  id: number
  job: RunJob
  tenant: string
  resolve: (outcome: RunOutcome) => void
  reject: (error: Error) => void
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
  /** Refuses the task if it is still queued when this fires. */
  queueTimer: NodeJS.Timeout | null
  /** Times put back in the queue because the worker holding it ahead died before it started. */
  requeues: number
  /** Why the supervisor asked the worker holding it ahead to drop it, if it did. */
  dropFor: 'cancel' | 'timeout' | null
  /** Answered (resolved or rejected); a worker may still be running or dropping it. */
  answered: boolean
  /** Where the job's binding calls go; none means every call is refused. */
  host: BindingHost | undefined
  /** Binding calls the job made, counted here whatever the worker says. */
  calls: number
  /** What the worker streamed of the job's output (within its output limit): a killed job's record keeps it. */
  streamed?: { stdout: string; stderr: string }
  /** Aborts the host work of the job's calls when the job ends. */
  controller: AbortController
}

/** A job a running job's tool call started in the same worker. */
export interface NestedTask {
  id: number
  job: RunJob
  host: BindingHost
  calls: number
  controller: AbortController
  /** The RSS budget it added to its worker's limit while it runs. */
  rssBudget: number
  resolve: (outcome: RunOutcome) => void
}

/** One worker process and the jobs it holds. */
export interface Worker {
  process: ChildProcess
  /** Jobs running beside `task` for its tool calls, by id. */
  nested: Map<number, NestedTask>
  /**
   * Nested jobs told to stop (their caller ended) that have not said they did: the worker gets no new
   * job until they have, so nothing they still do (CPU, memory, a retirement) lands on another job.
   */
  draining: Set<number>
  /** When `draining` last became non-empty (performance.now()), for its deadline. */
  drainingSince: number
  probe: ProcessProbe
  ready: boolean
  task: Task | null
  /**
   * A job of the same tenant, sent ahead so the worker starts it the moment `task` ends instead of
   * waiting for the round trip. It becomes `task` when the worker says it started it: in the `done`
   * of the job before (`starting`), or in a `started` message.
   */
  next: Task | null
  deadline: NodeJS.Timeout | null
  rssLimit: number
  startedAt: number
  taskStartedAt: number
  /** The worker's CPU time (ms) when its current job started, and when last sampled. */
  taskCpuStart: number
  taskCpuLast: number
  /** Why the supervisor killed this worker, so its exit is answered with the right status. */
  killedFor: { status: RunOutcome['status']; error: GuestError } | null
  /** It said, in its last answer, that it ends itself: its exit is no crash. */
  retiring: boolean
}
