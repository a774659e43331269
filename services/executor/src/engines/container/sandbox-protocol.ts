import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { parseJsonBounded, type RunOutcome } from '@cordon/contracts'
import { FILESYSTEM_ROOT, type Limits, normalisePath } from '@cordon/policy'
import { type BindingReply, failure, isBindingReply, NO_GRANTS } from '../../bridge/bridge.ts'
import type { BindingChannel, RunJob } from '../../engine.ts'
import { EGRESS_TOKEN_VARIABLE } from '../cloudflare-sandbox/sandbox-control-engine.ts'
import { SandboxSessions, type SessionSandbox } from './sessions.ts'

// The container control protocol of `@cloudflare/sandbox` (the HTTP API its container serves on port
// 3000, which the SDK's `SandboxClient` speaks), served by Cordon's own container engine: each session
// is a bubblewrap sandbox with its cgroup limits. It stands in for Cloudflare's container where there
// is no Docker (development, tests), so the Cloudflare adapter runs against the real client code.
// The subset served: ping, version, sessions, execute (and its event stream, sent when the command
// ends), files (write, read, mkdir, delete, exists, list).

/** The version this server speaks (the SDK's container image it stands in for). */
export const SANDBOX_PROTOCOL_VERSION = '0.12.10'

export interface SandboxProtocolOptions {
  port?: number
  host?: string
  /** Limits of every command (its wall time is the request's `timeoutMs`, at most `wallMs`). */
  limits?: Partial<Limits>
  /** Bytes of each session's `/workspace` (tmpfs). */
  workspaceBytes?: number
  /** Sessions open at once; one more is refused. */
  maxSessions?: number
  /** A session unused this long is ended (default 10 minutes): a client that went away leaves none. */
  idleMs?: number
  /**
   * A bearer token every request must carry (`Authorization: Bearer <token>`). Required when the
   * server listens on anything but a loopback address: whoever reaches it can run commands.
   */
  token?: string
  /**
   * Where the sandboxes' HTTP egress goes, as Cloudflare delivers a container's outbound requests to
   * the Worker's outbound handler: a session created with `CORDON_EGRESS_TOKEN` in its env gets an
   * HTTP proxy, and each plain-HTTP request it makes is POSTed here as `{ token, args }` (the fetch
   * binding's arguments); the answer is the binding's reply. Tunnels (https through the proxy) are
   * refused: Cloudflare intercepts TLS itself, which this stand-in does not. Without it, no egress.
   */
  outbound?: string
}

/** Bytes of one outbound answer the server reads at most (a reply body of 2 MiB, base64, and its head). */
const MAX_OUTBOUND_REPLY_BYTES = 4 * 1024 * 1024

const DEFAULT_LIMITS: Limits = {
  cpuMs: 60_000,
  wallMs: 120_000,
  memoryMb: 256,
  outputBytes: 4 * 1024 * 1024,
  bindingCalls: 0,
  processes: 64,
  openFiles: 256,
}
const MAX_BODY_BYTES = 32 * 1024 * 1024
const MAX_READ_BYTES = 16 * 1024 * 1024

interface Session {
  /** Null while its sandbox starts (the id and the slot are taken first). */
  sandbox: SessionSandbox | null
  env: Record<string, string>
  /** The egress grant the session was created with (see `outbound`), or null: no egress. */
  egress: string | null
  cwd: string
  usedAt: number
}

type OpenSession = Session & { sandbox: SessionSandbox }

class ProtocolError extends Error {
  readonly status: number
  readonly code: string
  constructor(status: number, code: string, message: string) {
    super(message)
    this.status = status
    this.code = code
  }
}

export interface SandboxProtocolServer {
  url: string
  close(): Promise<void>
}

