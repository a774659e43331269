import type { EngineName } from '@cordon/contracts'
import type { Limits } from '@cordon/policy'

/** The smallest heap isolated-vm accepts, in MiB. */
export const MIN_ISOLATE_MEMORY_MB = 8

/**
 * Why `engine` cannot run under these limits as stated, or null when it can: isolated-vm's smallest
 * heap is 8 MiB, so the isolate engine refuses a smaller `memoryMb` rather than quietly granting more.
 */
export function engineLimitProblem(engine: EngineName, limits: Pick<Limits, 'memoryMb'>): string | null {
  if (engine === 'isolate' && limits.memoryMb < MIN_ISOLATE_MEMORY_MB) {
    return `the isolate engine needs memoryMb of at least ${MIN_ISOLATE_MEMORY_MB} (the profile gives ${limits.memoryMb})`
  }
  return null
}
