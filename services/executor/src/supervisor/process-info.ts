import { closeSync, openSync, readFileSync, readSync } from 'node:fs'

const PAGE_BYTES = 4096
const CLOCK_TICKS_PER_SECOND = 100

/**
 * Reads one process's `/proc/<pid>/stat` and `statm` through descriptors opened once: a sample is
 * one `pread` per file instead of open, fstat, read and close (the supervisor samples at every job
 * start and every 20 ms). A descriptor stays bound to the process it was opened for, so a recycled
 * pid can never be read by mistake; reads fail once the process is gone. Linux /proc only.
 */
export class ProcessProbe {
  readonly #stat: number | null
  readonly #statm: number | null
  readonly #buffer = Buffer.alloc(1024)

  constructor(pid: number | undefined) {
    this.#stat = pid === undefined ? null : openOrNull(`/proc/${pid}/stat`)
    this.#statm = pid === undefined ? null : openOrNull(`/proc/${pid}/statm`)
  }

  /** Resident set size in bytes, or null when the process is gone. */
  residentBytes(): number | null {
    const text = this.#read(this.#statm)
    if (text === null) return null
    const pages = Number(text.split(' ')[1])
    return Number.isFinite(pages) ? pages * PAGE_BYTES : null
  }

  /** CPU time (user + system, all threads) used so far in ms, or null when the process is gone. */
  cpuMillis(): number | null {
    const stat = this.#read(this.#stat)
    if (stat === null) return null
    // Fields after the parenthesised command name (which may itself contain spaces or parentheses).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12])
    return Number.isFinite(ticks) ? (ticks * 1000) / CLOCK_TICKS_PER_SECOND : null
  }

  close(): void {
    for (const fd of [this.#stat, this.#statm]) {
      if (fd !== null) closeSync(fd)
    }
  }

  #read(fd: number | null): string | null {
    if (fd === null) return null
    try {
      const length = readSync(fd, this.#buffer, 0, this.#buffer.length, 0)
      return this.#buffer.toString('latin1', 0, length)
    } catch {
      return null
    }
  }
}

function openOrNull(path: string): number | null {
  try {
    return openSync(path, 'r')
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
