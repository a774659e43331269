import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Miniflare, type MiniflareOptions } from 'miniflare'
import type { Body } from './server.ts'

// The Worker build as a deployment makes it (`wrangler deploy --dry-run` from wrangler.toml), and
// workerd running it through Miniflare with the bindings wrangler.toml declares.

const REPO = fileURLToPath(new URL('../..', import.meta.url))

/** Builds the Worker into `out`; answers the path of its entry module. */
export function buildWorker(out: string): string {
  const result = spawnSync(
    process.execPath,
    [join(REPO, 'node_modules/wrangler/bin/wrangler.js'), 'deploy', '--dry-run', '--outdir', out],
    { cwd: REPO, encoding: 'utf8', env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true' } },
  )
  if (result.status !== 0) {
    throw new Error(`wrangler deploy --dry-run failed:\n${result.stdout}\n${result.stderr}`)
  }
  return join(out, 'worker.js')
}

export interface WorkerRun {
  /** The build's directory (from `buildWorker`). */
  out: string
  /** Where the Durable Objects keep their SQLite files (the same directory again is a restart). */
  persist: string
  bindings: Record<string, string>
  /** Answers the Worker's own `fetch` calls: the outside network, as guests' egress reaches it. */
  outbound?: (request: Request) => Response | Promise<Response>
  /** Give the Worker a Worker Loader binding (`LOADER`): the isolate engine. */
  loader?: boolean
  /**
   * What DNS-over-HTTPS (the Worker's resolver) answers for a name; any other name has the public
   * address {@link PUBLIC_ADDRESS}. Lookups never reach `outbound`.
   */
  dns?: Record<string, string[]>
}

/** The address every name resolves to unless the run says otherwise (a public one). */
export const PUBLIC_ADDRESS = '93.184.215.14'

/** A DNS-over-HTTPS JSON answer for the Worker's resolver, from the run's table. */
function dnsAnswer(url: URL, table: Record<string, string[]>): Response {
  const name = url.searchParams.get('name') ?? ''
  const type = url.searchParams.get('type') === 'AAAA' ? 28 : 1
  const addresses = (table[name] ?? [PUBLIC_ADDRESS]).filter(
    (address) => address.includes(':') === (type === 28),
  )
  return Response.json({ Status: 0, Answer: addresses.map((data) => ({ name, type, TTL: 60, data })) })
}

/** workerd running the build, as wrangler.toml binds it. */
export function startWorker(run: WorkerRun): Miniflare {
  const options: MiniflareOptions = {
    modules: true,
    scriptPath: join(run.out, 'worker.js'),
    // Module names are relative to this (the build is outside the working directory).
    modulesRoot: run.out,
    // wrangler names the QuickJS wasm by its hash, with a `-wasm` suffix: a compiled module.
    modulesRules: [{ type: 'CompiledWasm', include: ['**/*-wasm'] }],
    compatibilityDate: '2026-07-30',
    compatibilityFlags: ['nodejs_compat'],
    durableObjects: { TENANTS: { className: 'TenantObject', useSQLite: true } },
    durableObjectsPersist: run.persist,
    bindings: run.bindings,
    ...(run.loader === true ? { workerLoaders: { LOADER: {} } } : {}),
    outboundService: (request: Request) => {
      const url = new URL(request.url)
      if (url.hostname === 'cloudflare-dns.com' && url.pathname === '/dns-query')
        return dnsAnswer(url, run.dns ?? {})
      return run.outbound?.(request) ?? new Response(null, { status: 502 })
    },
  }
  return new Miniflare(options)
}

/** Sends a request the Worker made on to the real network from Node (a local server, in tests). */
export async function forward(request: Request): Promise<Response> {
  const body = request.method === 'GET' || request.method === 'HEAD' ? undefined : await request.arrayBuffer()
  const headers: Record<string, string> = {}
  request.headers.forEach((value, name) => {
    headers[name] = value
  })
  const response = await fetch(request.url, {
    method: request.method,
    headers,
    ...(body === undefined ? {} : { body }),
  })
  return new Response(await response.arrayBuffer(), { status: response.status, headers: response.headers })
}

/** Calls the Worker's API as `token` holder: the status and the parsed JSON body. */
export function workerApi(
  mf: () => Miniflare,
  token: string,
): (method: string, path: string, body?: unknown) => Promise<{ status: number; body: Body }> {
  return async (method, path, body) => {
    const response = await mf().dispatchFetch(`http://cordon.test${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    return { status: response.status, body: (await response.json()) as Body }
  }
}
