import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import {
  createServer as createHTTPServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import { createServer as createHTTPSServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { Resolver } from '@cordon/harness'
import type { Body, Limits, TestServer } from './server.ts'

const TLS_DIR = fileURLToPath(new URL('../fixtures/tls/', import.meta.url))

/** Host names the test HTTPS servers answer for (through a {@link ScriptedResolver}). */
export const TLS_NAMES = ['api.test', 'evil.test', 'localhost'] as const
const TLS_ADDRESSES = ['127.0.0.1', '127.0.0.2'] as const

/** A CA that a test service trusts (`egress.ca`) and the server certificate and key it signed. */
export interface TestTLS {
  ca: string
  cert: string
  key: string
}

let tls: TestTLS | null = null

/**
 * The TLS material of the test HTTPS servers: the fixture in tests/fixtures/tls, checked to be valid
 * for every name in {@link TLS_NAMES} and address (Node, like browsers, refuses a wildcard directly
 * under a top-level label, so each name is listed). A fixture that does not cover them fails loudly:
 * re-issue it as tests/fixtures/tls/README.md says.
 */
export function testTLS(): TestTLS {
  if (tls !== null) return tls
  const fixture = {
    ca: readFileSync(`${TLS_DIR}ca.pem`, 'utf8'),
    cert: readFileSync(`${TLS_DIR}server.pem`, 'utf8'),
    key: readFileSync(`${TLS_DIR}server-key.pem`, 'utf8'),
  }
  const certificate = new X509Certificate(fixture.cert)
  const missing = [
    ...TLS_NAMES.filter((name) => certificate.checkHost(name) !== name),
    ...TLS_ADDRESSES.filter((address) => certificate.checkIP(address) !== address),
  ]
  if (missing.length > 0) {
    throw new Error(`tests/fixtures/tls/server.pem does not cover ${missing.join(', ')}: re-issue it`)
  }
  tls = fixture
  return tls
}

/** One request as a local server saw it (recorded as soon as its head arrived). */
export interface SeenRequest {
  method: string
  url: string
  headers: IncomingHttpHeaders
  /** The body as UTF-8, filled in when it has been read in full. */
  body: string
  /** True once the connection of this exchange has closed (by either side). */
  closed: boolean
}

/** Answers one request; `seen` is already recorded, with its full body. */
export type Handler = (seen: SeenRequest, res: ServerResponse, req: IncomingMessage) => void

/** A local HTTP(S) server on an ephemeral port that records every request it sees. */
export interface RecordingServer {
  readonly host: string
  readonly port: number
  readonly seen: SeenRequest[]
  /** `http(s)://<name or host>:<port>`. */
  origin(name?: string): string
  close(): Promise<void>
}

/** Echoes the request as JSON: method, url, headers and body. */
export const echo = (seen: SeenRequest, res: ServerResponse): void => {
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify({ method: seen.method, url: seen.url, headers: seen.headers, body: seen.body }))
}

/**
 * Starts a server bound to `host` (default 127.0.0.1; the whole of 127/8 is local on Linux) that
 * records every request before `handler` answers it. With `tls`, it presents the fixture certificate
 * of {@link testTLS} (api.test, evil.test, localhost, 127.0.0.1, 127.0.0.2).
 */
export async function startRecordingServer(
  options: { host?: string; port?: number; tls?: boolean; handler?: Handler } = {},
): Promise<RecordingServer> {
  const host = options.host ?? '127.0.0.1'
  const handler = options.handler ?? echo
  const seen: SeenRequest[] = []
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const entry: SeenRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      body: '',
      closed: false,
    }
    seen.push(entry)
    res.on('close', () => {
      entry.closed = true
    })
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      entry.body = Buffer.concat(chunks).toString('utf8')
      handler(entry, res, req)
    })
  }
  const server: Server = options.tls
    ? createHTTPSServer({ cert: testTLS().cert, key: testTLS().key }, listener)
    : createHTTPServer(listener)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  const scheme = options.tls ? 'https' : 'http'
  return {
    host,
    port,
    seen,
    origin: (name = host) => `${scheme}://${name}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

/**
 * Two servers on the same port, one on 127.0.0.1 and one on 127.0.0.2, so that one URL
 * (`http://name:port/`) reaches either, depending only on the address its name resolved to.
 */
export async function startServerPair(
  options: { tls?: boolean; first?: Handler; second?: Handler } = {},
): Promise<[RecordingServer, RecordingServer]> {
  for (let attempt = 0; ; attempt++) {
    const first = await startRecordingServer({
      ...(options.tls === undefined ? {} : { tls: options.tls }),
      ...(options.first === undefined ? {} : { handler: options.first }),
    })
    try {
      const second = await startRecordingServer({
        host: '127.0.0.2',
        port: first.port,
        ...(options.tls === undefined ? {} : { tls: options.tls }),
        ...(options.second === undefined ? {} : { handler: options.second }),
      })
      return [first, second]
    } catch (error) {
      await first.close()
      if (attempt >= 10) throw error
    }
  }
}

/** A scripted answer: fixed addresses, or a function of the 1-based count of lookups of that name. */
export type Script = readonly string[] | ((call: number) => readonly string[] | Promise<readonly string[]>)

/**
 * A resolver that answers only the names it was given, and records every lookup (a name it does not
 * know resolves to nothing). `hang` makes a name's lookups never answer (until the call is aborted).
 */
export class ScriptedResolver implements Resolver {
  readonly calls: string[] = []
  readonly #scripts = new Map<string, Script | 'hang'>()

  set(name: string, script: Script | 'hang'): this {
    this.#scripts.set(name, script)
    return this
  }

  /** How many times `name` was looked up. */
  count(name: string): number {
    return this.calls.filter((call) => call === name).length
  }

  async resolve(hostname: string, signal: AbortSignal): Promise<string[]> {
    this.calls.push(hostname)
    const script = this.#scripts.get(hostname)
    if (script === undefined) return []
    if (script === 'hang') {
      return new Promise((_, reject) => {
        if (signal.aborted) reject(signal.reason)
        signal.addEventListener('abort', () => reject(signal.reason), { once: true })
      })
    }
    if (typeof script === 'function') return [...(await script(this.count(hostname)))]
    return [...script]
  }
}

/** An egress allow rule as a profile states it. */
export interface AllowRule {
  host: string
  schemes?: ('http' | 'https')[]
  ports?: number[]
  methods?: string[]
  paths?: string[]
}

/** Limits for egress tests: enough wall time for every timeout below it, and binding calls to spare. */
export const EGRESS_TEST_LIMITS: Limits = {
  cpuMs: 2000,
  wallMs: 10_000,
  memoryMb: 32,
  outputBytes: 262_144,
  bindingCalls: 50,
}

/**
 * Stores a JavaScript profile (QuickJS unless `engines` says otherwise) with these network rules (and optional secrets and limits),
 * and an agent of the same name that runs under it.
 */
export async function deployEgressAgent(
  service: TestServer,
  name: string,
  network: { allow: AllowRule[]; deny?: Omit<AllowRule, 'schemes'>[]; allowPrivateAddresses?: boolean },
  extra: {
    secrets?: Record<string, { from: string; hosts: string[] }>
    limits?: Partial<Limits>
    engines?: ('quickjs' | 'isolate')[]
  } = {},
): Promise<void> {
  const profile = await service.request('PUT', `/v1/profiles/${name}`, {
    body: {
      engines: extra.engines ?? ['quickjs'],
      languages: ['javascript'],
      limits: { ...EGRESS_TEST_LIMITS, ...extra.limits },
      network,
      kv: { access: 'read-write', quotaBytes: 4096 },
      ...(extra.secrets === undefined ? {} : { secrets: extra.secrets }),
    },
  })
  const agent = await service.request('PUT', `/v1/agents/${name}`, { body: { sandbox: name } })
  if (profile.status !== 200 || agent.status !== 200) {
    throw new Error(`deployEgressAgent ${name}: ${JSON.stringify([profile.body, agent.body])}`)
  }
}

/** What one guest `fetch` came to: the response it read, or the CordonError it caught. */
export type FetchOutcome =
  | {
      status: number
      statusText: string
      url: string
      redirected: boolean
      headers: [string, string][]
      text: string
    }
  | { error: { code: string; reason: string | null; rule: string | null; message: string } }
  | { thrown: string }

/**
 * Guest code defining `attempt(url, init)`: one fetch, its response read in full (text cut at 16 KiB)
 * or its CordonError caught, as a plain {@link FetchOutcome}.
 */
export const ATTEMPT = `
const attempt = async (url, init) => {
  try {
    const r = await fetch(url, init)
    const text = await r.text()
    return { status: r.status, statusText: r.statusText, url: r.url, redirected: r.redirected,
      headers: [...r.headers.entries()], text: text.length > 16384 ? text.slice(0, 16384) : text }
  } catch (e) {
    if (e && e.name === 'CordonError') {
      return { error: { code: e.code, reason: e.reason ?? null, rule: e.rule ?? null, message: e.message } }
    }
    return { thrown: String(e) }
  }
}
`

/** A guest fetch init as JSON (headers as an object, body as text). */
export interface GuestInit {
  method?: string
  headers?: Record<string, string>
  body?: string
  redirect?: 'follow' | 'manual' | 'error'
}

/**
 * Runs one guest `fetch(url, init)` as `agent` and answers the execution record and the outcome.
 * Throws when the execution itself did not end `ok` (the guest catches every fetch failure).
 */
export async function guestFetch(
  service: TestServer,
  agent: string,
  url: string,
  init: GuestInit = {},
): Promise<{ record: Body; outcome: FetchOutcome }> {
  const { status, body } = await service.execute(
    `${ATTEMPT}\nexport default (input) => attempt(input.url, input.init)`,
    { input: { url, init } },
    agent,
  )
  if (status !== 200 || body.status !== 'ok') {
    throw new Error(`guestFetch ${url}: ${status} ${JSON.stringify(body).slice(0, 2000)}`)
  }
  return { record: body, outcome: body.result as FetchOutcome }
}

/** The `[code, reason]` of a refused fetch, or the outcome itself (as text) when it was not refused. */
export function refusal(outcome: FetchOutcome): [string, string | null] | string {
  return 'error' in outcome
    ? [outcome.error.code, outcome.error.reason]
    : JSON.stringify(outcome).slice(0, 500)
}

/** An audit record as `GET /v1/audit` answers it. */
export interface AuditRow {
  kind: string
  decision: string
  code: string
  rule: string | null
  detail: Record<string, unknown>
}

/** The audit records of one execution, oldest first. */
export async function auditOf(service: TestServer, execution: string): Promise<AuditRow[]> {
  const { status, body } = await service.request(
    'GET',
    `/v1/audit?execution=${encodeURIComponent(execution)}&limit=1000`,
  )
  if (status !== 200) throw new Error(`GET /v1/audit: ${status} ${JSON.stringify(body)}`)
  return body.records as AuditRow[]
}
