import { chmodSync, chownSync, mkdirSync, rmSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { dirname, join } from 'node:path'
import { type BindingCall, type BindingReply, BRIDGE_LIMITS, egressStatus } from '../../bridge/bridge.ts'

/**
 * The container engine's egress: an HTTP proxy on a Unix socket bound into the sandbox (its only way
 * out; the sandbox has no network device but its own loopback). It speaks plain HTTP proxying
 * (absolute-form requests) and CONNECT, and decides nothing itself: a plain request becomes the
 * `fetch` binding's own call (the policy, DNS and address checks, the pinned connect, secrets and the
 * audit are the harness's, exactly as for a JavaScript guest's `fetch`), and a CONNECT asks the
 * harness for a tunnel (`fetch.connect`: host and port checked, the name resolved and every address
 * checked there) and connects to the one address the harness answered.
 *
 * One request per connection (`Connection: close`); every client the sandbox has handles that.
 */

/** Largest request head (request line and headers). */
const MAX_HEAD_BYTES = 64 * 1024
/** Largest request body a plain-http request may carry through the proxy. */
export const MAX_PROXY_BODY_BYTES = 1024 * 1024
/** A client must send its request head within this time. */
const HEAD_TIMEOUT_MS = 10_000
/** Connections one sandbox may hold open to its proxy at once (tunnels and requests together). */
export const MAX_CONNECTIONS = 64
/** Connecting to a tunnel's address may take this long. */
const TUNNEL_CONNECT_MS = 10_000

/** The execution a proxy serves while its command runs: where its binding calls go. */
export interface ProxySession {
  call(call: BindingCall): Promise<BindingReply>
  /** Whether the profile grants network egress at all. */
  granted: boolean
}

export class EgressProxy {
  readonly path: string
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  #session: ProxySession | null = null
  #pending = 0

  private constructor(path: string, server: Server) {
    this.path = path
    this.#server = server
    server.on('connection', (socket) => this.#accept(socket))
    // An accept that fails (descriptors exhausted) must not become an uncaught error.
    server.on('error', () => {})
  }

  /**
   * Listens on a socket in a fresh directory of `dir` that only `owner` (the sandbox's host uid) and
   * root can enter: the sandbox it is bound into reaches it, no other local user does.
   */
  static open(dir: string, owner: number): Promise<EgressProxy> {
    try {
      mkdirSync(dir, { mode: 0o700 })
      chownSync(dir, owner, owner)
    } catch (error) {
      return Promise.reject(error)
    }
    const path = join(dir, 'proxy.sock')
    return new Promise((resolve, reject) => {
      const server = createServer()
      server.once('error', (error) => {
        try {
          rmSync(dir, { recursive: true, force: true })
        } catch {
          // The sweep at the next start removes what is left.
        }
        reject(error)
      })
      server.listen(path, () => {
        server.removeAllListeners('error')
        try {
          chmodSync(path, 0o600)
          chownSync(path, owner, owner)
        } catch (error) {
          server.close()
          reject(error)
          return
        }
        resolve(new EgressProxy(path, server))
      })
    })
  }

  /** Serves `session` until `detach`; requests outside a session are refused. */
  attach(session: ProxySession): void {
    this.#session = session
  }

  /** Ends the session: its tunnels and requests in flight are cut. */
  detach(): void {
    this.#session = null
    for (const socket of this.#sockets) socket.destroy()
    this.#sockets.clear()
  }

  close(): void {
    this.detach()
    this.#server.close()
    try {
      rmSync(dirname(this.path), { recursive: true, force: true })
    } catch {
      // The sweep at the next start removes what is left.
    }
  }

  #accept(socket: Socket): void {
    // Bounded: connections beyond the cap, or while no execution is attached, are closed at once, so
    // that a sandbox cannot hold the descriptors (or the event loop) of the process serving it.
    if (this.#session === null || this.#sockets.size >= MAX_CONNECTIONS) {
      socket.destroy()
      return
    }
    this.#sockets.add(socket)
    socket.on('close', () => this.#sockets.delete(socket))
    socket.on('error', () => socket.destroy())
    // An absolute deadline for the head: trickling one byte at a time does not extend it.
    const deadline = setTimeout(() => socket.destroy(), HEAD_TIMEOUT_MS)
    socket.once('close', () => clearTimeout(deadline))
    const chunks: Buffer[] = []
    let size = 0
    let tail = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      chunks.push(chunk)
      size += chunk.length
      // Only the new bytes (and the three before them) can complete the blank line.
      const window = Buffer.concat([tail, chunk])
      const found = window.indexOf('\r\n\r\n')
      tail = window.subarray(Math.max(0, window.length - 3))
      if (found < 0) {
        if (size > MAX_HEAD_BYTES) {
          socket.off('data', onData)
          answer(socket, 431, 'REQUEST_TOO_LARGE', 'the request head is too large')
        }
        return
      }
      socket.off('data', onData)
      socket.pause()
      clearTimeout(deadline)
      const head = Buffer.concat(chunks)
      const end = size - (window.length - found)
      this.#dispatch(socket, head.subarray(0, end).toString('latin1'), head.subarray(end + 4))
    }
    socket.on('data', onData)
  }

  #dispatch(socket: Socket, headText: string, rest: Buffer): void {
    const request = parseHead(headText)
    if ('error' in request) {
      answer(socket, 400, 'BAD_REQUEST', request.error)
      return
    }
    const session = this.#session
    if (session === null) {
      answer(socket, 503, 'NO_EXECUTION', 'no execution is running in this sandbox')
      return
    }
    if (!session.granted) {
      answer(socket, 403, 'NOT_GRANTED', 'the profile grants no network egress')
      return
    }
    if (this.#pending >= BRIDGE_LIMITS.maxPendingCalls) {
      answer(
        socket,
        429,
        'BINDING_BUSY',
        `at most ${BRIDGE_LIMITS.maxPendingCalls} requests may be in flight`,
      )
      return
    }
    this.#pending += 1
    const handled =
      request.method === 'CONNECT'
        ? this.#tunnel(socket, request, rest, session)
        : this.#forward(socket, request, rest, session)
    void handled
      .catch(() => socket.destroy())
      .finally(() => {
        this.#pending -= 1
      })
  }

  async #forward(socket: Socket, request: RequestHead, rest: Buffer, session: ProxySession): Promise<void> {
    let url: URL
    try {
      url = new URL(request.target)
    } catch {
      answer(socket, 400, 'BAD_REQUEST', 'a proxied request names an absolute http:// URL')
      return
    }
    if (url.protocol !== 'http:') {
      answer(socket, 400, 'BAD_REQUEST', `${url.protocol}// goes through CONNECT, not a plain request`)
      return
    }
    // TLS origination: plain http to port 443 is sent on as https. The command writes
    // `http://host:443/...` when it wants Cordon to see the request (to put a secret in, or to have
    // method and path checked) and the upstream still to get it encrypted.
    const target =
      url.port === '443' ? `https://${url.host.replace(/:443$/, '')}${url.pathname}${url.search}` : url.href
    if (request.headers.some(([name]) => name === 'transfer-encoding')) {
      answer(socket, 411, 'LENGTH_REQUIRED', 'request bodies need a Content-Length')
      return
    }
    const lengthHeader = request.headers.find(([name]) => name === 'content-length')?.[1]
    const length = lengthHeader === undefined ? 0 : Number(lengthHeader)
    if (!Number.isSafeInteger(length) || length < 0) {
      answer(socket, 400, 'BAD_REQUEST', 'malformed Content-Length')
      return
    }
    if (length > MAX_PROXY_BODY_BYTES) {
      answer(
        socket,
        413,
        'REQUEST_TOO_LARGE',
        `request bodies through the proxy are at most ${MAX_PROXY_BODY_BYTES} bytes`,
      )
      return
    }
    const body = await readBody(socket, rest, length)
    if (body === null) return
    const reply = await session.call({
      kind: 'fetch',
      op: 'request',
      args: [
        {
          url: target,
          method: request.method,
          headers: request.headers,
          ...(length > 0 ? { bodyBytes: body.toString('latin1') } : {}),
          redirect: 'manual',
        },
      ],
    })
    if (socket.destroyed) return
    if (!reply.ok) {
      refuse(socket, reply.error)
      return
    }
    const value = reply.value as { status: number; statusText?: string; headers: [string, string][] }
    const payload = Buffer.from(reply.bytes ?? '', 'base64')
    const lines = [`HTTP/1.1 ${value.status} ${safeText(value.statusText ?? '')}`]
    for (const [name, headerValue] of value.headers) {
      if (HOP_BY_HOP.has(name.toLowerCase())) continue
      lines.push(`${name}: ${safeText(headerValue)}`)
    }
    lines.push(`content-length: ${payload.length}`, 'connection: close')
    socket.end(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), payload]))
  }

  async #tunnel(socket: Socket, request: RequestHead, rest: Buffer, session: ProxySession): Promise<void> {
    const target = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):(\d{1,5})$/.exec(request.target)
    if (target === null) {
      answer(socket, 400, 'BAD_REQUEST', 'CONNECT names host:port')
      return
    }
    const reply = await session.call({
      kind: 'fetch',
      op: 'connect',
      args: [{ host: target[1] as string, port: Number(target[2]) }],
    })
    if (socket.destroyed) return
    if (!reply.ok) {
      refuse(socket, reply.error)
      return
    }
    const { address, port } = reply.value as { address: string; port: number }
    // The pinned connect: to the address the harness checked, never to a name looked up again.
    const upstream = connect({ host: address, port, timeout: TUNNEL_CONNECT_MS })
    this.#sockets.add(upstream)
    upstream.on('close', () => {
      this.#sockets.delete(upstream)
      socket.destroy()
    })
    upstream.on('error', () => {
      if (!socket.destroyed && upstream.connecting)
        answer(socket, 502, 'FETCH_FAILED', `cannot connect to ${request.target}`)
      upstream.destroy()
    })
    upstream.once('timeout', () => upstream.destroy(new Error('connect timeout')))
    await new Promise<void>((resolve) => {
      upstream.once('connect', () => {
        upstream.setTimeout(0)
        socket.write('HTTP/1.1 200 Connection established\r\n\r\n')
        if (rest.length > 0) upstream.write(rest)
        socket.pipe(upstream)
        upstream.pipe(socket)
        socket.resume()
        socket.on('close', () => upstream.destroy())
        resolve()
      })
      upstream.once('close', () => resolve())
    })
  }
}

