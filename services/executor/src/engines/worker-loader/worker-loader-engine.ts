import { GuestErrorCode, type Language, parseJsonBounded, type RunOutcome } from '@cordon/contracts'
import {
  BINDING_KINDS,
  type BindingKind,
  type BindingReply,
  BRIDGE_LIMITS,
  failure,
  MAX_REPLY_BYTES_PER_RUN,
  NO_GRANTS,
} from '../../bridge/bridge.ts'
import { GUEST_API, GUEST_API_INTRINSICS } from '../../bridge/guest-api.ts'
import type { BindingChannel, RunJob } from '../../engine.ts'
import type { InProcessEngine } from '../../in-process-runner.ts'
import { outcomeOf } from '../../outcome.ts'
import { OutputBuffer, type OutputListener } from '../../output-buffer.ts'
import {
  classifyFailure,
  classifyResult,
  classifyUnserializable,
  describe,
  memoryLimit,
  type Outcome,
} from '../quickjs/classify.ts'
import { GUEST_LIBRARY, GUEST_LIBRARY_INTRINSICS } from '../quickjs/guest-library.ts'

/** What the engine uses of a Worker Loader binding (`env.LOADER`): `load`, for a fresh isolate each time. */
export interface WorkerLoaderLike {
  load(code: {
    compatibilityDate: string
    mainModule: string
    modules: Record<string, string>
    globalOutbound: null
    limits: { cpuMs: number; subRequests: number }
  }): { getEntrypoint(): unknown }
}

/** The guest's entry point, as the host calls it over RPC. */
interface GuestEntrypoint {
  run(inputJSON: string, grantsJSON: string, budget: number, bridge: unknown): Promise<GuestReport>
}

/** What the guest's isolate answers: how the module ended, and what it wrote. */
interface GuestReport {
  kind: 'ok' | 'error' | 'unserializable'
  text: string
  stdout: string
  stderr: string
  syntax?: boolean
}

/**
 * Makes the object the guest's isolate calls back into for binding calls: on Workers an `RpcTarget`
 * (passed by reference over RPC) whose one method is `call(kind, op, argsJSON)`, answering the reply as
 * JSON text. Supplied by the Worker, which can import `cloudflare:workers`.
 */
export type BridgeFactory = (
  call: (kind: unknown, op: unknown, argsJSON: unknown) => Promise<string>,
) => unknown

export interface WorkerLoaderEngineOptions {
  loader: WorkerLoaderLike
  bridge: BridgeFactory
  /** The compatibility date of the guests' isolates. */
  compatibilityDate: string
}

const expressions = (pairs: readonly (readonly [string, string | null])[]) =>
  pairs.map(([name, key]) => (key === null ? name : `${name}.${key}`)).join(', ')

/**
 * The guest isolate's main module. It keeps the host's bridge, the output budget and the guest API's
 * globals in its own closure, imports the guest's module only when `run` is called, and reports how it
 * ended. It runs in the guest's isolate, so the guest can reach anything here: nothing in it is
 * trusted. The host re-checks every binding call, the output's size and the result's.
 */
const MAIN_MODULE = `import { WorkerEntrypoint } from 'cloudflare:workers'
const G = globalThis
// Captured before the guest runs: a guest that replaces JSON changes only what it sees itself.
const J = JSON.stringify, P = JSON.parse
const library = (${GUEST_LIBRARY})(${expressions(GUEST_LIBRARY_INTRINSICS)})
// No network of its own (the isolate has no outbound either): fetch exists only where granted, as the
// guest API's. The runtime's lives on the global scope's prototype.
for (let o = G; o !== null; o = Object.getPrototypeOf(o)) { try { delete o.fetch } catch (_) {} }
if (G.fetch !== undefined) Object.defineProperty(G, 'fetch', { value: undefined, writable: true, configurable: true })
let bridge = null, room = 0, stdout = '', stderr = ''
const bodies = new Map()
let nextBody = 1
const call = async (kind, op, argsJSON) => {
  const r = P(await bridge.call(kind, op, argsJSON))
  if (r.ok === true && typeof r.bytes === 'string') {
    const binary = atob(r.bytes), bytes = new Uint8Array(binary.length)
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
    const id = nextBody++
    bodies.set(id, bytes.buffer)
    r.bytes = id
  }
  return J(r)
}
const take = (id) => { const body = bodies.get(id); bodies.delete(id); return body }
const decode = (buffer) => new TextDecoder().decode(buffer)
const install = (${GUEST_API})(call, take, decode, ${expressions(GUEST_API_INTRINSICS)}, G)
const writer = (which) => (...args) => {
  if (room <= 0) return
  let line = library.format(...args)
  if (typeof line !== 'string') return
  line = line.length > room ? line.slice(0, room + 1) : line
  room -= line.length
  if (which === 1) stdout += line; else stderr += line
}
const log = writer(1), error = writer(2)
G.console = { log, info: log, debug: log, warn: error, error, trace: error }
export default class extends WorkerEntrypoint {
  async run(inputJSON, grantsJSON, budget, hostBridge) {
    bridge = hostBridge
    room = budget
    Object.defineProperty(G, 'input', { value: P(inputJSON), writable: true, configurable: true })
    install(grantsJSON)
    let ns
    try { ns = await import('./main.js') } catch (e) {
      return { kind: 'error', text: J(library.describe(e)), stdout, stderr, syntax: e instanceof SyntaxError }
    }
    let value
    try {
      value = ns.default
      value = typeof value === 'function' ? await value(P(inputJSON)) : await value
    } catch (e) {
      return { kind: 'error', text: J(library.describe(e)), stdout, stderr }
    }
    let text
    try { text = J(value) } catch (e) {
      return { kind: 'unserializable', text: J(library.describe(e)), stdout, stderr }
    }
    return { kind: 'ok', text: typeof text === 'string' ? text : 'null', stdout, stderr }
  }
}
`

