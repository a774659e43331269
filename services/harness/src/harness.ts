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
import { engineLimitProblem, SandboxSessions, type Supervisor } from '@cordon/executor'
import {
  type AgentDeclaration,
  type DocumentFormat,
  decideRun,
  FILESYSTEM_ROOT,
  parseDocument,
  type ResolvedProfile,
  type ReviewReport,
  type ReviewSubject,
  resolveProfile,
  reviewProfiles,
  validateAgent,
} from '@cordon/policy'
import {
  DEFAULT_EGRESS_LIMITS,
  type EgressOptions,
  systemResolver,
} from './bindings/egress/egress-options.ts'
import { fetchBinding } from './bindings/egress/fetch-binding.ts'
import type { BindingHandlers } from './bindings/execution-bindings.ts'
import { finishPlan, planExecution } from './bindings/execution-plan.ts'
import { fsBinding } from './bindings/fs-binding.ts'
import { kvBinding } from './bindings/kv-binding.ts'
import { ToolInputValidator } from './bindings/tool-input.ts'
import { toolsBinding } from './bindings/tools-binding.ts'
import type { BuiltinProfile } from './builtins.ts'
import { AgentFiles, agentSpace } from './files.ts'
import { type AgentProfiles, invalid, ProfileCatalog, type ProfileView } from './profile-catalog.ts'
import { SecretsAdmin } from './secrets-admin.ts'
import { DEFAULT_MAX_SESSIONS, DEFAULT_SESSION_IDLE_SECONDS, SessionManager } from './sessions.ts'
import type { AuditFilter, AuditRecord, AuditVerification, Store, StoredDocument } from './storage/store.ts'
import { workspacePath } from './workspace-path.ts'

const MAX_CACHED_AGENTS = 10_000

export interface HarnessOptions {
  store: Store
  supervisor: Supervisor
  /** Profiles every tenant sees, may extend, and may not overwrite. */
  builtinProfiles: ReadonlyMap<string, BuiltinProfile>
  /** Engines this deployment can run. */
  engines: readonly EngineName[]
  /** How guest `fetch` reaches the network (resolver, extra CAs, limits). */
  egress?: EgressOptions
  /**
   * Values `env:NAME` secrets may take, per tenant: only what the operator exposes to that tenant (by
   * default the variables listed in CORDON_ENV_SECRETS), never the service's whole environment, and
   * never one tenant's to another.
   */
  envSecrets?: EnvSecrets
  /** Container sessions: idle timeout (seconds) and how many one tenant may hold. */
  sessions?: { idleSeconds?: number; maxSessions?: number }
}

/** Tenant -> variable name -> value. */
export type EnvSecrets = Readonly<Record<string, Readonly<Record<string, string>>>>

/** What `review` looks at; a document comes as its text (for locations) and its parsed value. */
export type ReviewTarget =
  | { kind: 'document'; text: string; format: DocumentFormat; value: unknown }
  | { kind: 'profile'; name: string }
  | { kind: 'agent'; name: string }

export interface ExecuteRequest {
  language: Language
  code: string
  input: JsonValue
  engine?: EngineName | undefined
  /** Container engine: files put into `/workspace` before the command runs (paths under it). */
  files?: { path: string; data: Uint8Array }[] | undefined
}

/**
 * The mediate layer's entry point: declarations in, executions out. Every method is scoped to one
 * tenant; policy decides, the supervisor runs, the store remembers. Throws `CordonError` for client
 * mistakes; guest failures come back inside the execution record.
 */
export class Harness {
  readonly #store: Store
  readonly #supervisor: Supervisor
  readonly #profiles: ProfileCatalog
  readonly #engines: readonly EngineName[]
  /** Checks tool input against the tool's JSON Schema, off the main thread. */
  readonly #toolInput = new ToolInputValidator()
  /** Executions running in this process, by tenant and id: a retried idempotent request waits for its. */
  readonly #inflight = new Map<string, Promise<ExecutionRecord>>()
  /** What cancels each of them (POST /v1/executions/{id}/cancel), and their records as they began. */
  readonly #cancellers = new Map<string, AbortController>()
  readonly #running = new Map<string, ExecutionRecord>()
  /** Agents with their effective profile, as executions need them; dropped on any change. */
  readonly #runnable = new Map<string, RunnableAgent>()
  readonly #handlers: BindingHandlers
  /** The tenants' write-only secrets stores. */
  readonly secrets: SecretsAdmin
  /** Container sessions: one sandbox kept across executions. */
  readonly sessions: SessionManager
  readonly #envSecrets: EnvSecrets

