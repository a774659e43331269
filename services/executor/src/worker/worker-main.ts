import { GuestErrorCode, type RunOutcome } from '@cordon/contracts'
import { type BindingReply, failure, isBindingReply } from '../bridge/bridge.ts'
import type { BindingChannel, Engine } from '../engine.ts'
import { ContainerEngine } from '../engines/container/container-engine.ts'
import { IsolateEngine } from '../engines/isolate/isolate-engine.ts'
import { QuickJSEngine } from '../engines/quickjs/quickjs-engine.ts'
import { nodeQuickJSOptions } from '../engines/quickjs/quickjs-node-build.ts'
import { outcomeOf } from '../outcome.ts'
import type { FromWorker, ToWorker } from './protocol.ts'

// A worker process runs one job at a time for the supervisor that forked it, and exits with it.
if (typeof process.send !== 'function') {
  console.error('cordon worker: must be started by the supervisor (no IPC channel)')
  process.exit(2)
}
const send = (message: FromWorker) => process.send?.(message)

const warmMemoryMb = Number(process.env.CORDON_WARM_MEMORY_MB ?? '64')
const quickjs = new QuickJSEngine(nodeQuickJSOptions())
const isolate = new IsolateEngine({
  warmIsolates: Number(process.env.CORDON_WARM_ISOLATES ?? '1'),
  maxRuns: Number(process.env.CORDON_ISOLATE_MAX_RUNS ?? '20000'),
})
const engines: Partial<Record<string, Engine>> = { quickjs, isolate }
/** The container engine's host (its private files, its cgroups) is set up on the first container job. */
let container: ContainerEngine | null = null
const engineFor = (name: string): Engine | undefined => {
  if (name === 'container') {
    container ??= new ContainerEngine({ warmSandboxes: Number(process.env.CORDON_WARM_SANDBOXES ?? '2') })
  }
  return name === 'container' ? (container ?? undefined) : engines[name]
}
quickjs.warm(warmMemoryMb)
isolate.warm(warmMemoryMb)

/** Set once the worker ends itself: it answers nothing more. */
let stopping = false
/** The top-level job running now: nested jobs (its tools) run only while it does. */
let current: number | null = null

/**
 * Ends this process, after `message` (which says so with `retiring`) has gone out: the supervisor
 * sends it nothing more, puts a job it held ahead back in the queue and starts a new worker. Used when
 * an isolate's thread could not be stopped (it may still run guest code here) and, between top-level
 * jobs only, when the isolate engine has served its quota of executions.
 */
function retire(message: FromWorker): void {
  stopping = true
  process.send?.(message, () => setImmediate(() => process.kill(process.pid, 'SIGKILL')))
}

/** Waits until no nested job (tool) runs in this process. */
function nestedDrained(): Promise<void> {
  if (nested.size === 0) return Promise.resolve()
  return new Promise((resolve) => drainWaiters.push(resolve))
}
const drainWaiters: (() => void)[] = []

type Run = Extract<ToWorker, { type: 'run' }>

/** Jobs received and not chosen yet, in the order sent. */
const pending: Run[] = []
/** The job announced (in the last `done`) as the next to start, until it starts. */
let announced: number | null = null
let announcedCancelled = false
let running = false

const dropped = (id: number): FromWorker => ({
  type: 'done',
  id,
  outcome: outcomeOf('killed', { code: GuestErrorCode.CANCELLED, message: 'cancelled before it started' }),
  starting: null,
  dropped: true,
})

/** Nested jobs (tools) running beside the current job, by id. */
const nested = new Map<number, AbortController>()

/** Binding calls sent to the supervisor and not answered yet, by sequence number. */
const calls = new Map<number, { id: number; resolve: (reply: BindingReply) => void }>()
let nextSeq = 1

function channelFor(id: number): BindingChannel {
  return (call) =>
    new Promise((resolve) => {
      const seq = nextSeq++
      calls.set(seq, { id, resolve })
      send({ type: 'call', id, seq, call })
    })
}

/** Answers the calls of a job that has ended (the engine drops these replies). */
function abandonCalls(id: number): void {
  for (const [seq, call] of calls) {
    if (call.id !== id) continue
    calls.delete(seq)
    call.resolve(failure('INVALID_STATE', 'the execution has ended'))
  }
}

// The supervisor's process is gone (killed, crashed): nothing can use this worker's answers any more,
// so it ends its sandboxes and exits rather than live on as an orphan holding guests and memory.
process.on('disconnect', () => {
  stopping = true
  const exit = () => process.exit(0)
  void (container?.close() ?? Promise.resolve()).then(exit, exit)
})

