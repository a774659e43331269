import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type NodeServerOptions, type RunningServer, startNodeServer } from '@cordon/gateway'

/** A parsed JSON response body; tests assert its shape with expect() instead of trusting a type. */
// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked by assertions, not by types
export type Body = any

export const TEST_TOKEN = 'test-admin-token-0123456789'

export interface TestServer {
  server: RunningServer
  dataDir: string
  /** Sends a request with the admin token (unless `auth` is given) and parses a JSON answer. */
  request(
    method: string,
    path: string,
    options?: {
      body?: unknown
      raw?: string
      contentType?: string
      auth?: string | null
      headers?: Record<string, string>
    },
  ): Promise<{ status: number; body: Body; headers: Headers }>
  /** POSTs an execution of `code` as `agent` and returns the response body (an execution record). */
  execute(
    code: string,
    extra?: Record<string, unknown>,
    agent?: string,
  ): Promise<{ status: number; body: Body }>
  /** Stores a profile with these limits (QuickJS, JavaScript/TypeScript) and an agent of the same name under it. */
  deployAgent(name: string, limits: Limits): Promise<void>
  restart(): Promise<void>
  close(): Promise<void>
}

/** A profile's `limits` section (every limit is explicit). */
export interface Limits {
  cpuMs: number
  wallMs: number
  memoryMb: number
  outputBytes: number
  bindingCalls: number
}

/**
 * Starts the real service (SQLite file in a fresh temp dir, real worker processes, real HTTP on an
 * ephemeral port) for one test file.
 */
export async function startTestServer(options: Partial<NodeServerOptions> = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'cordon-test-'))
  const start = () => startNodeServer({ port: 0, workers: 2, adminToken: TEST_TOKEN, ...options, dataDir })
  let server = await start()
  const request: TestServer['request'] = async (method, path, opts = {}) => {
    const headers: Record<string, string> = {}
    Object.assign(headers, opts.headers)
    if (opts.auth !== null) headers.authorization = `Bearer ${opts.auth ?? TEST_TOKEN}`
    let body: string | undefined
    if (opts.raw !== undefined) body = opts.raw
    else if (opts.body !== undefined) body = JSON.stringify(opts.body)
    if (body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json'
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
    })
    const text = await response.text()
    let parsed: unknown = text
    try {
      parsed = text.length > 0 ? JSON.parse(text) : null
    } catch {}
    return { status: response.status, body: parsed, headers: response.headers }
  }
  return {
    get server() {
      return server
    },
    dataDir,
    request,
    execute: (code, extra = {}, agent = 'example') =>
      request('POST', `/v1/agents/${agent}/executions`, { body: { language: 'javascript', code, ...extra } }),
    async deployAgent(name, limits) {
      const profile = await request('PUT', `/v1/profiles/${name}`, {
        body: { engines: ['quickjs'], languages: ['javascript', 'typescript'], limits },
      })
      const agent = await request('PUT', `/v1/agents/${name}`, { body: { sandbox: name } })
      if (profile.status !== 200 || agent.status !== 200) {
        throw new Error(`deployAgent ${name}: ${JSON.stringify([profile.body, agent.body])}`)
      }
    },
    async restart() {
      await server.close()
      server = await start()
    },
    async close() {
      await server.close()
      if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true })
    },
  }
}
