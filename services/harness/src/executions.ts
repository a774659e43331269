import { createHash } from 'node:crypto'
import {
  CordonError,
  type EngineName,
  ErrorCode,
  type ExecutionRecord,
  GuestErrorCode,
  type JsonValue,
  type Language,
  type RunOutcome,
} from '@cordon/contracts'
import type { JobRunner } from '@cordon/executor/portable'
import { type AgentDeclaration, decideRun, FILESYSTEM_ROOT, type ResolvedProfile } from '@cordon/policy'
import type { Unavailable } from './bindings/binding-context.ts'
import type { BindingHandlers } from './bindings/execution-bindings.ts'
import { finishPlan, planExecution } from './bindings/execution-plan.ts'
import { type EventLog, ExecutionStreams } from './execution-events.ts'
import { newExecutionId } from './ids.ts'
import { type AgentProfiles, invalid } from './profile-catalog.ts'
import type { JournalEntry, Store } from './storage/store.ts'
import { workspacePath } from './workspace-path.ts'

export interface ExecuteRequest {
  language: Language
  code: string
  input: JsonValue
  engine?: EngineName | undefined
  /** Container engine: files put into `/workspace` before the command runs (paths under it). */
  files?: { path: string; data: Uint8Array }[] | undefined
}

/** An agent as executions need it: its declaration, storage namespace and effective profiles. */
export interface RunnableAgent extends AgentProfiles {
  agent: AgentDeclaration
  namespace: string
  /** Which agent of its name this is (see `Store.agentIncarnation`). */
  incarnation: string
}

/**
 * What resuming an execution after a crash needs, stored with its running record: the client's
 * request (code and input, or the tool and its input), resolved again against the agent as it is
 * then, so that a profile tightened meanwhile holds for the resumed run.
 */
export type ResumeRequest =
  | {
      kind: 'code'
      language: Language
      code: string
      input: JsonValue
      engine: EngineName | null
      /** Checked input files, base64. */
      files: { path: string; content: string }[]
    }
  | { kind: 'tool'; tool: string; input: JsonValue }

/** A resume request as stored: what it asks for, and what it ran against (to resume only that). */
export type StoredResume = ResumeRequest & {
  /** The agent's incarnation: a resumed run never runs as an agent deleted and stored again. */
  incarnation: string
  /** A tool's code, as SHA-256: a tool changed meanwhile would not repeat its calls. */
  codeHash?: string
}

/** One execution to start: a client's request, or an interrupted one to resume. */
export interface StartRequest {
  tenant: string
  agent: string
  runnable: RunnableAgent
  profile: ResolvedProfile
  request: ExecuteRequest
  resume: ResumeRequest
  signal?: AbortSignal | undefined
  idempotencyKey?: string | undefined
  /** Resuming: the interrupted execution's record (its id and creation time carry on). */
  interrupted?: ExecutionRecord | undefined
  /**
   * Hears the id of the execution that answers this request, once it runs (or runs already: an
   * earlier request's with the same idempotency key), so that its events can be followed.
   */
  onStart?: ((id: string) => void) | undefined
}

export interface ExecutionsOptions {
  store: Store
  /** What runs the jobs (the Supervisor on Node). */
  supervisor: JobRunner
  /** Why this deployment cannot run a job of this engine, language and limits, or null. */
  unavailable: Unavailable
  handlers: BindingHandlers
  env: (tenant: string) => Readonly<Record<string, string>>
  /** Journal binding calls (the default); off only to measure what the journal costs. */
  journal: boolean
}

type RunningView = Pick<ExecutionRecord, 'id' | 'agent' | 'engine' | 'language' | 'createdAt'>

/**
 * Executions of this process: planned, queued, recorded (with what resuming them needs), journaled,
 * cancellable, and answered once for each idempotency key.
 */
export class Executions {
  readonly #options: ExecutionsOptions
  readonly #store: Store
  /** Executions running in this process, by tenant and id: a retried idempotent request waits for its. */
  readonly #inflight = new Map<string, Promise<ExecutionRecord>>()
  /** What cancels each of them (POST /v1/executions/{id}/cancel), and their records as they began. */
  readonly #cancellers = new Map<string, AbortController>()
  readonly #running = new Map<string, ExecutionRecord>()
  /** The event streams of executions running here (and of watched ones that ended lately). */
  readonly #streams = new ExecutionStreams()

  constructor(options: ExecutionsOptions) {
    this.#options = options
    this.#store = options.store
  }

