import type { RunOutcome } from '@cordon/contracts'
import type { RunJob } from '../engine.ts'

/**
 * Supervisor -> worker. Jobs run one at a time in the order sent. `ahead` marks a job sent while the
 * worker was busy. `cancel` drops a job that has not started: the worker answers it at once with a
 * `done` (as cancelled); a job already started is not touched.
 */
export type ToWorker =
  | { type: 'run'; id: number; job: RunJob; ahead: boolean }
  | { type: 'cancel'; id: number }

/**
 * Worker -> supervisor. `done` says which job the worker starts next (`starting`, or null), decided
 * before it is sent, so the supervisor learns a job ahead started in the same message. A job sent
 * ahead that starts unannounced (it arrived after the worker went idle) gets a `started`. A job
 * dropped on a `cancel` (pending, or announced and not started yet) is answered with `dropped`.
 */
export type FromWorker =
  | { type: 'ready' }
  | { type: 'done'; id: number; outcome: RunOutcome; starting: number | null; dropped?: true }
  | { type: 'started'; id: number }
