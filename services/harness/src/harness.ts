import {
  CordonError,
  type EngineName,
  ErrorCode,
  type ExecutionRecord,
  GuestErrorCode,
  type Issue,
  type JsonValue,
  type Language,
  type RunOutcome,
} from '@cordon/contracts'
import type { Supervisor } from '@cordon/executor'
import {
  type AgentDeclaration,
  type DocumentFormat,
  decideRun,
  parseDocument,
  type ResolvedProfile,
  resolveInlineProfile,
  resolveProfile,
  validateAgent,
} from '@cordon/policy'
import { newExecutionId } from './ids.ts'
import type { Store, StoredDocument } from './storage/store.ts'

const MAX_CACHED_AGENTS = 10_000

export interface HarnessOptions {
  store: Store
  supervisor: Supervisor
  /** Profiles every tenant sees and none may overwrite. */
  builtinProfiles: ReadonlyMap<string, ResolvedProfile>
  /** Engines this deployment can run. */
  engines: readonly EngineName[]
}

export interface ExecuteRequest {
  language: Language
  code: string
  input: JsonValue
  engine?: EngineName | undefined
}

export interface ProfileView {
  profile: ResolvedProfile
  builtin: boolean
}

/**
 * The mediate layer's entry point: declarations in, executions out. Every method is scoped to one
 * tenant; policy decides, the supervisor runs, the store remembers. Throws `CordonError` for client
 * mistakes; guest failures come back inside the execution record.
 */
export class Harness {
  readonly #store: Store
  readonly #supervisor: Supervisor
  readonly #builtins: ReadonlyMap<string, ResolvedProfile>
  readonly #engines: readonly EngineName[]
  /** Agents with their effective profile, as executions need them; dropped on any change. */
  readonly #runnable = new Map<string, { agent: AgentDeclaration; profile: ResolvedProfile }>()

  constructor(options: HarnessOptions) {
    this.#store = options.store
    this.#supervisor = options.supervisor
    this.#builtins = options.builtinProfiles
    this.#engines = options.engines
  }

  putProfile(tenant: string, name: string, source: string, format: DocumentFormat): ProfileView {
    if (this.#builtins.has(name)) {
      throw new CordonError(
        ErrorCode.BUILTIN_PROFILE,
        `"${name}" is a built-in profile and cannot be replaced`,
      )
    }
    const document = withName(parse(source, format), name)
    const resolved = resolveProfile(document)
    if (!resolved.ok) throw invalid('profile', resolved.issues)
    this.#forget(tenant)
    this.#store.putProfile(tenant, { name, document: JSON.stringify(resolved.profile), source, format })
    return { profile: resolved.profile, builtin: false }
  }

  getProfile(tenant: string, name: string): ProfileView {
    const builtin = this.#builtins.get(name)
    if (builtin !== undefined) return { profile: builtin, builtin: true }
    const stored = this.#store.getProfile(tenant, name)
    if (stored === null) throw new CordonError(ErrorCode.PROFILE_NOT_FOUND, `no profile named "${name}"`)
    return { profile: revalidate(resolveProfile(JSON.parse(stored.document)), name), builtin: false }
  }

  listProfiles(tenant: string): ProfileView[] {
    const builtins = [...this.#builtins.values()].map((profile) => ({ profile, builtin: true }))
    const own = this.#store.listProfiles(tenant).map((stored) => ({
      profile: revalidate(resolveProfile(JSON.parse(stored.document)), stored.name),
      builtin: false,
    }))
    return [...builtins, ...own]
  }

  putAgent(tenant: string, name: string, source: string, format: DocumentFormat): AgentDeclaration {
    const document = withName(parse(source, format), name)
    const validated = validateAgent(document)
    if (!validated.ok) throw invalid('agent', validated.issues)
    const agent = validated.agent
    // The profile must exist now; an inline one must itself be valid.
    if (typeof agent.sandbox === 'string') this.getProfile(tenant, agent.sandbox)
    else {
      const inline = resolveInlineProfile(agent)
      if (inline !== null && !inline.ok) {
        throw invalid(
          'agent',
          inline.issues.map((i) => ({ ...i, path: i.path.replace(/^\$/, '$.sandbox') })),
        )
      }
    }
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
    if (!this.#store.deleteAgent(tenant, name)) {
      throw new CordonError(ErrorCode.AGENT_NOT_FOUND, `no agent named "${name}"`)
    }
  }

  /** The effective profile an agent runs under. */
  profileFor(tenant: string, agent: AgentDeclaration): ResolvedProfile {
    if (typeof agent.sandbox === 'string') return this.getProfile(tenant, agent.sandbox).profile
    const inline = resolveInlineProfile(agent)
    if (inline === null || !inline.ok) throw invalid('agent', inline?.ok === false ? inline.issues : [])
    return inline.profile
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
  ): Promise<ExecutionRecord> {
    const { profile } = this.#runnableAgent(tenant, agentName)
    const decision = decideRun(profile, { language: request.language, engine: request.engine })
    if (decision.effect === 'deny') throw new CordonError(ErrorCode[decision.code], decision.message)
    if (!this.#engines.includes(decision.engine)) {
      throw new CordonError(
        ErrorCode.ENGINE_UNAVAILABLE,
        `engine "${decision.engine}" is not available in this deployment (available: ${this.#engines.join(', ')})`,
      )
    }
    const createdAt = new Date().toISOString()
    const record: ExecutionRecord = {
      id: newExecutionId(),
      agent: agentName,
      engine: decision.engine,
      language: request.language,
      status: 'ok',
      result: null,
      stdout: '',
      stderr: '',
      error: null,
      usage: { cpuMs: 0, wallMs: 0, memoryBytes: 0 },
      createdAt,
      finishedAt: null,
    }
    // Queue first: a refusal (QUEUE_FULL) throws before anything is recorded.
    const pending = this.#supervisor.run(
      {
        engine: decision.engine,
        language: request.language,
        code: request.code,
        inputJSON: JSON.stringify(request.input),
        limits: { ...profile.limits },
        tenantKey: tenant,
      },
      tenant,
      signal,
    )
    this.#store.beginExecution(tenant, record)
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
      throw error
    }
    const finished: ExecutionRecord = { ...record, ...outcome, finishedAt: new Date().toISOString() }
    await this.#store.finishExecution(tenant, finished)
    return finished
  }

  #runnableAgent(tenant: string, name: string): { agent: AgentDeclaration; profile: ResolvedProfile } {
    const key = `${tenant}\u0000${name}`
    let entry = this.#runnable.get(key)
    if (entry === undefined) {
      const agent = this.getAgent(tenant, name)
      entry = { agent, profile: this.profileFor(tenant, agent) }
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

  getExecution(tenant: string, id: string): ExecutionRecord {
    const record = this.#store.getExecution(tenant, id)
    if (record === null) throw new CordonError(ErrorCode.EXECUTION_NOT_FOUND, `no execution with id "${id}"`)
    return record
  }
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

function invalid(what: string, issues: Issue[]): CordonError {
  const first = issues[0]
  const summary = first === undefined ? '' : `: ${first.path} ${first.message}`
  return new CordonError(ErrorCode.VALIDATION_FAILED, `invalid ${what}${summary}`, issues)
}

/** Stored profiles were validated on write; re-checking on read guards against edited rows. */
function revalidate(result: ReturnType<typeof resolveProfile>, name: string): ResolvedProfile {
  if (!result.ok) throw new Error(`stored profile "${name}" no longer validates`)
  return result.profile
}
