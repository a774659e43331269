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

let queue = Promise.resolve()
/** Jobs received but not started, and those of them cancelled. */
const waiting = new Set<number>()
const cancelled = new Set<number>()
process.on('message', (message: ToWorker) => {
  if (message?.type === 'cancel') {
    if (waiting.has(message.id)) cancelled.add(message.id)
    return
  }
  if (message?.type !== 'run') return
  waiting.add(message.id)
  queue = queue.then(async () => {
    // Let messages that arrived during the previous job (a cancel of this one) be read first.
    await new Promise((resolve) => setImmediate(resolve))
    waiting.delete(message.id)
    const skip = cancelled.delete(message.id)
    send({
      type: 'done',
      id: message.id,
      outcome: skip
        ? outcomeOf('killed', { code: GuestErrorCode.CANCELLED, message: 'cancelled before it started' })
        : await runSafely(message),
    })
  })
})
process.on('disconnect', () => process.exit(0))

async function runSafely({ job }: Extract<ToWorker, { type: 'run' }>): Promise<RunOutcome> {
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