  constructor(options: HarnessOptions) {
    this.#store = options.store
    this.#supervisor = options.supervisor
    this.#profiles = new ProfileCatalog(options.store, options.builtinProfiles)
    this.#engines = options.engines
    this.#envSecrets = options.envSecrets ?? {}
    this.secrets = new SecretsAdmin(options.store)
    const egress = options.egress ?? {}
    this.#handlers = {
      fetch: fetchBinding({
        resolver: egress.resolver ?? systemResolver,
        ca: egress.ca === undefined || egress.ca.length === 0 ? null : egress.ca,
        limits: { ...DEFAULT_EGRESS_LIMITS, ...egress.limits },
      }),
      kv: kvBinding,
      fs: fsBinding,
      tools: toolsBinding({
        handlers: () => this.#handlers,
        engines: options.engines,
        env: (tenant) => this.#envOf(tenant),
      }),
    }
    this.sessions = new SessionManager({
      store: this.#store,
      handlers: this.#handlers,
      engines: options.engines,
      sandboxes: new SandboxSessions(),
      runnable: (tenant, agent) => this.#runnableAgent(tenant, agent),
      env: (tenant) => this.#envOf(tenant),
      inputFiles,
      filesystemProblem: containerFilesystemProblem,
      idleSeconds: options.sessions?.idleSeconds ?? DEFAULT_SESSION_IDLE_SECONDS,
      maxSessions: options.sessions?.maxSessions ?? DEFAULT_MAX_SESSIONS,
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
    this.#store.putProfile(tenant, { name, document: JSON.stringify(document), source, format })
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
    this.#forget(tenant, name)
    this.#store.putAgent(tenant, { name, document: JSON.stringify(agent), source, format })
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
    // Its keys and kept files go with it. An execution of it still running writes on under the old
    // namespace, which no later agent of the same name ever sees.
    const namespace = agentNamespace(name, incarnation)
    this.#store.kv.drop(tenant, namespace)
    this.#store.files.dropSpace(tenant, agentSpace(namespace))
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
    signal?: AbortSignal,
    idempotencyKey?: string,
  ): Promise<ExecutionRecord> {
    const runnable = this.#runnableAgent(tenant, agentName)
    return this.#execute(tenant, agentName, runnable, runnable.profile, request, signal, idempotencyKey)
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
    signal?: AbortSignal,
    idempotencyKey?: string,
  ): Promise<ExecutionRecord> {
    const runnable = this.#runnableAgent(tenant, agentName)
    const tool = (runnable.agent.tools ?? []).find((candidate) => candidate.name === toolName)
    if (tool === undefined) {
      throw new CordonError(
        ErrorCode.TOOL_NOT_FOUND,
        `agent "${agentName}" declares no tool "${toolName.slice(0, 64)}"`,
      )
    }
    const problem = await this.#toolInput.check(tool.input, input)
    if (problem !== null) {
      const colon = problem.indexOf(': ')
      throw invalid('tool input', [
        colon > 0
          ? { path: problem.slice(0, colon), message: problem.slice(colon + 2) }
          : { path: '$', message: problem },
      ])
    }
    const profile = runnable.toolProfiles[toolName] ?? runnable.profile
    return this.#execute(
      tenant,
      agentName,
      runnable,
      profile,
      { language: tool.language, code: tool.code, input, engine: undefined },
      signal,
      idempotencyKey === undefined ? undefined : `tool:${toolName}:${idempotencyKey}`,
    )
  }

