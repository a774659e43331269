import type { RunJob } from '../engine.ts'
import { HEAP_OVERHEAD_BYTES } from '../engines/quickjs/module-pool.ts'

const MiB = 1024 * 1024

/** How a `Supervisor` runs its workers. Every field has a bounded default; none means "unlimited". */
export interface SupervisorOptions {
  /** Worker processes kept running (default 2, one per core of the reference machine). */
  workers?: number
  /** Jobs that may wait for a worker; past this, `run` refuses with QUEUE_FULL (default 64). */
  queueLimit?: number
  /** Time a job may overrun its wall limit before the supervisor kills its worker (default 250 ms). */
  graceMs?: number
  /** How often busy workers' RSS is sampled (default 20 ms). */
  sampleMs?: number
  /**
   * Bytes of RSS a job may add to its worker beyond what the worker held when the job started
   * (default: memoryMb + 16 MiB of wasm overhead + 8 × outputBytes + 128 MiB for the host side).
   */
  rssBudget?: (limits: RunJob['limits']) => number
  /** How long a job may wait in the queue before it is refused with QUEUE_TIMEOUT (default 30 s). */
  queueTimeoutMs?: number
  /** How long `start` waits for every worker to report ready (default 30 s). */
  startTimeoutMs?: number
}

const defaultRssBudget = (limits: RunJob['limits']) =>
  (limits.memoryMb + 128) * MiB + HEAP_OVERHEAD_BYTES + limits.outputBytes * 8

/** The options with their defaults filled in; throws a `RangeError` unless `workers` is 1 to 64. */
export function resolveOptions(options: SupervisorOptions): Required<SupervisorOptions> {
  const resolved = {
    workers: options.workers ?? 2,
    queueLimit: options.queueLimit ?? 64,
    graceMs: options.graceMs ?? 250,
    sampleMs: options.sampleMs ?? 20,
    rssBudget: options.rssBudget ?? defaultRssBudget,
    queueTimeoutMs: options.queueTimeoutMs ?? 30_000,
    startTimeoutMs: options.startTimeoutMs ?? 30_000,
  }
  if (!Number.isInteger(resolved.workers) || resolved.workers < 1 || resolved.workers > 64) {
    throw new RangeError(`workers must be a whole number from 1 to 64, got ${options.workers}`)
  }
  return resolved
}
