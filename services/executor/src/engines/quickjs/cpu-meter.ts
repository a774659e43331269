/** Measures the CPU time of one QuickJS run. */
export interface CpuMeter {
  /**
   * Starts measuring one run. The function answers the microseconds it has used so far, given how
   * many times QuickJS has polled its interrupt handler (what a runtime without a CPU clock counts).
   */
  start(): (interruptChecks: number) => number
}

/** Node: the thread's own CPU clock (user + system time). */
export const THREAD_CPU_METER: CpuMeter = {
  start() {
    const start = process.threadCpuUsage()
    return () => {
      const used = process.threadCpuUsage(start)
      return used.user + used.system
    }
  },
}

/**
 * Work counted between QuickJS's interrupt polls, for runtimes with no CPU clock. QuickJS polls about
 * once per 10 000 backward jumps and calls; measured on Node (`npm run bench:quickjs-checks`), one poll
 * stood for 0.6 ms of work in a counting loop, 1.1-1.2 ms in loops that allocate and 3 ms in string
 * building and JSON, so a budget counted at 1 ms per poll lets a guest use between 0.6 and 3 times it.
 */
export const MICROS_PER_INTERRUPT_CHECK = 1000

/**
 * Workers: there is no thread CPU clock, and the clock stands still while code runs (it moves only
 * on I/O), so CPU time is estimated from the interrupt polls QuickJS made. The platform's own CPU
 * limit for the request stands behind it.
 */
export function interruptCountMeter(microsPerCheck = MICROS_PER_INTERRUPT_CHECK): CpuMeter {
  return { start: () => (checks) => checks * microsPerCheck }
}
