import {
  CordonError,
  type EngineName,
  ErrorCode,
  type ExecutionRecord,
  GuestErrorCode,
  type JsonValue,
  type Language,
} from '@cordon/contracts'
import { engineLimitProblem, type JobRunner } from '@cordon/executor/portable'
import {
  type AgentDeclaration,
  type DocumentFormat,
  parseDocument,
  type ReviewReport,
  type ReviewSubject,
  resolveProfile,
  reviewProfiles,
  validateAgent,
} from '@cordon/policy'
import type { Unavailable } from './bindings/binding-context.ts'
import {
  DEFAULT_EGRESS_LIMITS,
  type EgressOptions,
  systemResolver,
} from './bindings/egress/egress-options.ts'
import { fetchBinding } from './bindings/egress/fetch-binding.ts'
import { nodeTransport } from './bindings/egress/http-hop.ts'
import type { BindingHandlers } from './bindings/execution-bindings.ts'
import { fsBinding } from './bindings/fs-binding.ts'
import { kvBinding } from './bindings/kv-binding.ts'
import { type ToolInputChecker, ToolInputValidator } from './bindings/tool-input.ts'
import { toolsBinding } from './bindings/tools-binding.ts'
import type { BuiltinProfile } from './builtins.ts'
import type { EventLog } from './execution-events.ts'
import {
  containerFilesystemProblem,
  type ExecuteRequest,
  Executions,
  inputFiles,
  type RunnableAgent,
  type StartRequest,
  type StoredResume,
  sha256Hex,
} from './executions.ts'
import { AgentFiles, agentSpace } from './files.ts'
import { type AgentProfiles, invalid, ProfileCatalog, type ProfileView } from './profile-catalog.ts'
import { AgentRuns } from './runs/agent-runs.ts'
import { type ModelCatalog, ProviderModels } from './runs/model-catalog.ts'
import { SecretsAdmin } from './secrets-admin.ts'
import {
  DEFAULT_MAX_SESSIONS,
  DEFAULT_SESSION_IDLE_SECONDS,
  NO_SESSION_SANDBOXES,
  SessionManager,
  type SessionSandboxes,
} from './sessions.ts'
import type {
  AuditFilter,
  AuditRecord,
  AuditVerification,
  InterruptedExecution,
  Store,
  StoredDocument,
} from './storage/store.ts'

export type { ExecuteRequest } from './executions.ts'

/** How a client runs an execution or a tool: its cancel signal, idempotency key, and start listener. */
export interface RunOptions {
  /** Aborted when the client goes away: the execution is cancelled. */
  signal?: AbortSignal | undefined
  idempotencyKey?: string | undefined
  /** Hears the execution's id once it runs (see `executionEvents`). */
  onStart?: ((id: string) => void) | undefined
}

const MAX_CACHED_AGENTS = 10_000
/**
 * Largest agent document stored (its validated JSON, in bytes): a bundle's skills may decompress and
 * escape to more than the request was, and a Durable Object's value holds at most 2 MB.
 */
export const MAX_AGENT_DOCUMENT_BYTES = 1536 * 1024
/** Times an execution is resumed after crashes before it is given up (a guest that crashes the service). */
export const MAX_RESUME_ATTEMPTS = 3
/** Interrupted executions resumed at once after a start. */
const RESUME_CONCURRENCY = 8
/** How long a resumed execution the queue refused waits before asking again. */
const RESUME_RETRY_MS = 500

export interface HarnessOptions {
  store: Store
  /** What runs the jobs: the Supervisor's worker processes on Node. */
  supervisor: JobRunner
  /** Profiles every tenant sees, may extend, and may not overwrite. */
  builtinProfiles: ReadonlyMap<string, BuiltinProfile>
  /** Engines this deployment can run. */
  engines: readonly EngineName[]
  /** How guest `fetch` reaches the network (resolver, extra CAs, limits). */
  egress?: EgressOptions
  /** Checks tool input against the tool's JSON Schema (default: in a thread of its own, on Node). */
  toolInput?: ToolInputChecker
  /**
   * Values `env:NAME` secrets may take, per tenant: only what the operator exposes to that tenant (by
   * default the variables listed in CORDON_ENV_SECRETS), never the service's whole environment, and
   * never one tenant's to another.
   */
  envSecrets?: EnvSecrets
  /**
   * Container sessions: idle timeout (seconds), how many one tenant may hold, and where their
   * sandboxes come from (the container engine's `SandboxSessions`; without it, none open).
   */
  sessions?: { idleSeconds?: number; maxSessions?: number; sandboxes?: SessionSandboxes }
  /**
   * Journal executions and their binding calls, so that a crash resumes them (default true); off only
   * to measure what the journal costs.
   */
  journal?: boolean
  /** The models agent runs call (default: the AI SDK's providers, without operator keys or endpoints). */
  models?: ModelCatalog
}

