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
 * stood for 0.2-0.5 ms of work in plain loops and recursion, about 1.1 ms in loops that allocate, and
 * far more where built-ins run in C between polls (regular expressions 6.5 ms, JSON 57 ms). Counted at
 * 1 ms per poll, loops are stopped early and native work late: the platform's own CPU limit for the
 * request stands behind it (see docs/cloudflare.md).
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
