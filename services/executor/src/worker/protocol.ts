import type { RunOutcome } from '@cordon/contracts'
import type { RunJob } from '../engine.ts'

/** Supervisor -> worker. */
export type ToWorker = { type: 'run'; id: number; job: RunJob }

/** Worker -> supervisor. */
export type FromWorker = { type: 'ready' } | { type: 'done'; id: number; outcome: RunOutcome }
