import { mkdirSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { dirname } from 'node:path'
import type { LoadResult } from './load.ts'
import { TARGET_KEYS, type TargetKey } from './targets.ts'

/** The goal from the issue, checked (and printed) but never turned into a failing exit code. */
export const GOAL = {
  text: "the execution path sustains at least 20% of the bare route's throughput with p99 under 15 ms at 8 concurrent clients",
  minThroughputPercent: 20,
  maxP99Ms: 15,
  connections: 8,
} as const

/** Above this, the machine was doing other work when the bench started. */
const BUSY_PERCENT = 10

export interface TargetReport extends LoadResult {
  label: string
  url: string
  /**
   * CPU time per response in the measured run: the server's whole process tree (the gateway or the
   * hop server with its workers) and the load generator. Less sensitive to other work on the machine than req/s; the
   * server figure is null where /proc is unavailable.
   */
  cpuMsPerRequest: { server: number | null; client: number }
}

/**
 * One round: every target measured back to back. `hop` is the process-hop floor (HTTP plus an IPC
 * round trip to a worker, no engine, policy or store); `execution` the goal's path (QuickJS, `1 + 1`);
 * `isolate` the same on V8 isolates; `quickjsFib` and `isolateFib` fib(27) on each engine.
 */
export type Round = Record<TargetKey, TargetReport>

export interface BenchReport {
  startedAt: string
  node: string
  cpus: number
  /** How busy the CPUs were (%) just before the servers started: other work skews both runs. */
  backgroundCpuPercent: number
  connections: number
  warmupSeconds: number
  /** Measured seconds per target and round. */
  durationSeconds: number
  /** Every round as measured. */
  rounds: Round[]
  /** Per target, the round with the median throughput (its latencies and CPU figures come along). */
  bare: TargetReport
  hop: TargetReport
  execution: TargetReport
  isolate: TargetReport
  quickjsFib: TargetReport
  isolateFib: TargetReport
  /** Isolate throughput as a percentage of QuickJS's, per workload (median of the per-round ratios). */
  isolateVsQuickjsPercent: { trivial: number; fib27: number }
  /** Execution throughput as a percentage of the bare route's in the same round: the median round. */
  throughputPercent: number
  /** Process-hop floor throughput as a percentage of the bare route's (median of the rounds). */
  hopThroughputPercent: number
  /** Execution throughput as a percentage of the process-hop floor's (median of the rounds). */
  executionVsHopPercent: number
  goals: {
    text: string
    throughput: { targetPercent: number; actualPercent: number; met: boolean }
    p99: { maxMs: number; actualMs: number; met: boolean }
    connections: { required: number; actual: number; met: boolean }
    met: boolean
  }
}

/** What the runs measured; `buildReport` derives the rest of the report from it. */
export type ReportInput = Pick<
  BenchReport,
  'backgroundCpuPercent' | 'connections' | 'warmupSeconds' | 'durationSeconds' | 'rounds'
> & { startedAt: Date }

/**
 * Derives the ratios and the goal verdicts (about the execution path only) from the measured rounds.
 * Every ratio is taken within a round and the median over rounds is reported; the p99 checked
 * against the goal is the median of the rounds' p99s.
 */
export function buildReport(input: ReportInput): BenchReport {
  const { rounds } = input
  if (rounds.length === 0) throw new Error('no rounds were measured')
  const percentOf = (part: TargetReport, whole: TargetReport) =>
    (100 * part.requestsPerSecond) / whole.requestsPerSecond
  const medianOf = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b)
    return sorted[Math.floor((sorted.length - 1) / 2)] ?? Number.NaN
  }
  const medianRound = (key: keyof Round) => {
    const sorted = rounds.map((round) => round[key]).sort((a, b) => a.requestsPerSecond - b.requestsPerSecond)
    return sorted[Math.floor((sorted.length - 1) / 2)] as TargetReport
  }
  const throughputPercent = medianOf(rounds.map((r) => percentOf(r.execution, r.bare)))
  const throughput = {
    targetPercent: GOAL.minThroughputPercent,
    actualPercent: throughputPercent,
    met: throughputPercent >= GOAL.minThroughputPercent,
  }
  const p99Ms = medianOf(rounds.map((r) => r.execution.latencyMs.p99))
  const p99 = { maxMs: GOAL.maxP99Ms, actualMs: p99Ms, met: p99Ms < GOAL.maxP99Ms }
  const connections = {
    required: GOAL.connections,
    actual: input.connections,
    met: input.connections >= GOAL.connections,
  }
  return {
    startedAt: input.startedAt.toISOString(),
    node: process.version,
    cpus: availableParallelism(),
    backgroundCpuPercent: input.backgroundCpuPercent,
    connections: input.connections,
    warmupSeconds: input.warmupSeconds,
    durationSeconds: input.durationSeconds,
    rounds,
    bare: medianRound('bare'),
    hop: medianRound('hop'),
    execution: medianRound('execution'),
    isolate: medianRound('isolate'),
    quickjsFib: medianRound('quickjsFib'),
    isolateFib: medianRound('isolateFib'),
    isolateVsQuickjsPercent: {
      trivial: medianOf(rounds.map((r) => percentOf(r.isolate, r.execution))),
      fib27: medianOf(rounds.map((r) => percentOf(r.isolateFib, r.quickjsFib))),
    },
    throughputPercent,
    hopThroughputPercent: medianOf(rounds.map((r) => percentOf(r.hop, r.bare))),
    executionVsHopPercent: medianOf(rounds.map((r) => percentOf(r.execution, r.hop))),
    goals: {
      text: GOAL.text,
      throughput,
      p99,
      connections,
      met: throughput.met && p99.met && connections.met,
    },
  }
}

