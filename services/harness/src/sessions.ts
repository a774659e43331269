import { randomBytes } from 'node:crypto'
import {
  CordonError,
  type EngineName,
  ErrorCode,
  type ExecutionRecord,
  GuestErrorCode,
  type JsonValue,
} from '@cordon/contracts'
import type {
  BindingChannel,
  FileReply,
  SandboxSessions,
  SessionSandbox,
  WorkspaceEntry,
} from '@cordon/executor'
import { failure } from '@cordon/executor/portable'
import { type AgentDeclaration, decideRun, FILESYSTEM_ROOT, type ResolvedProfile } from '@cordon/policy'
import type { BindingHandlers } from './bindings/execution-bindings.ts'
import { finishPlan, planExecution } from './bindings/execution-plan.ts'
import type { AgentProfiles } from './profile-catalog.ts'
import type { Store } from './storage/store.ts'
import { workspacePath } from './workspace-path.ts'

/** How long a session lives without use unless it asks for less (CORDON_SESSION_IDLE_SECONDS). */
export const DEFAULT_SESSION_IDLE_SECONDS = 300
/** The longest idle timeout a session may ask for. */
export const MAX_SESSION_IDLE_SECONDS = 3600
/** Sessions one tenant may hold at once (CORDON_MAX_SESSIONS). */
export const DEFAULT_MAX_SESSIONS = 4
/** The largest file a session's files API reads or writes. */
export const SESSION_FILE_MAX_BYTES = 16 * 1024 * 1024
/** Error codes a sandbox's init may answer a file operation with. */
const FILE_CODES: ReadonlySet<string> = new Set([
  ErrorCode.FILE_NOT_FOUND,
  ErrorCode.IS_DIRECTORY,
  ErrorCode.NOT_DIRECTORY,
  ErrorCode.QUOTA_EXCEEDED,
  ErrorCode.PATH_INVALID,
  ErrorCode.FILE_TOO_LARGE,
])
/** Entries one listing answers at most. */
const MAX_LISTED = 1000

/** A session as the API shows it. */
export interface SessionView {
  id: string
  agent: string
  engine: EngineName
  createdAt: string
  lastUsedAt: string
  idleTimeoutSeconds: number
  expiresAt: string
}

/** What a session's execution request holds (the language is python or bash; the engine is always container). */
export interface SessionExecuteRequest {
  language: 'python' | 'bash' | 'javascript' | 'typescript'
  code: string
  input: JsonValue
  files?: { path: string; data: Uint8Array }[] | undefined
}

/** What the session manager needs of the harness. */
export interface SessionHost {
  store: Store
  handlers: BindingHandlers
  engines: readonly EngineName[]
  sandboxes: SessionSandboxes
  /** The agent with its effective profiles and storage namespace (AGENT_NOT_FOUND when none). */
  runnable(tenant: string, agent: string): AgentProfiles & { agent: AgentDeclaration; namespace: string }
  env(tenant: string): Readonly<Record<string, string>>
  inputFiles(
    files: SessionExecuteRequest['files'],
    engine: EngineName,
    profile: ResolvedProfile,
  ): { path: string; content: string }[]
  /** What of the profile's filesystem section the container engine cannot honour, or null. */
  filesystemProblem(profile: ResolvedProfile): string | null
  idleSeconds: number
  maxSessions: number
}

interface Session {
  id: string
  tenant: string
  agent: string
  namespace: string
  profile: ResolvedProfile
  profiles: AgentProfiles & { agent: AgentDeclaration }
  sandbox: SessionSandbox
  createdAt: Date
  lastUsedAt: Date
  idleMs: number
  timer: NodeJS.Timeout | null
  /** The resolved profile it was opened under, as JSON: a change of it (or of the agent) ends the session. */
  profileKey: string
  /** Operations taken and not finished: the idle timer runs only while there are none. */
  inflight: number
}

/**
 * Sessions of the container engine: `POST /v1/agents/{name}/sessions` starts one sandbox under the
 * agent's profile that keeps its workspace across executions and file operations, until it is
 * deleted, idles past its timeout, or an execution in it ends at a limit (that kills the sandbox).
 * Sessions live in this process only: a restart ends them (their sandboxes with it). Each tenant may
 * hold a bounded number; another tenant's session is "not found", never "forbidden".
 */
export class SessionManager {
  readonly #host: SessionHost
  readonly #sessions = new Map<string, Session>()
  /** Opens per tenant still starting their sandbox. */
  readonly #opening = new Map<string, number>()