/** Starts the server; answers its base URL (`http://127.0.0.1:<port>`). */
export async function startSandboxProtocolServer(
  options: SandboxProtocolOptions = {},
): Promise<SandboxProtocolServer> {
  const limits: Limits = { ...DEFAULT_LIMITS, ...options.limits }
  const workspaceBytes = options.workspaceBytes ?? 256 * 1024 * 1024
  const maxSessions = options.maxSessions ?? 16
  const idleMs = options.idleMs ?? 10 * 60_000
  const host = options.host ?? '127.0.0.1'
  if (options.token === undefined && !/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(host)) {
    throw new Error(`a sandbox protocol server on ${host} needs a token: whoever reaches it can run commands`)
  }
  const sandboxes = new SandboxSessions()
  const sessions = new Map<string, Session>()

  const session = (id: unknown): OpenSession => {
    const found = typeof id === 'string' ? sessions.get(id) : undefined
    if (found !== undefined && found.sandbox === null) {
      throw new ProtocolError(409, 'SESSION_STARTING', `session "${String(id)}" is still starting`)
    }
    if (found?.sandbox == null || !found.sandbox.alive) {
      if (typeof id === 'string') sessions.delete(id)
      throw new ProtocolError(404, 'SESSION_NOT_FOUND', `no session "${String(id)}"`)
    }
    if (found.sandbox.busy) {
      throw new ProtocolError(429, 'SESSION_BUSY', `session "${String(id)}" has too many operations waiting`)
    }
    found.usedAt = Date.now()
    return found as OpenSession
  }
  // Sessions nobody used for a while end: a client that went away (an evicted Worker) leaves none.
  const sweeper = setInterval(
    () => {
      const cutoff = Date.now() - idleMs
      for (const [id, found] of sessions) {
        if (found.sandbox === null || found.usedAt > cutoff) continue
        sessions.delete(id)
        void found.sandbox.close()
      }
    },
    Math.min(idleMs, 30_000),
  )
  sweeper.unref()
  /** Runs a shell command in a session, as a container job of the server's limits. */
  const shell = (target: OpenSession, command: string, timeoutMs?: number): Promise<RunOutcome> => {
    const exports = Object.entries(target.env).map(([name, value]) => `export ${name}=${quote(value)}`)
    const job: RunJob = {
      engine: 'container',
      language: 'bash',
      code: [...exports, `cd ${quote(target.cwd)} || exit 1`, command].join('\n'),
      inputJSON: 'null',
      limits: { ...limits, wallMs: Math.min(limits.wallMs, timeoutMs ?? limits.wallMs) },
      tenantKey: 'sandbox-protocol',
      workspace: { access: 'read-write', quotaBytes: workspaceBytes, files: [] },
    }
    const egress =
      target.egress === null || options.outbound === undefined
        ? undefined
        : outboundChannel(options.outbound, target.egress, options.token)
    return target.sandbox.run(
      egress === undefined ? job : { ...job, grants: { ...NO_GRANTS, fetch: true } },
      egress,
    )
  }

  const routes: Record<string, (body: Record<string, unknown>) => Promise<unknown>> = {
    'POST /api/session/create': async (body) => {
      const id = text(body.id, 'id')
      if (id.length > 128) throw new ProtocolError(400, 'VALIDATION_FAILED', 'id is too long')
      if (sessions.has(id)) throw new ProtocolError(409, 'SESSION_ALREADY_EXISTS', `session "${id}" exists`)
      if (sessions.size >= maxSessions) {
        throw new ProtocolError(503, 'CONTAINER_UNAVAILABLE', 'too many sessions')
      }
      // The id and the slot are taken before the sandbox starts: requests that race are refused.
      const entry: Session = {
        sandbox: null,
        env: withoutEgress(stringRecord(body.env)),
        egress:
          typeof (body.env as Record<string, unknown> | undefined)?.[EGRESS_TOKEN_VARIABLE] === 'string'
            ? ((body.env as Record<string, string>)[EGRESS_TOKEN_VARIABLE] as string)
            : null,
        cwd: optionalText(body.cwd) ?? '/workspace',
        usedAt: Date.now(),
      }
      sessions.set(id, entry)
      let sandbox: SessionSandbox
      try {
        sandbox = await sandboxes.open({
          limits,
          workspace: { access: 'read-write', quotaBytes: workspaceBytes, files: [] },
        })
      } catch (error) {
        sessions.delete(id)
        throw error
      }
      entry.sandbox = sandbox
      // Deleted while it started: it ends now.
      if (sessions.get(id) !== entry) {
        await sandbox.close()
        throw new ProtocolError(404, 'SESSION_NOT_FOUND', `session "${id}" was deleted while it started`)
      }
      return { success: true, id, message: 'session created' }
    },
    'POST /api/session/delete': async (body) => {
      const id = text(body.sessionId, 'sessionId')
      const found = sessions.get(id)
      sessions.delete(id)
      await found?.sandbox?.close()
      return { success: true, sessionId: id }
    },
    'POST /api/execute': async (body) => {
      const command = text(body.command, 'command')
      const outcome = await shell(session(body.sessionId), command, optionalNumber(body.timeoutMs))
      return executed(command, outcome)
    },
    'POST /api/write': async (body) => {
      const path = text(body.path, 'path')
      if (typeof body.content !== 'string') {
        throw new ProtocolError(400, 'VALIDATION_FAILED', 'content must be a string')
      }
      const content = body.content
      const data = body.encoding === 'base64' ? Buffer.from(content, 'base64') : Buffer.from(content, 'utf8')
      fileReply(await session(body.sessionId).sandbox.write(inWorkspace(path), data), path)
      return { success: true, path, bytesWritten: data.length }
    },
    'POST /api/read': async (body) => {
      const path = text(body.path, 'path')
      const reply = fileReply(
        await session(body.sessionId).sandbox.read(inWorkspace(path), MAX_READ_BYTES),
        path,
      )
      if (reply.t !== 'file') throw new ProtocolError(400, 'IS_DIRECTORY', `${path} is a directory`)
      const base64 = body.encoding === 'base64' || !isUtf8(reply.data)
      return {
        success: true,
        path,
        content: reply.data.toString(base64 ? 'base64' : 'utf8'),
        encoding: base64 ? 'base64' : 'utf-8',
        isBinary: base64,
        mimeType: base64 ? 'application/octet-stream' : 'text/plain',
        size: reply.size,
      }
    },
    'POST /api/mkdir': async (body) => {
      const path = text(body.path, 'path')
      const flag = body.recursive === true ? '-p ' : ''
      const outcome = await shell(session(body.sessionId), `mkdir ${flag}-- ${quote(path)}`)
      if (outcome.exitCode !== 0) throw new ProtocolError(400, 'VALIDATION_FAILED', outcome.stderr.trim())
      return { success: true, path, recursive: body.recursive === true }
    },
    'POST /api/delete': async (body) => {
      const path = text(body.path, 'path')
      fileReply(await session(body.sessionId).sandbox.remove(inWorkspace(path)), path)
      return { success: true, path }
    },
    'POST /api/exists': async (body) => {
      const path = text(body.path, 'path')
      const outcome = await shell(session(body.sessionId), `test -e ${quote(path)}`)
      return { success: true, exists: outcome.exitCode === 0 }
    },
    'POST /api/list-files': async (body) => {
      const path = text(body.path, 'path')
      const reply = fileReply(
        await session(body.sessionId).sandbox.list(inWorkspace(path, true), 10_000),
        path,
      )
      if (reply.t !== 'entries') throw new ProtocolError(400, 'NOT_DIRECTORY', `${path} is not a directory`)
      const files = reply.entries.map((entry) => ({
        name: entry.name,
        absolutePath: `${path.replace(/\/$/, '')}/${entry.name}`,
        relativePath: entry.name,
        type: entry.type === 'other' ? 'symlink' : entry.type,
        size: entry.size,
        modifiedAt: new Date(0).toISOString(),
        mode: entry.type === 'directory' ? 'rwxr-xr-x' : 'rw-r--r--',
        permissions: { readable: true, writable: true, executable: entry.type === 'directory' },
      }))
      return { success: true, path, files, count: files.length }
    },
  }

  const server: Server = createServer((request, response) => {
    void serve(request, response)
  })
  async function serve(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', 'http://sandbox')
    const key = `${request.method} ${url.pathname}`
    try {
      if (options.token !== undefined && request.headers.authorization !== `Bearer ${options.token}`) {
        throw new ProtocolError(401, 'UNAUTHORIZED', 'a bearer token is required')
      }
      if (key === 'GET /api/ping') return send(response, 200, { success: true, message: 'pong' })
      if (key === 'GET /api/version')
        return send(response, 200, { success: true, version: SANDBOX_PROTOCOL_VERSION })
      if (key === 'POST /api/execute/stream') {
        const body = await readJson(request)
        const command = text(body.command, 'command')
        const outcome = await shell(session(body.sessionId), command, optionalNumber(body.timeoutMs))
        return stream(response, outcome)
      }
      const route = routes[key]
      if (route === undefined) throw new ProtocolError(404, 'NOT_FOUND', `no route ${key}`)
      send(response, 200, { ...((await route(await readJson(request))) as object), timestamp: now() })
    } catch (error) {
      const failure =
        error instanceof ProtocolError
          ? error
          : new ProtocolError(500, 'INTERNAL_ERROR', error instanceof Error ? error.message : 'failed')
      send(response, failure.status, {
        code: failure.code,
        message: failure.message,
        context: {},
        httpStatus: failure.status,
        timestamp: now(),
      })
    }
  }

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    async close() {
      clearInterval(sweeper)
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
      sessions.clear()
      await sandboxes.close()
    },
  }
}