  async #execute(
    tenant: string,
    agentName: string,
    runnable: RunnableAgent,
    profile: ResolvedProfile,
    request: ExecuteRequest,
    signal: AbortSignal | undefined,
    idempotencyKey: string | undefined,
  ): Promise<ExecutionRecord> {
    const { agent, toolProfiles, namespace } = runnable
    const decision = decideRun(profile, { language: request.language, engine: request.engine })
    if (decision.effect === 'deny') throw new CordonError(ErrorCode[decision.code], decision.message)
    if (!this.#engines.includes(decision.engine)) {
      throw new CordonError(
        ErrorCode.ENGINE_UNAVAILABLE,
        `engine "${decision.engine}" is not available in this deployment (available: ${this.#engines.join(', ')})`,
      )
    }
    const limitProblem = engineLimitProblem(decision.engine, profile.limits)
    if (limitProblem !== null) throw new CordonError(ErrorCode.ENGINE_UNAVAILABLE, limitProblem)
    const files = inputFiles(request.files, decision.engine, profile)
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
      handlers: this.#handlers,
      env: this.#envOf(tenant),
    })
    const { record } = plan
    const fingerprint = idempotencyKey === undefined ? '' : fingerprintOf(agentName, request)
    if (idempotencyKey !== undefined) {
      const earlier = this.#store.claimIdempotencyKey(tenant, idempotencyKey, fingerprint, record.id)
      if (earlier !== null) return this.#replay(tenant, earlier, fingerprint)
    }
    // Cancellable by the client going away (its signal) and by POST /v1/executions/{id}/cancel.
    const canceller = new AbortController()
    const stop = signal === undefined ? canceller.signal : AbortSignal.any([signal, canceller.signal])
    // Queue first: a refusal (QUEUE_FULL) throws before anything is recorded (and frees the key).
    let pending: Promise<RunOutcome>
    try {
      pending = this.#supervisor.run(plan.job, tenant, stop, plan.bindings)
    } catch (error) {
      if (idempotencyKey !== undefined) this.#store.releaseIdempotencyKey(tenant, idempotencyKey, record.id)
      throw error
    }
    this.#store.beginExecution(tenant, record)
    // Refused after it was queued (queue deadline, shutdown): nothing ran, so the key is freed for
    // the retry the refusal asks for.
    const release =
      idempotencyKey === undefined
        ? undefined
        : () => this.#store.releaseIdempotencyKey(tenant, idempotencyKey, record.id)
    const running = this.#finish(tenant, plan, pending, release)
    const inflight = `${tenant}\u0000${record.id}`
    this.#inflight.set(inflight, running)
    this.#cancellers.set(inflight, canceller)
    this.#running.set(inflight, record)
    try {
      return await running
    } finally {
      this.#inflight.delete(inflight)
      this.#cancellers.delete(inflight)
      this.#running.delete(inflight)
    }
  }

  /** The tenant's executions running (or queued) in this service now, oldest first (at most `limit`). */
  runningExecutions(
    tenant: string,
    filter: { agent?: string | undefined; limit: number },
  ): Pick<ExecutionRecord, 'id' | 'agent' | 'engine' | 'language' | 'createdAt'>[] {
    const found: Pick<ExecutionRecord, 'id' | 'agent' | 'engine' | 'language' | 'createdAt'>[] = []
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
  async cancelExecution(tenant: string, id: string): Promise<ExecutionRecord> {
    const key = `${tenant}\u0000${id}`
    const canceller = this.#cancellers.get(key)
    const running = this.#inflight.get(key)
    if (canceller === undefined || running === undefined) {
      const record = this.getExecution(tenant, id)
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
   * request is a 409.
   */
  async #replay(
    tenant: string,
    earlier: { fingerprint: string; execution: string },
    fingerprint: string,
  ): Promise<ExecutionRecord> {
    if (earlier.fingerprint !== fingerprint) {
      throw new CordonError(
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
        'this Idempotency-Key was used for a different request; use a new key',
      )
    }
    const running = this.#inflight.get(`${tenant}\u0000${earlier.execution}`)
    if (running !== undefined) return running
    const record = this.#store.getExecution(tenant, earlier.execution)
    if (record === null) {
      throw new CordonError(
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
        'the first request with this Idempotency-Key left no execution; use a new key',
      )
    }
    return record
  }

  async #finish(
    tenant: string,
    plan: ReturnType<typeof planExecution>,
    pending: Promise<RunOutcome>,
    onRefused?: () => void,
  ): Promise<ExecutionRecord> {
    const { record } = plan
    let outcome: RunOutcome
    try {
      outcome = await pending
    } catch (error) {
      // Refused after it was queued (queue deadline, shutdown): the record must not stay `running`.
      const message = error instanceof Error ? error.message : 'refused'
      const refused: ExecutionRecord = {
        ...record,
        status: 'killed',
        error: { code: GuestErrorCode.CANCELLED, message },
        finishedAt: new Date().toISOString(),
      }
      await this.#store.finishExecution(tenant, refused)
      onRefused?.()
      throw error
    }
    const finished = finishPlan(plan, outcome)
    await this.#store.finishExecution(tenant, finished)
    return finished
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
      entry = { agent, namespace: agentNamespace(name, incarnation), ...this.profilesFor(tenant, agent) }
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

/** A declared tool as `GET /v1/agents/{name}/tools` lists it. */
export interface ToolView {
  name: string
  description: string | null
  input: Record<string, unknown>
  language: Language
}

interface RunnableAgent extends AgentProfiles {
  agent: AgentDeclaration
  namespace: string
}

/**
 * What makes two execution requests the same request, for idempotency: the agent and everything of
 * the body (input files by their content's hash), as SHA-256 of canonical JSON.
 */
function fingerprintOf(agent: string, request: ExecuteRequest): string {
  const files = (request.files ?? []).map((file) => [
    file.path,
    createHash('sha256').update(file.data).digest('hex'),
  ])
  const canonical = JSON.stringify([
    agent,
    request.language,
    request.code,
    canonicalJSON(request.input),
    request.engine ?? null,
    files,
  ])
  return createHash('sha256').update(canonical).digest('hex')
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
