import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { workerStackSizeKb } from './process-info.ts'

const WORKER_ENTRY = fileURLToPath(new URL('../worker/worker-main.ts', import.meta.url))

/**
 * Forks one worker process: its own process group (so it can be killed whole), a clean environment,
 * no stdin/stdout, an IPC channel, and the V8 flags the engine's limits rely on (a larger stack so
 * QuickJS's own stack check fires first, a bounded host heap, no Node startup snapshot for isolated-vm).
 * Its stderr reaches the gateway's, one `cordon worker[pid]:` line at a time.
 */
export function forkWorker(settings: WorkerSettings): ChildProcess {
  const child = fork(WORKER_ENTRY, [], {
    execArgv: [
      `--stack-size=${workerStackSizeKb()}`,
      '--max-old-space-size=512',
      '--disable-warning=ExperimentalWarning',
      // isolated-vm creates contexts that Node's own startup snapshot is incompatible with.
      '--no-node-snapshot',
    ],
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      ...settings,
    },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    serialization: 'json',
    detached: true,
  })
  forwardLines(child, `cordon worker[${child.pid}]`)
  return child
}

/** What the workers read from their environment: pre-warming and the isolate quota. */
export interface WorkerSettings {
  CORDON_WARM_MEMORY_MB: string
  CORDON_WARM_ISOLATES: string
  CORDON_ISOLATE_MAX_RUNS: string
  CORDON_WARM_SANDBOXES: string
}

/**
 * The workers' settings from `env`, each checked here (in the gateway, before any worker starts): a
 * bad value is a `RangeError` naming the variable, never a worker that quietly misbehaves.
 */
export function workerSettings(env: NodeJS.ProcessEnv = process.env): WorkerSettings {
  const whole = (name: keyof WorkerSettings, fallback: number, min: number, max: number): string => {
    const raw = env[name]
    if (raw === undefined || raw.trim() === '') return String(fallback)
    const value = Number(raw)
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new RangeError(`${name} must be a whole number from ${min} to ${max}, got "${raw.slice(0, 40)}"`)
    }
    return String(value)
  }
  return {
    CORDON_WARM_MEMORY_MB: whole('CORDON_WARM_MEMORY_MB', 64, 4, 1024),
    CORDON_WARM_ISOLATES: whole('CORDON_WARM_ISOLATES', 1, 0, 16),
    CORDON_ISOLATE_MAX_RUNS: whole('CORDON_ISOLATE_MAX_RUNS', 20_000, 1, 1_000_000_000),
    CORDON_WARM_SANDBOXES: whole('CORDON_WARM_SANDBOXES', 2, 0, 16),
  }
}

function forwardLines(child: ChildProcess, prefix: string): void {
  let pending = ''
  child.stderr?.setEncoding('utf8')
  child.stderr?.on('data', (chunk: string) => {
    const lines = (pending + chunk).split('\n')
    pending = (lines.pop() ?? '').slice(0, 4096)
    for (const line of lines) if (line.length > 0) process.stderr.write(`${prefix}: ${line.slice(0, 4096)}\n`)
  })
}
