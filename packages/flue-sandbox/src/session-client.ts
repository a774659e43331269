import { CordonApiError } from './errors.ts'
import type { ExecutionRecord } from './exec-result.ts'
import { Limiter } from './limiter.ts'

/** How to reach Cordon: the service's URL, an API key (scope `invoke`) and the agent to run as. */
export interface SessionClientOptions {
  /** The service's base URL (`http://` or `https://`, no credentials in it). */
  url: string
  /** A Cordon API key with the `invoke` scope. Sent as a bearer token; never logged or put in errors. */
  token: string
  /** The agent the sessions run as: its profile must allow the container engine and bash. */
  agent: string
  /** The sessions' idle timeout (1-3600 s; the server's default when unset). */
  idleTimeoutSeconds?: number | undefined
  /** The fetch to use (a Workers service binding's, a test's); the global one by default. */
  fetch?: typeof fetch | undefined
}

/** An entry of a workspace listing. */
export interface WorkspaceEntry {
  name: string
  type: 'file' | 'directory' | 'other'
  size: number
}

/** Requests one client has in flight at once: the server queues at most 8 per session. */
const IN_FLIGHT = 4
const SESSION_ID = /^ses_[A-Za-z0-9_-]{1,64}$/

/**
 * One Cordon container session, opened on first use and opened again when Cordon has ended it
 * (idle timeout, a limit, a changed profile: SESSION_NOT_FOUND), at most once per operation. The
 * token lives in a private field and goes only into the Authorization header.
 */
export class SessionClient {
  readonly #base: string
  readonly #origin: string
  readonly #token: string
  readonly #agent: string
  readonly #idle: number | undefined
  readonly #fetch: typeof fetch
  readonly #limiter = new Limiter(IN_FLIGHT)
  #session: string | null = null
  #opening: Promise<string> | null = null
  #closed = false
  #wallMs: number | null = null
  /** Why the last session ended, until a new one opens. */
  #ended: string | null = null
  /** Said once, by the next command, after a session replaced one that had ended. */
  #notice: string | null = null