  /**
   * Runs one execution to its final record. A request the profile refuses is a 403 before anything
   * runs. With an idempotency key, a request made before with the same key answers that execution.
   */
  async start(start: StartRequest): Promise<ExecutionRecord> {
    const { tenant, agent: agentName, runnable, profile, request, idempotencyKey, interrupted } = start
    const { agent, toolProfiles, namespace } = runnable
    const decision = decideRun(profile, { language: request.language, engine: request.engine })
    if (decision.effect === 'deny') throw new CordonError(ErrorCode[decision.code], decision.message)
    const unavailable = this.#options.unavailable(decision.engine, request.language, profile.limits)
    if (unavailable !== null) throw new CordonError(ErrorCode.ENGINE_UNAVAILABLE, unavailable)
    const files =
      start.resume.kind === 'code' && interrupted !== undefined
        ? start.resume.files
        : inputFiles(request.files, decision.engine, profile)
    // What resuming it after a crash takes; none for the container engine (its command's TLS
    // tunnels carry what no journal sees, so running it again could repeat any of it) or without a
    // journal: such an execution ends as INTERRUPTED instead.
    const resume: StoredResume | null =
      decision.engine === 'container' || !this.#options.journal
        ? null
        : {
            ...(start.resume.kind === 'code' ? { ...start.resume, files } : start.resume),
            incarnation: runnable.incarnation,
            ...(start.resume.kind === 'tool' ? { codeHash: sha256Hex(request.code) } : {}),
          }
    const id = interrupted?.id ?? newExecutionId()
    const replay: ReadonlyMap<number, JournalEntry> =
      interrupted === undefined ? new Map() : this.#store.journal.entries(tenant, interrupted.id)
    const plan = planExecution({
      tenant,
      agent: agentName,
      namespace,
      profile,
      engine: decision.engine,
      language: request.language,
      code: request.code,
      input: request.input,
      files,
      tools: { agent, toolProfiles, depth: 0, budget: { calls: 0 } },
      store: this.#store,
      handlers: this.#options.handlers,
      env: this.#options.env(tenant),
      id,
      createdAt: interrupted?.createdAt,
      journal: this.#options.journal ? { root: id, replay } : undefined,
    })
    const { record } = plan
    const fingerprint = idempotencyKey === undefined ? '' : fingerprintOf(agentName, request)
    if (idempotencyKey !== undefined) {
      const earlier = this.#store.claimIdempotencyKey(tenant, idempotencyKey, fingerprint, record.id)
      if (earlier !== null) {
        const answer = this.#earlier(tenant, idempotencyKey, earlier, fingerprint, record.id)
        if (answer !== null) {
          if (this.#streams.get(tenant, earlier.execution) !== undefined) start.onStart?.(earlier.execution)
          return answer
        }
      }
    }
    // Cancellable by the client going away (its signal) and by POST /v1/executions/{id}/cancel.
    const canceller = new AbortController()
    const stop =
      start.signal === undefined ? canceller.signal : AbortSignal.any([start.signal, canceller.signal])
    // Queue first: a refusal (QUEUE_FULL) throws before anything is recorded (and frees the key).
    let pending: Promise<RunOutcome>
    try {
      pending = this.#options.supervisor.run(plan.job, tenant, stop, plan.bindings)
    } catch (error) {
      if (idempotencyKey !== undefined) this.#store.releaseIdempotencyKey(tenant, idempotencyKey, record.id)
      throw error
    }
    this.#store.beginExecution(tenant, record, resume === null ? undefined : JSON.stringify(resume))
    // A resumed run counts as one more attempt once it is queued (a crash loop ends; see Harness).
    if (interrupted !== undefined) this.#store.countResumeAttempt(tenant, record.id)
    const log = this.#streams.get(tenant, record.id) ?? this.#streams.open(tenant, record)
    plan.bindings.streamOutput((stream, text) => log.chunk(stream, text))
    // Refused after it was queued (queue deadline, shutdown): nothing ran, so the key is freed for
    // the retry the refusal asks for. A resumed execution stays running, journal and all: its resume
    // asks again (queue deadline), or the next start does (shutdown).
    const refused = (): boolean => {
      if (interrupted !== undefined) return false
      if (idempotencyKey !== undefined) this.#store.releaseIdempotencyKey(tenant, idempotencyKey, record.id)
      return true
    }
    const running = this.#finish(tenant, plan, pending, refused, log)
    const inflight = `${tenant}\u0000${record.id}`
    this.#inflight.set(inflight, running)
    this.#cancellers.set(inflight, canceller)
    this.#running.set(inflight, record)
    start.onStart?.(record.id)
    try {
      return await running
    } finally {
      this.#inflight.delete(inflight)
      this.#cancellers.delete(inflight)
      this.#running.delete(inflight)
    }
  }

  /**
   * Marks an interrupted execution as about to be resumed, until `done` settles: a request retried
   * with its idempotency key meanwhile waits for its final record.
   */
  resuming(tenant: string, record: ExecutionRecord, attempt: number, done: Promise<void>): AbortSignal {
    const key = `${tenant}\u0000${record.id}`
    const log = this.#streams.open(tenant, record, attempt)
    // Listed, cancellable and awaited (by a retry with its idempotency key) like a queued execution.
    const canceller = new AbortController()
    const final = done.then(() => this.#store.getExecution(tenant, record.id) ?? record)
    this.#inflight.set(key, final)
    this.#cancellers.set(key, canceller)
    this.#running.set(key, record)
    void final.then((stored) => {
      if (this.#inflight.get(key) === final) {
        this.#inflight.delete(key)
        this.#cancellers.delete(key)
        this.#running.delete(key)
      }
      // Given up, or left for the next start: its stream ends with the record as it stands.
      if (!log.ended) this.#streams.end(tenant, stored)
    })
    return canceller.signal
  }

  /**
   * An execution's event stream while it runs here (and a while after its end, if a client watched
   * it); undefined when there is none (the stored record says how it ended).
   */
  events(tenant: string, id: string): EventLog | undefined {
    return this.#streams.get(tenant, id)
  }

  /** The tenant's executions running (or queued) in this service now, oldest first (at most `limit`). */
  running(tenant: string, filter: { agent?: string | undefined; limit: number }): RunningView[] {
    const found: RunningView[] = []
    for (const [key, record] of this.#running) {
      if (!key.startsWith(`${tenant}\u0000`)) continue
      if (filter.agent !== undefined && record.agent !== filter.agent) continue
      const { id, agent, engine, language, createdAt } = record
      found.push({ id, agent, engine, language, createdAt })
      if (found.length >= filter.limit) break
    }
    return found
  }

  /**
   * Cancels an execution running (or queued) in this service: it ends as `killed` / `CANCELLED`, and
   * its final record is the answer. An execution that already ended is a 409; an unknown one a 404.
   */
  async cancel(tenant: string, id: string): Promise<ExecutionRecord> {
    const key = `${tenant}\u0000${id}`
    const canceller = this.#cancellers.get(key)
    const running = this.#inflight.get(key)
    if (canceller === undefined || running === undefined) {
      const record = this.#store.getExecution(tenant, id)
      if (record === null)
        throw new CordonError(ErrorCode.EXECUTION_NOT_FOUND, `no execution with id "${id}"`)
      throw new CordonError(
        ErrorCode.EXECUTION_NOT_RUNNING,
        `execution "${id}" is not running here (status ${record.status})`,
      )
    }
    canceller.abort()
    this.#store.audit.append(tenant, {
      kind: 'execution.cancel',
      agent: null,
      execution: id,
      decision: 'info',
      code: 'CANCELLED',
      rule: null,
      detail: {},
    })
    return running
  }

