import { GuestErrorCode, type RunOutcome } from '@cordon/contracts'
import type { Engine } from '../engine.ts'
import { QuickJSEngine } from '../engines/quickjs/quickjs-engine.ts'
import { outcomeOf } from '../outcome.ts'
import type { FromWorker, ToWorker } from './protocol.ts'

// A worker process runs one job at a time for the supervisor that forked it, and exits with it.
if (typeof process.send !== 'function') {
  console.error('cordon worker: must be started by the supervisor (no IPC channel)')
  process.exit(2)
}
const send = (message: FromWorker) => process.send?.(message)

const engines: Partial<Record<string, Engine>> = { quickjs: new QuickJSEngine() }
const warmMemoryMb = Number(process.env.CORDON_WARM_MEMORY_MB ?? '64')
;(engines.quickjs as QuickJSEngine).warm(warmMemoryMb)

type Run = Extract<ToWorker, { type: 'run' }>

/** Jobs received and not started, in the order sent. */
const pending: Run[] = []
let running = false

process.on('message', (message: ToWorker) => {
  if (message?.type === 'cancel') {
    // Only a job that has not started can be dropped; it is answered at once.
    const index = pending.findIndex((run) => run.id === message.id)
    if (index < 0) return
    pending.splice(index, 1)
    const outcome = outcomeOf('killed', {
      code: GuestErrorCode.CANCELLED,
      message: 'cancelled before it started',
    })
    send({ type: 'done', id: message.id, outcome, starting: null })
    return
  }
  if (message?.type !== 'run') return
  pending.push(message)
  if (!running) void runFrom(pending.shift(), false)
})

/** Runs jobs until none is pending; each `done` names the job started next. */
async function runFrom(first: Run | undefined, announced: boolean): Promise<void> {
  let run = first
  let wasAnnounced = announced
  running = true
  while (run !== undefined) {
    if (run.ahead && !wasAnnounced) send({ type: 'started', id: run.id })
    const outcome = await runSafely(run)
    // Read what arrived while the job ran (a cancel of the next one) before choosing the next: the
    // second immediate runs after the loop has polled for input once more.
    await new Promise((resolve) => setImmediate(resolve))
    await new Promise((resolve) => setImmediate(resolve))
    const next = pending.shift()
    send({ type: 'done', id: run.id, outcome, starting: next?.id ?? null })
    run = next
    wasAnnounced = true
  }
  running = false
}
process.on('disconnect', () => process.exit(0))

async function runSafely({ job }: Run): Promise<RunOutcome> {
  const engine = engines[job.engine]
  try {
    if (engine === undefined) throw new Error(`engine ${job.engine} is not available in this worker`)
    return await engine.run(job)
  } catch {
    return outcomeOf('error', {
      code: GuestErrorCode.ENGINE_FAULT,
      message: 'the engine failed while running this job',
    })
  }
}

send({ type: 'ready' })
