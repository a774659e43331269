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
export function forkWorker(): ChildProcess {
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
      CORDON_WARM_MEMORY_MB: process.env.CORDON_WARM_MEMORY_MB ?? '64',
      CORDON_WARM_ISOLATES: process.env.CORDON_WARM_ISOLATES ?? '1',
      CORDON_ISOLATE_MAX_RUNS: process.env.CORDON_ISOLATE_MAX_RUNS ?? '20000',
    },
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    serialization: 'json',
    detached: true,
  })
  forwardLines(child, `cordon worker[${child.pid}]`)
  return child
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