/** Tenant -> variable name -> value. */
export type EnvSecrets = Readonly<Record<string, Readonly<Record<string, string>>>>

/** What `review` looks at; a document comes as its text (for locations) and its parsed value. */
export type ReviewTarget =
  | { kind: 'document'; text: string; format: DocumentFormat; value: unknown }
  | { kind: 'profile'; name: string }
  | { kind: 'agent'; name: string }

/**
 * The mediate layer's entry point: declarations in, executions out. Every method is scoped to one
 * tenant; policy decides, the supervisor runs, the store remembers. Throws `CordonError` for client
 * mistakes; guest failures come back inside the execution record.
 */
export class Harness {
  readonly #store: Store
  readonly #supervisor: JobRunner
  readonly #profiles: ProfileCatalog
  readonly #engines: readonly EngineName[]
  /** Checks tool input against the tool's JSON Schema. */
  readonly #toolInput: ToolInputChecker
  readonly #executions: Executions
  /** Agents with their effective profile, as executions need them; dropped on any change. */
  readonly #runnable = new Map<string, RunnableAgent>()
  readonly #handlers: BindingHandlers
  /** The tenants' write-only secrets stores. */
  readonly secrets: SecretsAdmin
  /** Container sessions: one sandbox kept across executions. */
  readonly sessions: SessionManager
  /** Agent runs: the agent loop over the declaration's model, tools and skills. */
  readonly runs: AgentRuns
  readonly #envSecrets: EnvSecrets