/**
 * The isolate engine on Workers: each job runs in a fresh V8 isolate of its own, loaded through the
 * Worker Loader binding, with no outbound network (`globalOutbound: null`), no bindings, and the
 * platform's own limits for the job's CPU time (`limits.cpuMs`) and memory (an isolate's 128 MB).
 * Binding calls come back over RPC to a bridge that checks them as the supervisor does (known
 * operations, the call limit, calls in flight, reply bytes) before the harness decides them. The host
 * ends the job at its wall time and cuts output and result to the budget whatever the guest reports.
 */
export class WorkerLoaderEngine implements InProcessEngine {
  readonly name = 'isolate' as const
  readonly languages: readonly Language[] = ['javascript']
  /** An isolate of the platform has 128 MB, and the loader sets no lower limit: a job has exactly that. */
  readonly fixedMemoryMb = 128
  readonly #options: WorkerLoaderEngineOptions

  constructor(options: WorkerLoaderEngineOptions) {
    this.#options = options
  }

  async run(
    job: RunJob,
    channel?: BindingChannel,
    signal?: AbortSignal,
    listener?: OutputListener,
  ): Promise<RunOutcome> {
    const started = performance.now()
    const output = new OutputBuffer(job.limits.outputBytes, listener)
    const finish = (outcome: Outcome): RunOutcome => ({
      ...outcome,
      stdout: output.stdout,
      stderr: output.stderr,
      usage: { cpuMs: 0, wallMs: Math.round((performance.now() - started) * 10) / 10, memoryBytes: 0 },
    })
    let ended = false
    let calls = 0
    let pending = 0
    let replyBytes = 0
    const bridge = this.#options.bridge(async (kind, op, argsJSON) => {
      const reply = await this.#call(job, channel, { kind, op, argsJSON }, () => ended, {
        count: () => ++calls,
        enter: () => ++pending,
        leave: () => --pending,
        bytes: (size) => {
          replyBytes += size
          return replyBytes <= MAX_REPLY_BYTES_PER_RUN
        },
      })
      return JSON.stringify(reply)
    })
    const worker = this.#options.loader.load({
      compatibilityDate: this.#options.compatibilityDate,
      mainModule: 'cordon-main.js',
      modules: { 'cordon-main.js': MAIN_MODULE, 'main.js': job.code },
      globalOutbound: null,
      limits: { cpuMs: job.limits.cpuMs, subRequests: 0 },
    })
    const entry = worker.getEntrypoint() as GuestEntrypoint
    let timer: ReturnType<typeof setTimeout> | undefined
    const stopped = new Promise<'wall' | 'cancelled'>((resolve) => {
      timer = setTimeout(() => resolve('wall'), job.limits.wallMs)
      if (signal?.aborted === true) resolve('cancelled')
      signal?.addEventListener('abort', () => resolve('cancelled'), { once: true })
    })
    try {
      const report = await Promise.race([
        entry.run(job.inputJSON, JSON.stringify(job.grants ?? NO_GRANTS), job.limits.outputBytes, bridge),
        stopped,
      ])
      if (report === 'cancelled')
        return finish(outcomeOf('killed', { code: GuestErrorCode.CANCELLED, message: 'cancelled' }))
      if (report === 'wall') return finish(classifyFailure(null, 'wall', job.limits))
      return finish(this.#classify(report, output, job))
    } catch (error) {
      // The platform ended the isolate: its CPU or memory limit, or a fault.
      const message = error instanceof Error ? error.message : String(error)
      // The isolate compiles every module when it starts: a guest module that does not parse (or
      // imports what is not there) stops it before anything runs ("Failed to start Worker").
      const startup = /^Failed to start Worker:?\s*/.exec(message)
      if (startup !== null) {
        const detail = message
          .slice(startup[0].length)
          .replace(/^Uncaught /, '')
          .slice(0, 500)
        return finish(
          classifyFailure(
            { name: 'SyntaxError', message: detail === '' ? 'the module does not compile' : detail },
            null,
            job.limits,
            true,
          ),
        )
      }
      if (/cpu/i.test(message)) return finish(classifyFailure(null, 'cpu', job.limits))
      if (/memory/i.test(message)) return finish(memoryLimit(job.limits))
      return finish(
        outcomeOf('error', { code: GuestErrorCode.WORKER_CRASHED, message: 'the guest isolate failed' }),
      )
    } finally {
      ended = true
      clearTimeout(timer)
    }
  }

  #classify(report: GuestReport, output: OutputBuffer, job: RunJob): Outcome {
    if (report === null || typeof report !== 'object') {
      return outcomeOf('error', {
        code: GuestErrorCode.WORKER_CRASHED,
        message: 'the guest isolate answered nothing',
      })
    }
    // What the guest says it wrote is checked again here: its isolate is the guest's own.
    output.append('stdout', typeof report.stdout === 'string' ? report.stdout : '')
    output.append('stderr', typeof report.stderr === 'string' ? report.stderr : '')
    if (output.exceeded) return classifyFailure(null, 'output', job.limits)
    const text = typeof report.text === 'string' ? report.text : ''
    if (report.kind === 'ok') return classifyResult(text, output.remaining)
    if (report.kind === 'unserializable') return classifyUnserializable(describe(text), job.limits)
    return classifyFailure(describe(text), null, job.limits, report.syntax === true)
  }

  /** One binding call from the guest's isolate, checked as the supervisor checks a worker's. */
  async #call(
    job: RunJob,
    channel: BindingChannel | undefined,
    raw: { kind: unknown; op: unknown; argsJSON: unknown },
    ended: () => boolean,
    budget: { count(): number; enter(): number; leave(): number; bytes(size: number): boolean },
  ): Promise<BindingReply> {
    if (ended()) return failure('INVALID_STATE', 'the execution has ended')
    const { kind, op, argsJSON } = raw
    if (
      typeof kind !== 'string' ||
      !(BINDING_KINDS as readonly string[]).includes(kind) ||
      typeof op !== 'string'
    ) {
      return failure('INVALID_ARGUMENT', 'malformed binding call')
    }
    if (typeof argsJSON !== 'string') return failure('INVALID_ARGUMENT', 'malformed binding call')
    const args = parseJsonBounded(argsJSON, {
      maxBytes: BRIDGE_LIMITS.maxArgumentBytes,
      maxDepth: BRIDGE_LIMITS.maxArgumentDepth,
    })
    if (!args.ok || !Array.isArray(args.value))
      return failure('INVALID_ARGUMENT', 'the arguments must be a JSON array')
    if (budget.count() > job.limits.bindingCalls) {
      return failure(
        'BINDING_LIMIT',
        `this execution may make at most ${job.limits.bindingCalls} binding calls`,
      )
    }
    if (channel === undefined) return failure('NOT_GRANTED', `${kind} is not granted`)
    if (budget.enter() > BRIDGE_LIMITS.maxPendingCalls) {
      budget.leave()
      return failure(
        'BINDING_BUSY',
        `at most ${BRIDGE_LIMITS.maxPendingCalls} binding calls may wait at once`,
      )
    }
    try {
      const reply = await channel({ kind: kind as BindingKind, op, args: args.value })
      if (reply.ok && reply.bytes !== undefined && !budget.bytes(Math.ceil((reply.bytes.length * 3) / 4))) {
        return failure('REPLY_TOO_LARGE', "the bodies of this execution's binding calls exceed their budget")
      }
      return ended() ? failure('INVALID_STATE', 'the execution has ended') : reply
    } finally {
      budget.leave()
    }
  }

  dispose(): void {}
}