/** The human-readable summary: one table with every target, the ratios, then the goal verdicts. */
export function formatReport(report: BenchReport): string {
  const header = [
    'target',
    'req/s',
    'p50 ms',
    'p99 ms',
    'responses',
    '% of bare',
    'server CPU ms/req',
    'req/s by round',
  ]
  const row = (t: TargetReport, key: keyof Round) => [
    t.label,
    t.requestsPerSecond.toFixed(1),
    t.latencyMs.p50.toFixed(2),
    t.latencyMs.p99.toFixed(2),
    String(t.requests),
    `${((100 * t.requestsPerSecond) / report.bare.requestsPerSecond).toFixed(1)} %`,
    t.cpuMsPerRequest.server === null ? 'n/a' : t.cpuMsPerRequest.server.toFixed(3),
    report.rounds.map((round) => round[key].requestsPerSecond.toFixed(0)).join(' / '),
  ]
  const { throughput, p99, connections } = report.goals
  const verdict = (met: boolean) => (met ? 'MET' : 'NOT MET')
  const busy = report.backgroundCpuPercent > BUSY_PERCENT
  return [
    `Cordon bench: ${report.connections} connections, ${report.rounds.length} rounds of ${report.durationSeconds} s per target ` +
      `after a ${report.warmupSeconds} s warm-up; node ${report.node}, ${report.cpus} CPUs, load generator on the same machine`,
    "Each row is the target's median round; ratios are the median of the per-round ratios.",
    `CPU busy before start: ${report.backgroundCpuPercent.toFixed(0)} %` +
      (busy ? ' (WARNING: the machine was busy; other work skews these numbers, re-run when idle)' : ''),
    '',
    ...table([header, ...TARGET_KEYS.map((key) => row(report[key], key))]),
    '',
    `execution / bare throughput: ${report.throughputPercent.toFixed(1)} % (by round: ${report.rounds
      .map((r) => `${((100 * r.execution.requestsPerSecond) / r.bare.requestsPerSecond).toFixed(1)} %`)
      .join(' / ')})`,
    `execution / process hop floor throughput: ${report.executionVsHopPercent.toFixed(1)} %`,
    `isolate / quickjs throughput: 1 + 1 ${report.isolateVsQuickjsPercent.trivial.toFixed(1)} %, ` +
      `fib(27) ${report.isolateVsQuickjsPercent.fib27.toFixed(1)} %`,
    '',
    `Goal: ${report.goals.text}`,
    ...table([
      ['check', 'goal', 'measured', 'verdict'],
      [
        'execution throughput vs bare',
        `>= ${throughput.targetPercent} %`,
        `${throughput.actualPercent.toFixed(1)} %`,
        verdict(throughput.met),
      ],
      [
        'execution p99 latency (median round)',
        `< ${p99.maxMs} ms`,
        `${p99.actualMs.toFixed(2)} ms`,
        verdict(p99.met),
      ],
      ['concurrent clients', `${connections.required}`, `${connections.actual}`, verdict(connections.met)],
    ]).map((line) => `  ${line}`),
    `  overall: ${verdict(report.goals.met)}`,
  ].join('\n')
}

/** Writes the report as JSON, creating the folder (git-ignored) if needed. */
export function writeReport(path: string, report: BenchReport): void {
  mkdirSync(dirname(path), { recursive: true })
  writeFileSync(path, `${JSON.stringify(report, null, 2)}\n`)
}

/** Left-aligned first column, right-aligned numbers, a rule under the header. */
function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => r[i]?.length ?? 0))) ?? []
  const line = (cells: readonly string[]) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ')
  const [head, ...body] = rows
  return head === undefined
    ? []
    : [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)]
}