/** The session's env without the egress grant, which is the server's to use, not the commands'. */
function withoutEgress(env: Record<string, string>): Record<string, string> {
  const { [EGRESS_TOKEN_VARIABLE]: _grant, ...rest } = env
  return rest
}

/**
 * The binding channel of a session's egress proxy: plain-HTTP requests go to the outbound URL with
 * the session's grant, and the answer is the fetch binding's reply (checked for its shape); anything
 * else (a tunnel) is refused here.
 */
function outboundChannel(url: string, token: string, serverToken: string | undefined): BindingChannel {
  return async (call): Promise<BindingReply> => {
    if (call.kind !== 'fetch' || call.op !== 'request') {
      return failure('EGRESS_DENIED', 'https through the proxy is not available in the local sandbox server')
    }
    let response: Response
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          // The Worker's route takes the same token the server requires of its clients.
          ...(serverToken === undefined ? {} : { authorization: `Bearer ${serverToken}` }),
        },
        body: JSON.stringify({ token, args: call.args }),
      })
    } catch {
      return failure('FETCH_FAILED', 'the outbound handler did not answer')
    }
    const text = await response.text()
    const parsed = parseJsonBounded(text, { maxBytes: MAX_OUTBOUND_REPLY_BYTES, maxDepth: 16 })
    if (!parsed.ok || !isBindingReply(parsed.value)) {
      return failure('FETCH_FAILED', `the outbound handler answered ${response.status} without a reply`)
    }
    return parsed.value as BindingReply
  }
}

