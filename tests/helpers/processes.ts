import { readdirSync, readFileSync } from 'node:fs'

/**
 * Pids of this process's children that run a Cordon worker (zombies included: a worker that died
 * and was not reaped yet is still left over). Read from /proc, not from the supervisor's own count.
 */
export function workerChildren(parent = process.pid): number[] {
  const children: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
      if (ppid !== parent) continue
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8')
      if (cmdline.includes('worker-main.ts') || cmdline === '') children.push(Number(entry))
    } catch {
      // The process ended while we looked.
    }
  }
  return children
}