  constructor(host: SessionHost) {
    this.#host = host
  }

  async open(
    tenant: string,
    agentName: string,
    options: { idleTimeoutSeconds?: number | undefined },
  ): Promise<SessionView> {
    const runnable = this.#host.runnable(tenant, agentName)
    const { profile } = runnable
    const decision = decideRun(profile, {
      language: profile.languages.find((l) => l === 'python' || l === 'bash') ?? 'python',
      engine: 'container',
    })
    if (decision.effect === 'deny')
      throw new CordonError(
        ErrorCode[decision.code],
        `sessions run on the container engine: ${decision.message}`,
      )
    if (!this.#host.engines.includes('container')) {
      throw new CordonError(
        ErrorCode.ENGINE_UNAVAILABLE,
        'the container engine is not available in this deployment',
      )
    }
    const fsProblem = this.#host.filesystemProblem(profile)
    if (fsProblem !== null) throw new CordonError(ErrorCode.ENGINE_UNAVAILABLE, fsProblem)
    // Opens still starting their sandbox count too, so that parallel requests cannot pass the cap.
    const held =
      [...this.#sessions.values()].filter((session) => session.tenant === tenant).length +
      (this.#opening.get(tenant) ?? 0)
    if (held >= this.#host.maxSessions) {
      throw new CordonError(
        ErrorCode.SESSION_LIMIT,
        `a tenant may hold at most ${this.#host.maxSessions} sessions at once`,
      )
    }
    const idleSeconds = options.idleTimeoutSeconds ?? this.#host.idleSeconds
    this.#opening.set(tenant, (this.#opening.get(tenant) ?? 0) + 1)
    let sandbox: SessionSandbox
    try {
      sandbox = await this.#host.sandboxes.open({
        limits: profile.limits,
        workspace: {
          access: profile.filesystem.access,
          quotaBytes: profile.filesystem.quotaBytes,
          files: [],
        },
      })
    } catch (error) {
      throw new CordonError(
        ErrorCode.ENGINE_UNAVAILABLE,
        `the session's sandbox could not start: ${error instanceof Error ? error.message.slice(0, 300) : 'unknown'}`,
      )
    } finally {
      const left = (this.#opening.get(tenant) ?? 1) - 1
      if (left === 0) this.#opening.delete(tenant)
      else this.#opening.set(tenant, left)
    }
    const now = new Date()
    const session: Session = {
      id: `ses_${Date.now().toString(36)}${randomBytes(10).toString('base64url')}`,
      tenant,
      agent: agentName,
      namespace: runnable.namespace,
      profile,
      profiles: runnable,
      sandbox,
      createdAt: now,
      lastUsedAt: now,
      idleMs: idleSeconds * 1000,
      timer: null,
      profileKey: JSON.stringify(profile),
      inflight: 0,
    }
    this.#sessions.set(session.id, session)
    this.#touch(session)
    this.#host.store.audit.append(tenant, {
      kind: 'session.open',
      agent: agentName,
      execution: null,
      decision: 'allow',
      code: 'ALLOWED',
      rule: null,
      detail: { session: session.id, idleTimeoutSeconds: idleSeconds },
    })
    return view(session)
  }

  get(tenant: string, id: string): SessionView {
    return view(this.#find(tenant, id))
  }

  list(tenant: string): SessionView[] {
    return [...this.#sessions.values()].filter((session) => session.tenant === tenant).map(view)
  }

  async close(tenant: string, id: string, reason = 'deleted'): Promise<void> {
    const session = this.#find(tenant, id)
    await this.#end(session, reason)
  }

  /** Runs code in the session's sandbox: an execution record like any other, stored and audited. */
  async execute(
    tenant: string,
    id: string,
    request: SessionExecuteRequest,
    signal?: AbortSignal,
  ): Promise<ExecutionRecord> {
    const session = this.#use(tenant, id)
    try {
      return await this.#execute(session, request, signal)
    } finally {
      this.#done(session)
    }
  }

  async #execute(
    session: Session,
    request: SessionExecuteRequest,
    signal: AbortSignal | undefined,
  ): Promise<ExecutionRecord> {
    const { tenant, profile } = session
    const decision = decideRun(profile, { language: request.language, engine: 'container' })
    if (decision.effect === 'deny') throw new CordonError(ErrorCode[decision.code], decision.message)
    const files = this.#host.inputFiles(request.files, 'container', profile)
    const plan = planExecution({
      tenant,
      agent: session.agent,
      namespace: session.namespace,
      profile,
      engine: 'container',
      language: request.language,
      code: request.code,
      input: request.input,
      files,
      tools: {
        agent: session.profiles.agent,
        toolProfiles: session.profiles.toolProfiles,
        depth: 0,
        budget: { calls: 0 },
      },
      store: this.#host.store,
      handlers: this.#host.handlers,
      env: this.#host.env(tenant),
    })
    const controller = new AbortController()
    let calls = 0
    // The supervisor counts a worker job's calls; a session's are counted here, against the same limit.
    const channel: BindingChannel = (call) => {
      calls += 1
      if (calls > plan.job.limits.bindingCalls) {
        return Promise.resolve(
          failure(
            'BINDING_LIMIT',
            `this execution may make at most ${plan.job.limits.bindingCalls} binding calls`,
          ),
        )
      }
      return plan.bindings.call(call, controller.signal, () =>
        Promise.reject(new Error('tools are not available to the container engine')),
      )
    }
    this.#host.store.beginExecution(tenant, plan.record)
    let outcome: Awaited<ReturnType<SessionSandbox['run']>>
    try {
      outcome = await session.sandbox.run(plan.job, channel, signal)
    } catch (error) {
      outcome = {
        status: 'killed',
        result: null,
        stdout: '',
        stderr: '',
        error: {
          code: GuestErrorCode.ENGINE_FAULT,
          message: error instanceof Error ? error.message.slice(0, 300) : 'failed',
        },
        usage: { cpuMs: 0, wallMs: 0, memoryBytes: 0 },
      }
    } finally {
      controller.abort()
    }
    const finished = finishPlan(plan, outcome)
    await this.#host.store.finishExecution(tenant, finished)
    if (!session.sandbox.alive) await this.#end(session, `an execution ended it (${finished.status})`)
    return finished
  }

  async readFile(tenant: string, id: string, path: string): Promise<Buffer> {
    const reply = await this.#file(tenant, id, (session) =>
      session.sandbox.read(workspacePath(path, 'the path'), SESSION_FILE_MAX_BYTES),
    )
    if (reply.t !== 'file') throw unexpected()
    return reply.data
  }

  async writeFile(
    tenant: string,
    id: string,
    path: string,
    data: Buffer,
  ): Promise<{ path: string; size: number; created: boolean }> {
    const session = this.#find(tenant, id)
    if (session.profile.filesystem.access !== 'read-write') {
      throw new CordonError(
        ErrorCode.NO_AGENT_FILESYSTEM,
        'the profile gives the session no writable /workspace',
      )
    }
    if (data.byteLength > Math.min(SESSION_FILE_MAX_BYTES, session.profile.filesystem.quotaBytes)) {
      throw new CordonError(ErrorCode.FILE_TOO_LARGE, 'the file is larger than the workspace takes')
    }
    const rel = workspacePath(path, 'the path')
    const reply = await this.#file(tenant, id, (session) => session.sandbox.write(rel, data))
    if (reply.t !== 'done') throw unexpected()
    return { path: `${FILESYSTEM_ROOT}/${rel}`, size: data.byteLength, created: reply.created }
  }

  async listFiles(tenant: string, id: string, path: string): Promise<WorkspaceEntry[]> {
    const reply = await this.#file(tenant, id, (session) =>
      session.sandbox.list(path === '' ? '' : workspacePath(path, 'the path'), MAX_LISTED),
    )
    if (reply.t !== 'entries') throw unexpected()
    return reply.entries
  }

  async removeFile(tenant: string, id: string, path: string): Promise<void> {
    const session = this.#find(tenant, id)
    if (session.profile.filesystem.access !== 'read-write') {
      throw new CordonError(
        ErrorCode.NO_AGENT_FILESYSTEM,
        'the profile gives the session no writable /workspace',
      )
    }
    const reply = await this.#file(tenant, id, (session) =>
      session.sandbox.remove(workspacePath(path, 'the path')),
    )
    if (reply.t !== 'done') throw unexpected()
  }

  /** Ends every session (the service's shutdown). */
  async closeAll(): Promise<void> {
    await Promise.all(
      [...this.#sessions.values()].map((session) => this.#end(session, 'the service stopped')),
    )
    await this.#host.sandboxes.close()
  }

  async #file(
    tenant: string,
    id: string,
    operation: (session: Session) => Promise<FileReply>,
  ): Promise<FileReply> {
    const session = this.#use(tenant, id)
    let reply: FileReply
    try {
      reply = await operation(session)
    } catch (error) {
      await this.#end(session, 'its sandbox failed')
      throw new CordonError(
        ErrorCode.SESSION_NOT_FOUND,
        `session ${session.id} ended: ${error instanceof Error ? error.message.slice(0, 200) : 'failed'}`,
      )
    } finally {
      this.#done(session)
    }
    if (reply.t === 'error') {
      // The init's codes are the files API's own (FILE_NOT_FOUND, IS_DIRECTORY, QUOTA_EXCEEDED...).
      const code = FILE_CODES.has(reply.code) ? (reply.code as ErrorCode) : ErrorCode.BAD_REQUEST
      throw new CordonError(code, reply.message)
    }
    return reply
  }

  #find(tenant: string, id: string): Session {
    const session = this.#sessions.get(id)
    if (session === undefined || session.tenant !== tenant) {
      throw new CordonError(ErrorCode.SESSION_NOT_FOUND, `no session with id "${id.slice(0, 64)}"`)
    }
    return session
  }

  /**
   * A session for one more operation: alive, still under the agent and profile it was opened with
   * (a deleted agent or a changed profile ends it: grants are never older than the declaration),
   * and with room in its queue. Its idle timer stops until the operation is `#done`.
   */
  #use(tenant: string, id: string): Session {
    const session = this.#find(tenant, id)
    const ended = (reason: string) => {
      this.#endQuietly(session, reason)
      return new CordonError(ErrorCode.SESSION_NOT_FOUND, `session ${id} ended: ${reason}`)
    }
    if (!session.sandbox.alive) throw ended('its sandbox ended')
    let current: ReturnType<SessionHost['runnable']>
    try {
      current = this.#host.runnable(tenant, session.agent)
    } catch {
      throw ended('its agent was deleted')
    }
    if (current.namespace !== session.namespace || JSON.stringify(current.profile) !== session.profileKey) {
      throw ended("its agent or the agent's profile changed")
    }
    if (session.sandbox.busy) {
      throw new CordonError(
        ErrorCode.SESSION_BUSY,
        'the session has too many operations waiting; retry later',
      )
    }
    session.inflight += 1
    if (session.timer !== null) clearTimeout(session.timer)
    session.timer = null
    session.lastUsedAt = new Date()
    return session
  }

  /** An operation is over: once none is left, the idle timer runs again. */
  #done(session: Session): void {
    session.inflight -= 1
    if (session.inflight === 0 && this.#sessions.get(session.id) === session) this.#touch(session)
  }

  #endQuietly(session: Session, reason: string): void {
    this.#end(session, reason).catch((error: unknown) => {
      console.error(`cordon: session ${session.id} did not end cleanly: ${String(error).slice(0, 200)}`)
    })
  }

  /** Restarts the idle timer: the session ends once it has not been used for its timeout. */
  #touch(session: Session): void {
    session.lastUsedAt = new Date()
    if (session.timer !== null) clearTimeout(session.timer)
    session.timer = setTimeout(() => this.#endQuietly(session, 'idle timeout'), session.idleMs)
    session.timer.unref()
  }

  async #end(session: Session, reason: string): Promise<void> {
    if (this.#sessions.get(session.id) !== session) return
    this.#sessions.delete(session.id)
    if (session.timer !== null) clearTimeout(session.timer)
    this.#host.store.audit.append(session.tenant, {
      kind: 'session.close',
      agent: session.agent,
      execution: null,
      decision: 'info',
      code: 'CLOSED',
      rule: null,
      detail: { session: session.id, reason },
    })
    await session.sandbox.close()
  }
}

function view(session: Session): SessionView {
  return {
    id: session.id,
    agent: session.agent,
    engine: 'container',
    createdAt: session.createdAt.toISOString(),
    lastUsedAt: session.lastUsedAt.toISOString(),
    idleTimeoutSeconds: session.idleMs / 1000,
    expiresAt: new Date(session.lastUsedAt.getTime() + session.idleMs).toISOString(),
  }
}

function unexpected(): CordonError {
  return new CordonError(ErrorCode.INTERNAL, 'the sandbox answered a file operation unexpectedly')
}

/** Where session sandboxes come from: the container engine's `SandboxSessions` on Node. */
export type SessionSandboxes = Pick<SandboxSessions, 'open' | 'close'>

/** For a deployment without container sessions: every open is refused, as the engine is unavailable. */
export const NO_SESSION_SANDBOXES: SessionSandboxes = {
  open: () => {
    throw new CordonError(
      ErrorCode.ENGINE_UNAVAILABLE,
      'container sessions are not available in this deployment',
    )
  },
  close: async () => {},
}