/** An execute answer. A command ended at a limit answers an error naming it, as a failed command. */
function executed(command: string, outcome: RunOutcome) {
  if (outcome.exitCode === undefined || outcome.exitCode === null) {
    throw new ProtocolError(
      500,
      'COMMAND_EXECUTION_ERROR',
      outcome.error?.message ?? 'the command did not finish',
    )
  }
  return {
    success: outcome.exitCode === 0,
    stdout: outcome.stdout,
    stderr: outcome.stderr,
    exitCode: outcome.exitCode,
    command,
  }
}

function stream(response: ServerResponse, outcome: RunOutcome): void {
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  const event = (value: object) =>
    response.write(`data: ${JSON.stringify({ ...value, timestamp: now() })}\n\n`)
  event({ type: 'start' })
  if (outcome.stdout !== '') event({ type: 'stdout', data: outcome.stdout })
  if (outcome.stderr !== '') event({ type: 'stderr', data: outcome.stderr })
  if (outcome.exitCode === undefined || outcome.exitCode === null) {
    const message = outcome.error?.message ?? 'the command did not finish'
    event({ type: 'error', data: message, error: message })
  } else event({ type: 'complete', exitCode: outcome.exitCode })
  response.end()
}

type FileReplyOf = Awaited<ReturnType<SessionSandbox['read']>>

function fileReply(reply: FileReplyOf, path: string): Exclude<FileReplyOf, { t: 'error' }> {
  if (reply.t !== 'error') return reply
  // The sandbox's codes are the protocol's own (FILE_NOT_FOUND, IS_DIRECTORY, FILE_TOO_LARGE, ...).
  const status = reply.code === 'FILE_NOT_FOUND' ? 404 : reply.code === 'FILE_TOO_LARGE' ? 413 : 400
  throw new ProtocolError(status, reply.code, reply.message || path)
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY_BYTES)
      throw new ProtocolError(413, 'PAYLOAD_TOO_LARGE', 'the request body is too large')
    chunks.push(chunk)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}')
  } catch {
    throw new ProtocolError(400, 'VALIDATION_FAILED', 'the body is not JSON')
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ProtocolError(400, 'VALIDATION_FAILED', 'the body must be a JSON object')
  }
  return parsed as Record<string, unknown>
}

function send(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
}

const now = () => new Date().toISOString()

function text(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new ProtocolError(400, 'VALIDATION_FAILED', `${name} must be a non-empty string`)
  }
  return value
}

function optionalText(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined
}

function optionalNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : undefined
}

function stringRecord(value: unknown): Record<string, string> {
  if (value === null || typeof value !== 'object') return {}
  const entries = Object.entries(value).filter(
    (entry): entry is [string, string] =>
      /^[A-Za-z_][A-Za-z0-9_]*$/.test(entry[0]) && typeof entry[1] === 'string',
  )
  return Object.fromEntries(entries)
}

/**
 * A file operation's path, relative to `/workspace` as the sandbox takes it: file operations are
 * served under `/workspace` only (normalised by the fs binding's rules); `root` allows `/workspace`
 * itself (a listing).
 */
function inWorkspace(path: string, root = false): string {
  const normalised = normalisePath(path, FILESYSTEM_ROOT)
  if (normalised.ok && root && normalised.path === FILESYSTEM_ROOT) return ''
  if (!normalised.ok || !normalised.path.startsWith(`${FILESYSTEM_ROOT}/`)) {
    throw new ProtocolError(
      400,
      'VALIDATION_FAILED',
      `${path}: files are served under ${FILESYSTEM_ROOT} only`,
    )
  }
  return normalised.path.slice(FILESYSTEM_ROOT.length + 1)
}

/** A shell word: single-quoted, with single quotes closed, escaped and reopened. */
function quote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`
}

function isUtf8(data: Buffer): boolean {
  return Buffer.from(data.toString('utf8'), 'utf8').equals(data)
}