  /**
   * The answer to a request whose idempotency key an earlier request claimed: that execution's record
   * (awaited while it runs in this process), never a second execution; the same key with another
   * request is a 409. When the earlier request left no execution at all (the process died before
   * recording it, so it never did anything), the key passes to this one, which runs: null.
   */
  #earlier(
    tenant: string,
    key: string,
    earlier: { fingerprint: string; execution: string },
    fingerprint: string,
    id: string,
  ): Promise<ExecutionRecord> | null {
    if (earlier.fingerprint !== fingerprint) {
      throw new CordonError(
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
        'this Idempotency-Key was used for a different request; use a new key',
      )
    }
    const running = this.#inflight.get(`${tenant}\u0000${earlier.execution}`)
    if (running !== undefined) return running
    const record = this.#store.getExecution(tenant, earlier.execution)
    if (record !== null) return Promise.resolve(record)
    if (this.#store.reclaimIdempotencyKey(tenant, key, earlier.execution, id)) return null
    // Another request took it over just now: answer what that one answers.
    const now = this.#store.claimIdempotencyKey(tenant, key, fingerprint, id)
    return now === null ? null : this.#earlier(tenant, key, now, fingerprint, id)
  }

  async #finish(
    tenant: string,
    plan: ReturnType<typeof planExecution>,
    pending: Promise<RunOutcome>,
    refused: (error: unknown) => boolean,
    log: EventLog,
  ): Promise<ExecutionRecord> {
    const { record } = plan
    let outcome: RunOutcome
    try {
      outcome = await pending
    } catch (error) {
      // Refused after it was queued (queue deadline, shutdown): the record must not stay `running`,
      // unless it is to be resumed.
      if (refused(error)) {
        const message = error instanceof Error ? error.message : 'refused'
        const killed: ExecutionRecord = {
          ...record,
          status: 'killed',
          error: { code: GuestErrorCode.CANCELLED, message },
          finishedAt: new Date().toISOString(),
        }
        plan.context.journal?.close()
        this.#store.journal.drop(tenant, record.id)
        await this.#store.finishExecution(tenant, killed)
        this.#streams.end(tenant, killed)
      }
      throw error
    }
    const finished = finishPlan(plan, outcome)
    plan.context.journal?.close()
    this.#store.journal.drop(tenant, record.id)
    await this.#store.finishExecution(tenant, finished)
    // The stream's chunks add up to the record's output: what the redactors held back, and all of a
    // stream the engine could not send as it was written (the container engine's).
    const streamed = plan.bindings.endOutput()
    if (!streamed.stdout) log.chunk('stdout', finished.stdout)
    if (!streamed.stderr) log.chunk('stderr', finished.stderr)
    this.#streams.end(tenant, finished)
    return finished
  }
}

