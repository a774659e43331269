import { readdirSync, readFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'

/** USER_HZ: the unit of /proc CPU times; 100 on every mainstream Linux build. */
const CLOCK_TICKS_PER_SECOND = 100

interface ProcStat {
  ppid: number
  /** utime + stime, in ticks. */
  own: number
  /** cutime + cstime: children already exited and reaped, in ticks. */
  reaped: number
}

/**
 * CPU seconds used so far by `pid` and all its descendants (live ones, plus exited children its
 * parent has reaped), read from /proc. Null where /proc is unavailable (not Linux) or `pid` is gone.
 * The gateway's worker processes are its children, so this covers the whole execution path.
 */
export function treeCpuSeconds(pid: number): number | null {
  const root = readStat(pid)
  if (root === null) return null
  const all = new Map<number, ProcStat>()
  for (const entry of safeReaddir('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const stat = readStat(Number(entry))
    if (stat !== null) all.set(Number(entry), stat)
  }
  let ticks = root.own + root.reaped
  const pending = [pid]
  for (let parent = pending.pop(); parent !== undefined; parent = pending.pop()) {
    for (const [child, stat] of all) {
      if (stat.ppid !== parent) continue
      ticks += stat.own + stat.reaped
      pending.push(child)
    }
  }
  return ticks / CLOCK_TICKS_PER_SECOND
}

function readStat(pid: number): ProcStat | null {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return null
  }
  // The command name (field 2) may contain spaces and parentheses: split after its last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
  const field = (i: number) => Number(fields[i] ?? Number.NaN)
  const stat = { ppid: field(1), own: field(11) + field(12), reaped: field(13) + field(14) }
  return Number.isFinite(stat.ppid + stat.own + stat.reaped) ? stat : null
}

function safeReaddir(path: string): string[] {
  try {
    return readdirSync(path)
  } catch {
    return []
  }
}

/** Percentage of all CPU time spent busy over `ms` (0 where the platform reports no times). */
export async function sampleBusyCpuPercent(ms = 1000): Promise<number> {
  const totals = () =>
    cpus().reduce(
      (sum, { times }) => {
        const all = times.user + times.nice + times.sys + times.irq + times.idle
        return { idle: sum.idle + times.idle, all: sum.all + all }
      },
      { idle: 0, all: 0 },
    )
  const before = totals()
  await sleep(ms)
  const after = totals()
  const all = after.all - before.all
  return all > 0 ? (100 * (all - (after.idle - before.idle))) / all : 0
}