  constructor(options: HarnessOptions) {
    this.#store = options.store
    this.#supervisor = options.supervisor
    this.#profiles = new ProfileCatalog(options.store, options.builtinProfiles)
    this.#engines = options.engines
    this.#toolInput = options.toolInput ?? new ToolInputValidator()
    const unavailable: Unavailable = (engine, language, limits) =>
      !options.engines.includes(engine)
        ? `engine "${engine}" is not available in this deployment (available: ${options.engines.join(', ')})`
        : (engineLimitProblem(engine, limits) ??
          options.supervisor.refusal?.(engine, language, limits) ??
          null)
    this.#envSecrets = options.envSecrets ?? {}
    this.secrets = new SecretsAdmin(options.store)
    const egress = options.egress ?? {}
    this.#handlers = {
      fetch: fetchBinding({
        transport: egress.transport ?? nodeTransport,
        resolver: egress.resolver ?? systemResolver,
        ca: egress.ca === undefined || egress.ca.length === 0 ? null : egress.ca,
        limits: { ...DEFAULT_EGRESS_LIMITS, ...egress.limits },
      }),
      kv: kvBinding,
      fs: fsBinding,
      tools: toolsBinding({
        handlers: () => this.#handlers,
        unavailable,
        toolInput: this.#toolInput,
        env: (tenant) => this.#envOf(tenant),
      }),
    }
    this.#executions = new Executions({
      store: this.#store,
      supervisor: this.#supervisor,
      unavailable,
      handlers: this.#handlers,
      env: (tenant) => this.#envOf(tenant),
      journal: options.journal ?? true,
    })
    this.sessions = new SessionManager({
      store: this.#store,
      handlers: this.#handlers,
      engines: options.engines,
      sandboxes: options.sessions?.sandboxes ?? NO_SESSION_SANDBOXES,
      runnable: (tenant, agent) => this.#runnableAgent(tenant, agent),
      env: (tenant) => this.#envOf(tenant),
      inputFiles,
      filesystemProblem: containerFilesystemProblem,
      idleSeconds: options.sessions?.idleSeconds ?? DEFAULT_SESSION_IDLE_SECONDS,
      maxSessions: options.sessions?.maxSessions ?? DEFAULT_MAX_SESSIONS,
    })
    this.runs = new AgentRuns({
      store: this.#store,
      models: options.models ?? new ProviderModels(),
      runnable: (tenant, agent) => this.#runnableAgent(tenant, agent),
      execute: (tenant, agent, request, runOptions) =>
        this.execute(tenant, agent, { ...request, engine: undefined }, runOptions),
      invokeTool: (tenant, agent, tool, input, runOptions) =>
        this.invokeTool(tenant, agent, tool, input, runOptions),
    })
  }

  /**
   * Stores a tenant's profile. It must resolve (its `extends` chain may name the tenant's profiles and
   * the built-ins, and may only narrow), and every profile and agent that depends on it must still
   * resolve with it in place.
   */
  putProfile(tenant: string, name: string, source: string, format: DocumentFormat): ProfileView {
    if (this.#profiles.isBuiltin(name)) {
      throw new CordonError(
        ErrorCode.BUILTIN_PROFILE,
        `"${name}" is a built-in profile and cannot be replaced`,
      )
    }
    const document = withName(parse(source, format), name)
    const profile = this.#profiles.check(tenant, name, document)
    const stored = JSON.stringify(document)
    this.#store.putProfile(tenant, { name, document: stored, source, format })
    this.#auditChange(tenant, 'profile.put', { profile: name, format, sha256: sha256Hex(stored) })
    this.#profiles.forget(tenant)
    this.#forget(tenant)
    return { profile, builtin: false }
  }

  getProfile(tenant: string, name: string): ProfileView {
    return this.#profiles.get(tenant, name)
  }

  listProfiles(tenant: string): ProfileView[] {
    return this.#profiles.list(tenant)
  }

  /**
   * Reviews for risk: a profile document (resolved against the tenant's profiles, not stored), a stored
   * or built-in profile by name, or a stored agent with the profiles it and its tools run under.
   */
  review(tenant: string, target: ReviewTarget): ReviewReport {
    return reviewProfiles([this.#reviewSubject(tenant, target)])
  }

  #reviewSubject(tenant: string, target: ReviewTarget): ReviewSubject {
    switch (target.kind) {
      case 'document': {
        // A document under review needs no name of its own.
        const parsed = target.value
        const unnamed =
          parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) && !('name' in parsed)
        const document = unnamed ? { ...parsed, name: 'request' } : parsed
        const result = resolveProfile(document, { lookup: this.#profiles.lookup(tenant) })
        if (!result.ok) throw invalid('profile', result.issues)
        return {
          profile: result.profile,
          source: { file: 'request', text: target.text, format: target.format },
        }
      }
      case 'profile': {
        const { profile } = this.getProfile(tenant, target.name)
        const builtin = this.#profiles.builtin(target.name)
        const stored = builtin === undefined ? this.#store.getProfile(tenant, target.name) : null
        const source =
          builtin?.source ??
          (stored === null
            ? undefined
            : { file: `profiles/${target.name}`, text: stored.source, format: stored.format })
        return { profile, ...(source === undefined ? {} : { source }) }
      }
      case 'agent': {
        const stored = this.#store.getAgent(tenant, target.name)
        if (stored === null)
          throw new CordonError(ErrorCode.AGENT_NOT_FOUND, `no agent named "${target.name}"`)
        const agent = JSON.parse(stored.document) as AgentDeclaration
        const { profile, toolProfiles } = this.profilesFor(tenant, agent)
        return {
          profile,
          agent,
          toolProfiles,
          source: { file: `agents/${target.name}`, text: stored.source, format: stored.format },
        }
      }
    }
  }

  putAgent(tenant: string, name: string, source: string, format: DocumentFormat): AgentDeclaration {
    const document = withName(parse(source, format), name)
    const validated = validateAgent(document)
    if (!validated.ok) throw invalid('agent', validated.issues)
    const agent = validated.agent
    // Every profile it names must exist now, and every inline one must resolve.
    this.#profiles.forAgent(tenant, agent)
    const stored = JSON.stringify(agent)
    const bytes = new TextEncoder().encode(stored).length
    if (bytes > MAX_AGENT_DOCUMENT_BYTES) {
      throw new CordonError(
        ErrorCode.PAYLOAD_TOO_LARGE,
        `the agent's validated document is ${bytes} bytes of JSON; at most ${MAX_AGENT_DOCUMENT_BYTES}`,
      )
    }
    this.#forget(tenant, name)
    this.#store.putAgent(tenant, { name, document: stored, source, format })
    this.#auditChange(tenant, 'agent.put', { agent: name, format, sha256: sha256Hex(stored) }, name)
    return agent
  }

  getAgent(tenant: string, name: string): AgentDeclaration {
    const stored = this.#store.getAgent(tenant, name)
    if (stored === null) throw new CordonError(ErrorCode.AGENT_NOT_FOUND, `no agent named "${name}"`)
    return JSON.parse(stored.document) as AgentDeclaration
  }

  listAgents(tenant: string): StoredDocument[] {
    return this.#store.listAgents(tenant)
  }

  deleteAgent(tenant: string, name: string): void {
    this.#forget(tenant, name)
    const incarnation = this.#store.agentIncarnation(tenant, name)
    if (incarnation === null || !this.#store.deleteAgent(tenant, name)) {
      throw new CordonError(ErrorCode.AGENT_NOT_FOUND, `no agent named "${name}"`)
    }
    this.#auditChange(tenant, 'agent.delete', { agent: name }, name)
    // Its keys and kept files go with it. An execution of it still running writes on under the old
    // namespace, which no later agent of the same name ever sees.
    const namespace = agentNamespace(name, incarnation)
    this.#store.kv.drop(tenant, namespace)
    this.#store.files.dropSpace(tenant, agentSpace(namespace))
  }

  /**
   * Audits a change to a declaration: which one, its format, and the SHA-256 of the stored (validated)
   * document, so that the log says which version was in force when (never the text itself).
   */
  #auditChange(
    tenant: string,
    kind: string,
    detail: { [key: string]: string },
    agent: string | null = null,
  ): void {
    this.#store.audit.append(tenant, {
      kind,
      agent,
      execution: null,
      decision: 'info',
      code: 'CHANGED',
      rule: null,
      detail,
    })
  }

  /** The effective profiles an agent runs under: its code's, and its tools' own where they declare one. */
  profilesFor(tenant: string, agent: AgentDeclaration): AgentProfiles {
    return this.#profiles.forAgent(tenant, agent)
  }

  /**
   * Runs code as an agent. A request the profile refuses is a 403 before anything runs; otherwise
   * the answer is the execution record, whatever the guest did.
   */
  async execute(
    tenant: string,
    agentName: string,
    request: ExecuteRequest,
    options: RunOptions = {},
  ): Promise<ExecutionRecord> {
    const runnable = this.#runnableAgent(tenant, agentName)
    return this.#executions.start({
      ...options,
      tenant,
      agent: agentName,
      runnable,
      profile: runnable.profile,
      request,
      resume: {
        kind: 'code',
        language: request.language,
        code: request.code,
        input: request.input,
        engine: request.engine ?? null,
        files: [],
      },
    })
  }

  /** The agent's declared tools, as the tool API lists them. */
  listTools(tenant: string, agentName: string): ToolView[] {
    const { agent } = this.#runnableAgent(tenant, agentName)
    return (agent.tools ?? []).map((tool) => ({
      name: tool.name,
      description: tool.description ?? null,
      input: tool.input,
      language: tool.language,
    }))
  }

  /**
   * Invokes one of the agent's declared tools: the input is validated against the tool's JSON Schema
   * (422 naming the failing path), then the tool's code runs with it as an execution of the agent,
   * under the tool's own profile when it declares one, else the agent's.
   */
  async invokeTool(
    tenant: string,
    agentName: string,
    toolName: string,
    input: JsonValue,
    options: RunOptions = {},
  ): Promise<ExecutionRecord> {
    const { idempotencyKey } = options
    const runnable = this.#runnableAgent(tenant, agentName)
    const tool = (runnable.agent.tools ?? []).find((candidate) => candidate.name === toolName)
    if (tool === undefined) {
      throw new CordonError(
        ErrorCode.TOOL_NOT_FOUND,
        `agent "${agentName}" declares no tool "${toolName.slice(0, 64)}"`,
      )
    }
    await this.#checkToolInput(tool, input)
    return this.#executions.start({
      ...options,
      tenant,
      agent: agentName,
      runnable,
      profile: runnable.toolProfiles[toolName] ?? runnable.profile,
      request: { language: tool.language, code: tool.code, input, engine: undefined },
      resume: { kind: 'tool', tool: toolName, input },
      idempotencyKey: idempotencyKey === undefined ? undefined : `tool:${toolName}:${idempotencyKey}`,
    })
  }

  async #checkToolInput(tool: Tool, input: JsonValue): Promise<void> {
    const problem = await this.#toolInput.check(tool.input, input)
    if (problem === null) return
    const colon = problem.indexOf(': ')
    throw invalid('tool input', [
      colon > 0
        ? { path: problem.slice(0, colon), message: problem.slice(colon + 2) }
        : { path: '$', message: problem },
    ])
  }

  /**
   * Resumes the executions a previous process left running (it crashed): each runs again, in the
   * background, with its journal, under the agent and profiles as they are now; its binding calls
   * that completed before answer their journaled replies (see `ExecutionBindings`). One that cannot
   * be resumed (a session's command, its agent gone or its request now refused, or interrupted
   * {@link MAX_RESUME_ATTEMPTS} times already) ends as killed / INTERRUPTED. Answers the counts;
   * `idle` resolves once every resumed execution has ended.
   */
  resumeInterrupted(): { resumed: number; abandoned: number; idle: Promise<void> } {
    const waiting: InterruptedExecution[] = []
    let abandoned = 0
    // Entries of executions that ended (a call that outlived its execution, a crash before the drop).
    this.#store.journal.sweep()
    for (const interrupted of this.#store.interruptedExecutions()) {
      const { tenant, record, resume, attempts } = interrupted
      const reason =
        resume === null
          ? 'the service restarted while this execution was running, and it cannot be resumed (a session command)'
          : attempts >= MAX_RESUME_ATTEMPTS
            ? `the service restarted while this execution was running, ${attempts + 1} times; it is not resumed again`
            : null
      if (reason === null) {
        waiting.push(interrupted)
        continue
      }
      abandoned++
      void this.#abandon(tenant, record, reason)
    }
    // Scratch filesystems of executions the previous process did not finish, but for those resuming
    // (their tools' included: `exec:<id>.<seq>`).
    const resuming = new Set(waiting.map(({ tenant, record }) => `${tenant}\u0000exec:${record.id}`))
    this.#store.files.dropScratchSpaces((tenant, space) => {
      const root = space.indexOf('.')
      return resuming.has(`${tenant}\u0000${root === -1 ? space : space.slice(0, root)}`)
    })
    // A retried request meanwhile (its idempotency key) waits for each one's final record.
    const queue = waiting.map((interrupted) => {
      const { promise, resolve } = Promise.withResolvers<void>()
      const signal = this.#executions.resuming(
        interrupted.tenant,
        interrupted.record,
        interrupted.attempts + 1,
        promise,
      )
      return { interrupted, signal, resolve }
    })
    const resumeNext = async (): Promise<void> => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        await this.#resume(next.interrupted, next.signal).finally(next.resolve)
      }
    }
    const resumed = waiting.length
    const idle = Promise.all(Array.from({ length: RESUME_CONCURRENCY }, resumeNext)).then(() => {})
    return { resumed, abandoned, idle }
  }

  async #resume(interrupted: InterruptedExecution, signal: AbortSignal): Promise<void> {
    const { tenant, record } = interrupted
    if (signal.aborted) {
      await this.#abandon(tenant, record, 'cancelled before it was resumed', GuestErrorCode.CANCELLED)
      return
    }
    let start: StartRequest
    try {
      start = { ...(await this.#resumeRequest(interrupted)), signal }
    } catch (error) {
      await this.#abandon(
        tenant,
        record,
        `the service restarted while this execution was running, and it cannot be resumed: ${messageOf(error)}`,
      )
      return
    }
    this.#store.audit.append(tenant, {
      kind: 'execution.resume',
      agent: record.agent,
      execution: record.id,
      decision: 'info',
      code: 'RESUMED',
      rule: null,
      detail: { attempt: interrupted.attempts + 1 },
    })
    for (;;) {
      try {
        await this.#executions.start(start)
        return
      } catch (error) {
        // Refused by a shutdown, it stays running for the next start; by a full queue, it waits its turn.
        if (isCode(error, ErrorCode.SHUTTING_DOWN)) return
        if (isCode(error, ErrorCode.QUEUE_FULL) || isCode(error, ErrorCode.QUEUE_TIMEOUT)) {
          await new Promise((resolve) => setTimeout(resolve, RESUME_RETRY_MS))
          continue
        }
        await this.#abandon(
          tenant,
          record,
          `the service restarted while this execution was running, and it cannot be resumed: ${messageOf(error)}`,
        )
        return
      }
    }
  }

  /** What starting an interrupted execution again takes, from its stored request and the agent as it is now. */
  async #resumeRequest(interrupted: InterruptedExecution): Promise<StartRequest> {
    const { tenant, record } = interrupted
    const resume = JSON.parse(interrupted.resume ?? 'null') as StoredResume
    const runnable = this.#runnableAgent(tenant, record.agent)
    if (runnable.incarnation !== resume.incarnation) {
      throw new CordonError(
        ErrorCode.AGENT_NOT_FOUND,
        `the agent "${record.agent}" was deleted and stored again`,
      )
    }
    const base = { tenant, agent: record.agent, runnable, resume, interrupted: record }
    if (resume.kind === 'code') {
      const { language, code, input, engine } = resume
      return {
        ...base,
        profile: runnable.profile,
        request: { language, code, input, engine: engine ?? undefined },
      }
    }
    const tool = (runnable.agent.tools ?? []).find((candidate) => candidate.name === resume.tool)
    if (tool === undefined) {
      throw new CordonError(
        ErrorCode.TOOL_NOT_FOUND,
        `the agent no longer declares the tool "${resume.tool}"`,
      )
    }
    if (sha256Hex(tool.code) !== resume.codeHash) {
      throw new CordonError(ErrorCode.TOOL_NOT_FOUND, `the tool "${resume.tool}" has changed since`)
    }
    await this.#checkToolInput(tool, resume.input)
    return {
      ...base,
      profile: runnable.toolProfiles[resume.tool] ?? runnable.profile,
      request: { language: tool.language, code: tool.code, input: resume.input, engine: undefined },
    }
  }

  /** Ends an interrupted execution that is not resumed (killed, INTERRUPTED unless said otherwise). */
  async #abandon(
    tenant: string,
    record: ExecutionRecord,
    reason: string,
    code: GuestErrorCode = GuestErrorCode.INTERRUPTED,
  ): Promise<void> {
    this.#store.audit.append(tenant, {
      kind: 'execution.resume',
      agent: record.agent,
      execution: record.id,
      decision: 'error',
      code,
      rule: null,
      detail: { reason: reason.slice(0, 300) },
    })
    await this.#store.abandonExecution(tenant, record.id, reason, code).catch(() => {})
  }

  /** The tenant's executions running (or queued) in this service now, oldest first (at most `limit`). */
  runningExecutions(
    tenant: string,
    filter: { agent?: string | undefined; limit: number },
  ): Pick<ExecutionRecord, 'id' | 'agent' | 'engine' | 'language' | 'createdAt'>[] {
    return this.#executions.running(tenant, filter)
  }

  /**
   * Cancels an execution running (or queued) in this service: it ends as `killed` / `CANCELLED`, and
   * its final record is the answer. An execution that already ended is a 409; an unknown one a 404.
   */
  cancelExecution(tenant: string, id: string): Promise<ExecutionRecord> {
    return this.#executions.cancel(tenant, id)
  }

  #envOf(tenant: string): Readonly<Record<string, string>> {
    return Object.hasOwn(this.#envSecrets, tenant) ? (this.#envSecrets[tenant] ?? {}) : {}
  }

  #runnableAgent(tenant: string, name: string): RunnableAgent {
    const key = `${tenant}\u0000${name}`
    let entry = this.#runnable.get(key)
    if (entry === undefined) {
      const agent = this.getAgent(tenant, name)
      const incarnation = this.#store.agentIncarnation(tenant, name) ?? ''
      entry = {
        agent,
        namespace: agentNamespace(name, incarnation),
        incarnation,
        ...this.profilesFor(tenant, agent),
      }
      if (this.#runnable.size >= MAX_CACHED_AGENTS) this.#runnable.clear()
      this.#runnable.set(key, entry)
    }
    return entry
  }

  /** Drops cached agents: one, or all of a tenant's (a profile change may affect any of them). */
  #forget(tenant: string, name?: string): void {
    if (name !== undefined) {
      this.#runnable.delete(`${tenant}\u0000${name}`)
      return
    }
    for (const key of this.#runnable.keys()) if (key.startsWith(`${tenant}\u0000`)) this.#runnable.delete(key)
  }

  /** The tenant's audit records, oldest first, from after the `after` cursor. */
  audit(tenant: string, filter: AuditFilter): AuditRecord[] {
    return this.#store.audit.list(tenant, filter)
  }

  /**
   * Audits a request a tenant's key was refused (it lacks the scope): the route, never the body or
   * the token. Requests without a valid token belong to no tenant and are not in any tenant's log.
   */
  recordAuthFailure(tenant: string, what: { method: string; path: string; reason: string }): void {
    this.#store.audit.append(tenant, {
      kind: 'auth.denied',
      agent: null,
      execution: null,
      decision: 'deny',
      code: 'FORBIDDEN',
      rule: null,
      detail: {
        method: what.method.slice(0, 16),
        route: what.path.slice(0, 200),
        reason: what.reason.slice(0, 200),
      },
    })
  }

  /** Checks the tenant's audit hash chain (see `AuditStore.verify`). */
  verifyAudit(tenant: string): AuditVerification {
    return this.#store.audit.verify(tenant)
  }

  /**
   * An execution's event stream, to follow: its live log while it runs here (and a while after its
   * end, if a client watched it), else its stored record (404 for an unknown id).
   */
  executionEvents(tenant: string, id: string): { log: EventLog } | { record: ExecutionRecord } {
    const log = this.#executions.events(tenant, id)
    return log === undefined ? { record: this.getExecution(tenant, id) } : { log }
  }

  getExecution(tenant: string, id: string): ExecutionRecord {
    const record = this.#store.getExecution(tenant, id)
    if (record === null) throw new CordonError(ErrorCode.EXECUTION_NOT_FOUND, `no execution with id "${id}"`)
    return record
  }

  /** An agent's kept files, for the files API (see `AgentFiles`); AGENT_NOT_FOUND when there is no such agent. */
  agentFiles(tenant: string, agent: string): AgentFiles {
    const { profile, namespace } = this.#runnableAgent(tenant, agent)
    return new AgentFiles({ store: this.#store, tenant, agent, namespace, profile })
  }
}

/** A declared tool as `GET /v1/agents/{name}/tools` lists it. */
export interface ToolView {
  name: string
  description: string | null
  input: Record<string, unknown>
  language: Language
}

/** Where an agent's keys and kept files live: its name and incarnation. */
function agentNamespace(name: string, incarnation: string): string {
  return `${name}#${incarnation}`
}

function parse(source: string, format: DocumentFormat): unknown {
  const parsed = parseDocument(source, format)
  if (!parsed.ok) throw new CordonError(ErrorCode.MALFORMED_BODY, parsed.message)
  return parsed.value
}

/** The URL names the resource: a body may repeat the name but never contradict it. */
function withName(document: unknown, name: string): unknown {
  if (document === null || typeof document !== 'object' || Array.isArray(document)) {
    throw invalid('document', [{ path: '$', message: 'must be an object' }])
  }
  const named = document as Record<string, unknown>
  if (named.name !== undefined && named.name !== name) {
    const given = typeof named.name === 'string' ? `"${named.name.slice(0, 100)}"` : `a ${typeof named.name}`
    throw new CordonError(ErrorCode.NAME_MISMATCH, `the body names ${given} but the URL names "${name}"`)
  }
  return { ...named, name }
}

type Tool = NonNullable<AgentDeclaration['tools']>[number]

function isCode(error: unknown, code: string): boolean {
  return error instanceof CordonError && error.code === code
}

function messageOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).slice(0, 300)
}
