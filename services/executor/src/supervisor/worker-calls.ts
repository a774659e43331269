import { GuestErrorCode, type RunOutcome } from '@cordon/contracts'
import {
  BINDING_OPERATIONS,
  type BindingCall,
  type BindingHost,
  type BindingReply,
  failure,
  isBindingReply,
  type NestedRunner,
} from '../bridge/bridge.ts'
import type { RunJob } from '../engine.ts'
import { outcomeOf } from '../outcome.ts'
import type { ToWorker } from '../worker/protocol.ts'
import type { Task, Worker } from './worker-records.ts'

/** What nested jobs take from the supervisor. */
export interface NestingOptions {
  /** A job id no other job of the supervisor has. */
  nextId(): number
  /** Bytes of RSS a job with these limits may add to its worker while it runs. */
  rssBudget(limits: RunJob['limits']): number
}

/**
 * A binding call of the worker's running job (or of a nested job it started). The worker is not
 * trusted to have counted or checked it: the call must belong to the job it runs, name a known
 * operation, and fit the job's `bindingCalls`. The reply goes back only while that job is still
 * running there; the host work gets the job's abort signal.
 */
export function handleCall(
  worker: Worker,
  id: number,
  seq: number,
  call: BindingCall,
  options: NestingOptions,
): void {
  const parent = worker.task
  if (parent === null || !Number.isSafeInteger(seq)) return
  const task = parent.id === id ? parent : worker.nested.get(id)
  if (task === undefined) return
  const current = () => (task === parent ? worker.task === parent : worker.nested.get(id) === task)
  const reply = (answer: BindingReply) => {
    if (!current() || worker.killedFor !== null || !worker.process.connected) return
    worker.process.send({ type: 'reply', id, seq, reply: answer } satisfies ToWorker)
  }
  const operations = (BINDING_OPERATIONS as Record<string, readonly string[] | undefined>)[call?.kind]
  if (operations === undefined || !operations.includes(call.op) || !Array.isArray(call.args)) {
    reply(failure('INVALID_ARGUMENT', 'malformed binding call'))
    return
  }
  task.calls++
  if (task.calls > task.job.limits.bindingCalls) {
    reply(
      failure(
        'BINDING_LIMIT',
        `this execution may make at most ${task.job.limits.bindingCalls} binding calls`,
      ),
    )
    return
  }
  if (task.host === undefined) {
    reply(failure('NOT_GRANTED', `${call.kind} is not granted`))
    return
  }
  const nest: NestedRunner = (job, host) => runNested(worker, parent, job, host, options)
  task.host.call(call, task.controller.signal, nest).then(
    (answer) => reply(isBindingReply(answer) ? answer : failure('BINDING_FAILED', 'the binding failed')),
    () => reply(failure('BINDING_FAILED', 'the binding failed')),
  )
}

/**
 * Answers a nested job and aborts its host work; one its worker did not finish (`finished` false: its
 * caller ended) is stopped there. Its RSS budget leaves the worker's limit.
 */
export function endNested(worker: Worker, id: number, outcome: RunOutcome, finished = false): void {
  const nested = worker.nested.get(id)
  if (nested === undefined) return
  worker.nested.delete(id)
  if (!finished && worker.process.connected) {
    worker.process.send({ type: 'abort', id } satisfies ToWorker)
    if (worker.draining.size === 0) worker.drainingSince = performance.now()
    worker.draining.add(id)
  }
  worker.rssLimit -= nested.rssBudget
  nested.controller.abort()
  nested.resolve(outcome)
}

/**
 * Starts `job` in the worker running `parent`, beside it, with its own RSS budget added to the
 * worker's limit; answers its outcome (cancelled at once when `parent` no longer runs there).
 */
function runNested(
  worker: Worker,
  parent: Task,
  job: RunJob,
  host: BindingHost,
  options: NestingOptions,
): Promise<RunOutcome> {
  if (worker.task !== parent || worker.killedFor !== null || !worker.process.connected) {
    return Promise.resolve(
      outcomeOf('killed', { code: GuestErrorCode.CANCELLED, message: 'the caller ended' }),
    )
  }
  const id = options.nextId()
  const rssBudget = options.rssBudget(job.limits)
  worker.rssLimit += rssBudget
  return new Promise((resolve) => {
    worker.nested.set(id, {
      id,
      job,
      host,
      calls: 0,
      controller: new AbortController(),
      rssBudget,
      resolve,
    })
    worker.process.send({ type: 'nested', id, job, parent: parent.id } satisfies ToWorker)
  })
}

/**
 * A running job's output, streamed by its worker, for its host. A worker runs guest code, so what it
 * says is checked: only the client's job it runs now, text, and never more in all than the job's
 * output limit allows (in characters, each at least a byte). It is kept too: should the worker be
 * killed, the job's record has what it wrote.
 */
export function handleOutput(worker: Worker, id: number, stdout: unknown, stderr: unknown): void {
  const task = worker.task
  if (task === null || task.id !== id || worker.killedFor !== null) return
  if (typeof stdout !== 'string' || typeof stderr !== 'string') return
  const streamed = task.streamed ?? { stdout: '', stderr: '' }
  if (
    streamed.stdout.length + streamed.stderr.length + stdout.length + stderr.length >
    task.job.limits.outputBytes
  ) {
    return
  }
  streamed.stdout += stdout
  streamed.stderr += stderr
  task.streamed = streamed
  if (stdout.length > 0) task.host?.output?.('stdout', stdout)
  if (stderr.length > 0) task.host?.output?.('stderr', stderr)
}
