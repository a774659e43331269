import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { serve } from '@hono/node-server'
import { Hono } from 'hono'
import type { HopOutcome, HopReply, HopRequest } from './hop-worker.ts'

// The process-hop floor for `npm run bench`: Hono on @hono/node-server whose `POST /` reads the JSON
// body, forwards it over IPC (child_process.fork, JSON serialization, as the gateway's supervisor
// does) to one of two pre-started worker processes in turn, and answers the worker's reply as JSON.
// No auth, policy, store or engine. Prints `hop: listening on http://127.0.0.1:<port>` once both
// workers are ready and it accepts connections. If a worker dies, the server exits with code 1.

const WORKERS = 2
const WORKER_ENTRY = fileURLToPath(new URL('./hop-worker.ts', import.meta.url))

const pending = new Map<number, (outcome: HopOutcome) => void>()
let nextId = 0
let nextWorker = 0
let stopping = false

const workers = Array.from({ length: WORKERS }, () => spawnWorker())
await Promise.all(workers.map(({ ready }) => ready))

const app = new Hono()
app.post('/', async (c) => c.json(await hop(await c.req.json())))

serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
  console.log(`hop: listening on http://127.0.0.1:${info.port}`)
})

process.once('SIGINT', () => stop(0))
process.once('SIGTERM', () => stop(0))
// Started with an IPC channel by the bench runner: exit with it, even if it died without cleaning up.
process.once('disconnect', () => stop(0))

/** Sends `body` to the next worker (round-robin) and resolves with its reply. */
function hop(body: unknown): Promise<HopOutcome> {
  const worker = workers[nextWorker]
  nextWorker = (nextWorker + 1) % workers.length
  if (worker === undefined) throw new Error('hop server: no worker')
  const id = nextId++
  return new Promise((resolve) => {
    pending.set(id, resolve)
    const message: HopRequest = { type: 'run', id, body }
    worker.process.send(message)
  })
}

function spawnWorker(): { process: ChildProcess; ready: Promise<void> } {
  const child = fork(WORKER_ENTRY, [], {
    execArgv: ['--disable-warning=ExperimentalWarning'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    serialization: 'json',
    detached: true,
  })
  const ready = new Promise<void>((resolve) => {
    child.on('message', (message: HopReply) => {
      if (message.type === 'ready') resolve()
      else if (message.type === 'done') {
        pending.get(message.id)?.(message.outcome)
        pending.delete(message.id)
      }
    })
  })
  child.once('exit', (code, signal) => {
    if (stopping) return
    console.error(`hop: worker ${child.pid} exited (${signal ?? `code ${code}`}); stopping`)
    stop(1)
  })
  return { process: child, ready }
}

/** Kills every worker (they are detached, so a terminal Ctrl-C does not reach them) and exits. */
function stop(code: number): void {
  if (stopping) return
  stopping = true
  const exits = workers.map(
    ({ process: child }) =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGKILL')
      }),
  )
  void Promise.all(exits).then(() => process.exit(code))
}