  constructor(options: SessionClientOptions) {
    const url = parseURL(options.url)
    if (typeof options.token !== 'string' || !/^[\x21-\x7e]+$/.test(options.token))
      throw new TypeError('cordon: the token must be a non-empty API key of printable ASCII')
    if (typeof options.agent !== 'string' || options.agent === '')
      throw new TypeError('cordon: name the agent the sessions run as')
    this.#base = url.href.replace(/\/+$/, '')
    this.#origin = url.origin
    this.#token = options.token
    this.#agent = options.agent
    this.#idle = options.idleTimeoutSeconds
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis)
  }

  /** The current session's id, or null while none is open. */
  get sessionId(): string | null {
    return this.#session
  }

  /** The agent profile's wall-time limit, when it could be read at the last open. */
  get wallMs(): number | null {
    return this.#wallMs
  }

  /** Runs `op` in the session (opening one if needed), again in a new one if Cordon had ended it. */
  withSession<T>(op: (id: string) => Promise<T>): Promise<T> {
    return this.#limiter.run(async () => {
      const id = await this.#ensure()
      try {
        return await op(id)
      } catch (error) {
        if (!(error instanceof CordonApiError && error.code === 'SESSION_NOT_FOUND')) throw error
        this.forget(id, 'Cordon no longer had it (idle timeout, a limit, or a changed profile)')
        return op(await this.#ensure())
      }
    })
  }

  /** Drops the session after Cordon ended it; the next operation opens a new one. */
  forget(id: string, reason: string): void {
    if (this.#session !== id) return
    this.#session = null
    this.#ended = reason
  }

  /** The note a command owes after its session replaced an ended one (once). */
  takeNotice(): string | null {
    const notice = this.#notice
    this.#notice = null
    return notice
  }

  execute(id: string, code: string, signal?: AbortSignal): Promise<ExecutionRecord> {
    return this.#json('POST', `/v1/sessions/${id}/executions`, { json: { language: 'bash', code }, signal })
  }

  async readFile(id: string, relative: string): Promise<Uint8Array> {
    const response = await this.#send('GET', `/v1/sessions/${id}/files/${encodePath(relative)}`, {})
    return new Uint8Array(await response.arrayBuffer())
  }

  async writeFile(id: string, relative: string, data: Uint8Array): Promise<void> {
    const path = `/v1/sessions/${id}/files/${encodePath(relative)}`
    // A copy: fetch takes views of an ArrayBuffer only (the caller's may be shared).
    const body = new Uint8Array(data)
    const response = await this.#send('PUT', path, { body, contentType: 'application/octet-stream' })
    await response.body?.cancel()
  }

  async list(id: string, relative: string): Promise<WorkspaceEntry[]> {
    const query = relative === '' ? '' : `?path=${encodeURIComponent(relative)}`
    const answer = await this.#json<{ entries?: WorkspaceEntry[] }>('GET', `/v1/sessions/${id}/files${query}`)
    return answer.entries ?? []
  }

  async remove(id: string, relative: string): Promise<void> {
    await this.#send('DELETE', `/v1/sessions/${id}/files/${encodePath(relative)}`, {})
  }

  /** Whether Cordon still has the session. */
  async alive(id: string): Promise<boolean> {
    try {
      await this.#send('GET', `/v1/sessions/${id}`, {})
      return true
    } catch (error) {
      if (error instanceof CordonApiError && error.code === 'SESSION_NOT_FOUND') return false
      throw error
    }
  }

  /** Ends the session (DELETE) and refuses every later operation. */
  async close(): Promise<void> {
    this.#closed = true
    const id = this.#session
    this.#session = null
    if (id !== null) await this.#delete(id)
  }

  async #ensure(): Promise<string> {
    if (this.#closed) throw new CordonApiError('SANDBOX_CLOSED', 'this sandbox was closed', 0)
    if (this.#session !== null) return this.#session
    this.#opening ??= this.#open().finally(() => {
      this.#opening = null
    })
    return this.#opening
  }

  async #open(): Promise<string> {
    const body = this.#idle === undefined ? {} : { idleTimeoutSeconds: this.#idle }
    const view = await this.#json<{ id?: unknown }>(
      'POST',
      `/v1/agents/${encodeURIComponent(this.#agent)}/sessions`,
      { json: body },
    )
    if (typeof view.id !== 'string' || !SESSION_ID.test(view.id))
      throw new CordonApiError('BAD_ANSWER', 'the session Cordon opened has no usable id', 0)
    const id = view.id
    if (this.#closed) {
      await this.#delete(id)
      throw new CordonApiError('SANDBOX_CLOSED', 'this sandbox was closed', 0)
    }
    this.#wallMs = await this.#lookupWallMs()
    if (this.#ended !== null) {
      this.#notice = `the previous Cordon session had ended (${this.#ended}); this ran in a new session whose /workspace started empty`
      this.#ended = null
    }
    this.#session = id
    return id
  }

  /** The agent's effective wall-time limit, read through the API (null when it cannot be read). */
  async #lookupWallMs(): Promise<number | null> {
    try {
      const agent = await this.#json<{ sandbox?: unknown }>(
        'GET',
        `/v1/agents/${encodeURIComponent(this.#agent)}`,
      )
      let profile = agent.sandbox
      if (typeof profile === 'object' && profile !== null) {
        const inline = profile as { limits?: { wallMs?: unknown }; extends?: unknown }
        if (typeof inline.limits?.wallMs === 'number') return inline.limits.wallMs
        profile = inline.extends
      }
      if (typeof profile !== 'string') return null
      const resolved = await this.#json<{ limits?: { wallMs?: unknown } }>(
        'GET',
        `/v1/profiles/${encodeURIComponent(profile)}`,
      )
      return typeof resolved.limits?.wallMs === 'number' ? resolved.limits.wallMs : null
    } catch {
      return null
    }
  }

  async #delete(id: string): Promise<void> {
    try {
      await this.#send('DELETE', `/v1/sessions/${id}`, {})
    } catch (error) {
      if (!(error instanceof CordonApiError && error.code === 'SESSION_NOT_FOUND')) throw error
    }
  }

  async #json<T>(
    method: string,
    path: string,
    options: { json?: unknown; signal?: AbortSignal | undefined } = {},
  ): Promise<T> {
    const response = await this.#send(method, path, {
      ...(options.json === undefined
        ? {}
        : { body: JSON.stringify(options.json), contentType: 'application/json' }),
      signal: options.signal,
    })
    try {
      return (await response.json()) as T
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason
      throw new CordonApiError(
        'BAD_ANSWER',
        `Cordon's answer to ${method} was not JSON: ${describe(error)}`,
        0,
      )
    }
  }

  async #send(
    method: string,
    path: string,
    options: { body?: BodyInit; contentType?: string; signal?: AbortSignal | undefined },
  ): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}` }
    if (options.contentType !== undefined) headers['content-type'] = options.contentType
    let response: Response
    try {
      response = await this.#fetch(`${this.#base}${path}`, {
        method,
        headers,
        ...(options.body === undefined ? {} : { body: options.body }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      })
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason
      throw new CordonApiError('UNREACHABLE', `no answer from ${this.#origin}: ${describe(error)}`, 0)
    }
    if (response.ok) return response
    const text = await response.text().catch(() => '')
    let error: { code?: unknown; message?: unknown } | undefined
    try {
      error = (JSON.parse(text) as { error?: typeof error }).error
    } catch {}
    if (typeof error?.code === 'string')
      throw new CordonApiError(error.code, String(error.message ?? ''), response.status)
    throw new CordonApiError(`HTTP_${response.status}`, text.slice(0, 200), response.status)
  }
}

function parseURL(input: string): URL {
  let url: URL
  try {
    url = new URL(input)
  } catch {
    throw new TypeError('cordon: the url must be an absolute http(s) URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new TypeError('cordon: the url must be an http(s) URL')
  if (url.username !== '' || url.password !== '')
    throw new TypeError('cordon: put no credentials in the url; pass the API key as token')
  if (url.search !== '' || url.hash !== '') throw new TypeError('cordon: the url takes no query or fragment')
  return url
}

function encodePath(relative: string): string {
  return relative.split('/').map(encodeURIComponent).join('/')
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return 'failed'
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : ''
  return `${error.message}${cause}`.slice(0, 300)
}