/**
 * A request's input files, checked: only the container engine takes them, only into a workspace the
 * profile lets the command see, each path normalised under `/workspace` (the fs binding's rules), at
 * most once each, and all of them within the workspace's quota.
 */
export function inputFiles(
  files: ExecuteRequest['files'],
  engine: EngineName,
  profile: ResolvedProfile,
): { path: string; content: string }[] {
  if (engine === 'container') {
    const problem = containerFilesystemProblem(profile)
    if (problem !== null) throw new CordonError(ErrorCode.ENGINE_UNAVAILABLE, problem)
  }
  if (files === undefined || files.length === 0) return []
  if (engine !== 'container') {
    throw invalid('execution request', [
      {
        path: '$.files',
        message: `input files are for the container engine (this execution runs on ${engine})`,
      },
    ])
  }
  if (profile.filesystem.access === 'none') {
    throw invalid('execution request', [
      {
        path: '$.files',
        message: 'the profile gives the command no /workspace (filesystem.access is "none")',
      },
    ])
  }
  const seen = new Set<string>()
  let total = 0
  return files.map((file, index) => {
    const path = workspacePath(file.path, `files[${index}].path`)
    if (seen.has(path))
      throw invalid('execution request', [{ path: `$.files[${index}].path`, message: 'names a file twice' }])
    seen.add(path)
    total += file.data.byteLength
    if (total > profile.filesystem.quotaBytes) {
      throw new CordonError(
        ErrorCode.QUOTA_EXCEEDED,
        `the input files exceed the workspace quota of ${profile.filesystem.quotaBytes} bytes`,
      )
    }
    return { path, content: Buffer.from(file.data).toString('base64') }
  })
}

/**
 * What of a profile's filesystem section the container engine cannot honour, or null: its command
 * sees the whole of /workspace with the profile's access (no per-path globs), and its workspace lives
 * and dies with its sandbox (no kept agent files). Refusing beats quietly granting more.
 */
export function containerFilesystemProblem(profile: ResolvedProfile): string | null {
  const fs = profile.filesystem
  if (fs.scope === 'agent') {
    return 'the container engine does not keep an agent\'s files (filesystem.scope "agent"); use scope "execution"'
  }
  if (fs.deny.length > 0 || fs.paths.some((glob) => glob !== `${FILESYSTEM_ROOT}/**`)) {
    return 'the container engine cannot hold a command to filesystem.paths or filesystem.deny (it sees all of /workspace); remove them from the profile'
  }
  return null
}

/**
 * What makes two execution requests the same request, for idempotency: the agent and everything of
 * the body (input files by their content's hash), as SHA-256 of canonical JSON.
 */
function fingerprintOf(agent: string, request: ExecuteRequest): string {
  const files = (request.files ?? []).map((file) => [file.path, sha256Hex(file.data)])
  const canonical = JSON.stringify([
    agent,
    request.language,
    request.code,
    canonicalJSON(request.input),
    request.engine ?? null,
    files,
  ])
  return sha256Hex(canonical)
}

/** JSON with object keys sorted, so that the same value always reads the same. */
function canonicalJSON(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(canonicalJSON)
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, canonicalJSON(value[key] as JsonValue)]),
    )
  }
  return value
}

/** SHA-256 in hex: of a tool's code, a request's fingerprint, a stored declaration. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}
