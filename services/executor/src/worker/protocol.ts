import type { RunOutcome } from '@cordon/contracts'
import type { RunJob } from '../engine.ts'

/**
 * Supervisor -> worker. Jobs run one at a time in the order sent; `cancel` drops a job that has not
 * started (the worker still answers it, as cancelled).
 */
export type ToWorker = { type: 'run'; id: number; job: RunJob } | { type: 'cancel'; id: number }

/** Worker -> supervisor. */
export type FromWorker = { type: 'ready' } | { type: 'done'; id: number; outcome: RunOutcome }
