import type { RunOutcome } from '@cordon/contracts'
import type { BindingCall, BindingReply } from '../bridge/bridge.ts'
import type { RunJob } from '../engine.ts'

/**
 * Supervisor -> worker. Jobs run one at a time in the order sent. `ahead` marks a job sent while the
 * worker was busy. `cancel` drops a job that has not started: the worker answers it at once with a
 * `done` (as cancelled); a job already started is not touched. A `nested` job (a tool that a running
 * job called) starts at once, beside the job that waits for it, and is answered with `nested-done`;
 * `abort` stops a nested job whose caller ended; one that arrives after its caller (`parent`) ended is
 * answered as cancelled without running. `reply` answers a binding call. `stop` asks the worker to
 * end what it started ahead (pooled sandboxes) and exit; the supervisor kills it if it takes too long.
 */
export type ToWorker =
  | { type: 'run'; id: number; job: RunJob; ahead: boolean }
  | { type: 'nested'; id: number; job: RunJob; parent: number }
  | { type: 'abort'; id: number }
  | { type: 'cancel'; id: number }
  | { type: 'reply'; id: number; seq: number; reply: BindingReply }
  | { type: 'stop' }

/**
 * Worker -> supervisor. `done` says which job the worker starts next (`starting`, or null), decided
 * before it is sent, so the supervisor learns a job ahead started in the same message. A job sent
 * ahead that starts unannounced (it arrived after the worker went idle) gets a `started`. A job
 * dropped on a `cancel` (pending, or announced and not started yet) is answered with `dropped`.
 * A `retiring` worker (the flag on `done` or `nested-done`) takes no further job and exits: jobs it
 * holds are the supervisor's to requeue.
 * `call` carries a guest binding call of the running (or nested) job `id`; the supervisor answers it
 * with a `reply` of the same `seq`, and drops replies for a job that has ended. `output` carries the
 * running job's stdout and stderr as they are written (batched by time: what the guest wrote within
 * 20 ms, each stream's part together; its outcome still carries all of it).
 */
export type FromWorker =
  | { type: 'ready' }
  | {
      type: 'done'
      id: number
      outcome: RunOutcome
      starting: number | null
      dropped?: true
      /**
       * The worker ends itself after this answer: an engine left a thread it could not stop, or the
       * isolate engine served its quota of executions.
       */
      retiring?: true
    }
  | { type: 'nested-done'; id: number; outcome: RunOutcome; retiring?: true }
  | { type: 'started'; id: number }
  | { type: 'call'; id: number; seq: number; call: BindingCall }
  | { type: 'output'; id: number; stdout: string; stderr: string }