interface RequestHead {
  method: string
  target: string
  headers: [string, string][]
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'proxy-connection',
  'trailer',
  'upgrade',
])
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

function parseHead(text: string): RequestHead | { error: string } {
  const [line, ...fields] = text.split('\r\n')
  const parts = (line ?? '').split(' ')
  if (parts.length !== 3 || !TOKEN.test(parts[0] ?? '') || !/^HTTP\/1\.[01]$/.test(parts[2] ?? '')) {
    return { error: 'malformed request line' }
  }
  const headers: [string, string][] = []
  for (const field of fields) {
    const colon = field.indexOf(':')
    const name = field.slice(0, colon).toLowerCase()
    if (colon <= 0 || !TOKEN.test(name)) return { error: 'malformed header' }
    headers.push([name, field.slice(colon + 1).trim()])
  }
  return { method: (parts[0] as string).toUpperCase(), target: parts[1] as string, headers }
}

/** Reads exactly `length` body bytes (some may have come with the head); null if the client went away. */
function readBody(socket: Socket, first: Buffer, length: number): Promise<Buffer | null> {
  if (first.length >= length) return Promise.resolve(first.subarray(0, length))
  return new Promise((resolve) => {
    const chunks = [first]
    let have = first.length
    const onData = (chunk: Buffer) => {
      chunks.push(chunk)
      have += chunk.length
      if (have >= length) {
        socket.off('data', onData)
        socket.pause()
        resolve(Buffer.concat(chunks).subarray(0, length))
      }
    }
    socket.on('data', onData)
    socket.once('close', () => resolve(null))
    socket.setTimeout(HEAD_TIMEOUT_MS, () => socket.destroy())
    socket.resume()
  })
}

/** The status a refused or failed binding call becomes for an HTTP client. */

/** Answers the client with a binding's refusal, at the status its code calls for. */
function refuse(socket: Socket, error: { code: string; message: string; reason?: string }): void {
  answer(socket, egressStatus(error.code), error.code, error.message, error.reason)
}

/** Answers the client with an error of Cordon's own and closes the connection. */
function answer(socket: Socket, status: number, code: string, message: string, reason?: string): void {
  if (socket.destroyed) return
  const body = `cordon: ${code}${reason === undefined ? '' : ` (${reason})`}: ${safeText(message)}\n`
  socket.end(
    `HTTP/1.1 ${status} ${code}\r\nx-cordon-error: ${code}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  )
}

/** Header-safe text: no CR, LF or NUL can reach the client's parser. */
function safeText(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
  return text.replace(/[\r\n\u0000]/g, ' ')
}
