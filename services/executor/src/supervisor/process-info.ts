import { readFileSync } from 'node:fs'

const PAGE_BYTES = 4096

/** Resident set size of a process in bytes, or null when it is gone. Linux /proc only. */
export function residentBytes(pid: number): number | null {
  try {
    const fields = readFileSync(`/proc/${pid}/statm`, 'latin1').split(' ')
    return Number(fields[1]) * PAGE_BYTES
  } catch {
    return null
  }
}

/**
 * V8's `--stack-size` (KiB) for workers: large enough that QuickJS's own stack check fires before
 * V8's on deep recursion, but well inside the process's real stack rlimit.
 */
export function workerStackSizeKb(): number {
  const wanted = 4000
  try {
    const line = readFileSync('/proc/self/limits', 'latin1')
      .split('\n')
      .find((l) => l.startsWith('Max stack size'))
    const soft = line?.split(/\s{2,}/)[1]
    if (soft === undefined || soft === 'unlimited') return wanted
    return Math.max(900, Math.min(wanted, Math.floor(Number(soft) / 1024 / 2)))
  } catch {
    return wanted
  }
}
