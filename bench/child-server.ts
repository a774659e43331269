import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'

const TAIL_LINES = 40

export interface ChildServerOptions {
  /** Short name used to prefix forwarded stderr lines and in error messages. */
  name: string
  /** Arguments to `node` (the current `process.execPath`). */
  args: readonly string[]
  env: NodeJS.ProcessEnv
  /** Matched against each stdout line; capture group 1 is the server's base URL. */
  readyLine: RegExp
  /** Rejects `ready` if no ready line arrives within this time. */
  readyTimeoutMs: number
  /** Open an IPC channel, so a child that exits on `disconnect` dies with the bench. */
  ipc?: boolean
}

/** A server running as a child process of the bench. */
export interface ChildServer {
  readonly name: string
  readonly pid: number | undefined
  /** The base URL from the ready line; rejects if the child exits or stays silent first. */
  readonly ready: Promise<string>
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the child has exited. Idempotent. */
  stop(graceMs?: number): Promise<void>
  /** Synchronous SIGKILL, for `process.on('exit')` where nothing can be awaited. */
  killNow(): void
}

/**
 * Spawns `node <args>` and watches its stdout for the ready line. The handle is returned at once so
 * the caller can register it for cleanup before awaiting `ready`. Once ready, stderr is forwarded,
 * prefixed with the name; both streams are drained for the child's whole life so it never blocks on
 * a full pipe.
 */
export function spawnChildServer(options: ChildServerOptions): ChildServer {
  const child: ChildProcess = spawn(process.execPath, options.args, {
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe', ...(options.ipc === true ? (['ipc'] as const) : [])],
  })
  const lines: string[] = []
  const remember = (line: string) => {
    lines.push(line)
    if (lines.length > TAIL_LINES) lines.shift()
  }
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve()
    else child.once('exit', () => resolve())
  })

  const ready = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(
        new Error(
          `${options.name} printed no ready line within ${options.readyTimeoutMs} ms${tailOf(lines)}`,
        ),
      )
    }, options.readyTimeoutMs)
    timer.unref()
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(new Error(`${options.name} could not be started: ${error.message}`))
    })
    // 'close' (not 'exit'): the streams are drained by then, so the tail holds the last words.
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      reject(
        new Error(`${options.name} exited (${signal ?? `code ${code}`}) before it was ready${tailOf(lines)}`),
      )
    })
    if (child.stdout !== null) {
      createInterface({ input: child.stdout }).on('line', (line) => {
        remember(line)
        const url = options.readyLine.exec(line)?.[1]
        if (url !== undefined) {
          clearTimeout(timer)
          resolve(url)
        }
      })
    }
  })
  // stderr before the ready line is shown once: in the error if the start fails, else when ready.
  const early: string[] = []
  let forwarding = false
  const forward = (line: string) => process.stderr.write(`[${options.name}] ${line}\n`)
  void ready.then(
    () => {
      forwarding = true
      for (const line of early.splice(0)) forward(line)
    },
    () => {},
  )
  if (child.stderr !== null) {
    createInterface({ input: child.stderr }).on('line', (line) => {
      remember(line)
      if (forwarding) forward(line)
      else early.push(line)
    })
  }

  let stopping: Promise<void> | null = null
  const running = () => child.exitCode === null && child.signalCode === null
  return {
    name: options.name,
    pid: child.pid,
    ready,
    stop(graceMs = 5000) {
      stopping ??= (async () => {
        if (!running()) return
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
        await exited
        clearTimeout(timer)
      })()
      return stopping
    },
    killNow() {
      if (running()) child.kill('SIGKILL')
    },
  }
}

function tailOf(lines: readonly string[]): string {
  return lines.length === 0 ? ' (no output)' : `; its last output:\n${lines.join('\n')}`
}