process.on('message', (message: ToWorker) => {
  if (message?.type === 'stop') {
    // The service is shutting down: sandboxes started ahead are ended here, by their parent, so that
    // none is left for the host's init to reap; whatever runs is ended by the exit.
    stopping = true
    const exit = () => process.exit(0)
    void (container?.close() ?? Promise.resolve()).then(exit, exit)
    return
  }
  if (message?.type === 'reply') {
    const call = calls.get(message.seq)
    if (call === undefined || call.id !== message.id) return
    calls.delete(message.seq)
    call.resolve(isBindingReply(message.reply) ? message.reply : failure('BINDING_FAILED', 'malformed reply'))
    return
  }
  if (message?.type === 'cancel') {
    // Only a job that has not started can be dropped: a pending one is answered at once, the one
    // announced next is skipped when its turn comes; a running one is left alone.
    const index = pending.findIndex((run) => run.id === message.id)
    if (index >= 0) {
      pending.splice(index, 1)
      send(dropped(message.id))
    } else if (message.id === announced) announcedCancelled = true
    return
  }
  if (message?.type === 'nested') {
    const { id } = message
    if (message.parent !== current || stopping) {
      // Its caller ended before the request arrived (the two crossed): it must not run beside
      // whatever runs next.
      send({
        type: 'nested-done',
        id,
        outcome: outcomeOf('killed', { code: GuestErrorCode.CANCELLED, message: 'the caller ended' }),
      })
      return
    }
    const controller = new AbortController()
    nested.set(id, controller)
    void runSafely(message, controller.signal).then((outcome) => {
      nested.delete(id)
      const lastOfDrain = nested.size === 0 && drainWaiters.length > 0
      if (!stopping) {
        // A stuck thread must go now (its caller, of the same job, is lost with it). A spent quota
        // waits for the end of the top-level job: said on the last answer of its drain, so that the
        // supervisor never hands this worker another job in between.
        if (isolate.poisoned || (lastOfDrain && isolate.retiring)) {
          retire({ type: 'nested-done', id, outcome, retiring: true })
        } else send({ type: 'nested-done', id, outcome })
      }
      if (nested.size === 0) for (const resolve of drainWaiters.splice(0)) resolve()
    })
    return
  }
  if (message?.type === 'abort') {
    nested.get(message.id)?.abort()
    return
  }
  if (message?.type !== 'run' || stopping) return
  pending.push(message)
  if (!running) void runAll(pending.shift())
})

/**
 * Runs jobs until none is pending. Each `done` names the job started next, and goes out at once;
 * before starting that job the worker lets the loop poll for input once more, so a cancel already on
 * its way is seen and the job skipped (answered as dropped).
 */
async function runAll(first: Run | undefined): Promise<void> {
  running = true
  let run = first
  let wasAnnounced = false
  while (run !== undefined) {
    if (wasAnnounced) {
      await new Promise((resolve) => setImmediate(resolve))
      await new Promise((resolve) => setImmediate(resolve))
      const skip = announcedCancelled
      announced = null
      announcedCancelled = false
      if (skip) {
        send(dropped(run.id))
        run = pending.shift()
        wasAnnounced = false
        continue
      }
    }
    if (run.ahead && !wasAnnounced) send({ type: 'started', id: run.id })
    current = run.id
    const outcome = await runSafely(run)
    current = null
    if (stopping) return
    if (nested.size > 0) {
      // Tools this job started may still run (the supervisor aborts them once it has the answer):
      // nothing else starts here until they have ended, so that a retirement one of them causes
      // kills no other job. The job held ahead, if any, starts unannounced (with a `started`).
      send({ type: 'done', id: run.id, outcome, starting: null })
      // A retirement due now was said on the last answer of the drain (above), which set `stopping`.
      await nestedDrained()
      if (stopping) return
      run = pending.shift()
      wasAnnounced = false
      continue
    }
    if (isolate.retiring) {
      retire({ type: 'done', id: run.id, outcome, starting: null, retiring: true })
      return
    }
    const next = pending.shift()
    announced = next?.id ?? null
    send({ type: 'done', id: run.id, outcome, starting: announced })
    run = next
    wasAnnounced = true
  }
  running = false
}

/** How long output may wait to be sent with more, and how much of it may wait. */
const OUTPUT_DELAY_MS = 20
const OUTPUT_BATCH_CHARS = 16 * 1024

/**
 * Sends a job's output to the supervisor in batches, at most one message per 20 ms (or per 16 Ki
 * characters): each batch holds what the guest wrote meanwhile, each stream's part together, however
 * often it switched between them. A write after a quiet spell goes at once; one that follows closely
 * waits for its batch, sent by a timer, or by a later write once due (a guest computing in a busy
 * loop never lets a timer fire).
 */
class OutputSender {
  readonly #id: number
  #stdout = ''
  #stderr = ''
  #sentAt = Number.NEGATIVE_INFINITY
  #timer: NodeJS.Timeout | null = null

  constructor(id: number) {
    this.#id = id
  }

  readonly listener = (stream: 'stdout' | 'stderr', text: string): void => {
    if (stream === 'stdout') this.#stdout += text
    else this.#stderr += text
    const due = performance.now() - this.#sentAt >= OUTPUT_DELAY_MS
    if (due || this.#stdout.length + this.#stderr.length >= OUTPUT_BATCH_CHARS) this.flush()
    else this.#timer ??= setTimeout(() => this.flush(), OUTPUT_DELAY_MS)
  }

  flush(): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    if (this.#stdout.length + this.#stderr.length === 0) return
    send({ type: 'output', id: this.#id, stdout: this.#stdout, stderr: this.#stderr })
    this.#stdout = ''
    this.#stderr = ''
    this.#sentAt = performance.now()
  }
}

const reported = new Set<string>()

async function runSafely(
  { id, job }: { id: number; job: Run['job'] },
  signal?: AbortSignal,
): Promise<RunOutcome> {
  const engine = engineFor(job.engine)
  try {
    if (engine === undefined) throw new Error(`engine ${job.engine} is not available in this worker`)
    // A client's job streams its output; a tool's (nested, with a signal) ends up in its record only.
    const output = signal === undefined ? new OutputSender(id) : null
    try {
      return await engine.run(job, channelFor(id), signal, output?.listener)
    } finally {
      output?.flush()
    }
  } catch (error) {
    // The engine itself failed (not the guest): say why on stderr, once per reason, for the operator.
    const reason = error instanceof Error ? error.message : String(error)
    if (!reported.has(reason) && reported.size < 100) {
      reported.add(reason)
      console.error(`engine fault: ${reason.slice(0, 500)}`)
    }
    return outcomeOf('error', {
      code: GuestErrorCode.ENGINE_FAULT,
      message: 'the engine failed while running this job',
    })
  } finally {
    abandonCalls(id)
  }
}

send({ type: 'ready' })
