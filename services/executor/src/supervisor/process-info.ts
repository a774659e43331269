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

const CLOCK_TICKS_PER_SECOND = 100

/** CPU time (user + system, all threads) a process has used, in ms, or null when it is gone. */
export function cpuMillis(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1')
    // Fields after the parenthesised command name (which may itself contain spaces or parentheses).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12])
    return Number.isFinite(ticks) ? (ticks * 1000) / CLOCK_TICKS_PER_SECOND : null
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
