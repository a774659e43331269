import { GuestErrorCode, type RunOutcome } from '@cordon/contracts'
import type { Engine } from '../engine.ts'
import { QuickJSEngine } from '../engines/quickjs/quickjs-engine.ts'
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
process.on('message', (message: ToWorker) => {
  if (message?.type !== 'run') return
  queue = queue.then(async () => {
    send({ type: 'done', id: message.id, outcome: await runSafely(message) })
  })
})
process.on('disconnect', () => process.exit(0))

async function runSafely({ job }: ToWorker): Promise<RunOutcome> {
  const engine = engines[job.engine]
  try {
    if (engine === undefined) throw new Error(`engine ${job.engine} is not available in this worker`)
    return await engine.run(job)
  } catch {
    return {
      status: 'error',
      result: null,
      stdout: '',
      stderr: '',
      error: { code: GuestErrorCode.ENGINE_FAULT, message: 'the engine failed while running this job' },
      usage: { cpuMs: 0, wallMs: 0, memoryBytes: 0 },
    }
  }
}

send({ type: 'ready' })
