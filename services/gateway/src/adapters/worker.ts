import { RpcTarget } from 'cloudflare:workers'
import { SandboxClient, Sandbox as SandboxContainer } from '@cloudflare/sandbox'

import { CordonError, ErrorCode } from '@cordon/contracts'
import {
  type BindingChannel,
  failure as bindingFailure,
  EGRESS_TOKEN_VARIABLE,
  type InProcessEngine,
  InProcessRunner,
  SandboxControlEngine,
  type SandboxOpener,
  WorkerLoaderEngine,
  type WorkerLoaderLike,
} from '@cordon/executor/portable'
import { interruptCountMeter, prebuiltQuickJS, QuickJSEngine } from '@cordon/executor/quickjs'
import {
  BUILTIN_PROFILE_FILES,
  builtinProfilesFrom,
  dohResolver,
  fetchTransport,
  Harness,
  type ModelSettings,
  ProviderModels,
  type ToolInputChecker,
} from '@cordon/harness'
import { DurableObjectSqlDatabase, type DurableObjectStorageLike, SqlStore } from '@cordon/harness/store'
// A compiled module (wrangler's CompiledWasm rule): a Worker may not compile wasm from bytes.
import QUICKJS_WASM from '@jitl/quickjs-wasmfile-release-sync/wasm'
import { Hono } from 'hono'
import { addPublicRoutes, createApp, unauthenticated } from '../app.ts'
import {
  bearerToken,
  DEFAULT_TENANT,
  type Principal,
  SCOPES,
  type Scope,
  TokenAuthenticator,
} from '../auth.ts'
import { errorBody } from '../http.ts'
import { httpBaseURL, modelSettingsFrom } from '../model-settings.ts'
import {
  askTenant,
  decideEgress,
  EGRESS_PATH,
  INTERNAL_PREFIX,
  MAX_MESSAGE_BYTES,
  newEgressGrant,
  replyResponse,
  requestArgs,
  SANDBOX_OUTBOUND_PATH,
  sendToTenant,
} from './container-egress.ts'

// Cloudflare entry point: the same Hono app as the Node adapter, one Durable Object per tenant holding
// that tenant's store (agents, profiles, executions, journal, audit chain) in its SQLite storage.
// The Worker authenticates the bearer token to find the tenant's object and hands the request over;
// the object authenticates it again against its own tenant's keys.
// Executions run in the tenant's object, on QuickJS (wasm) in-process: the object's storage holds
// their records, journal and audit like the rest. See docs/cloudflare.md for what differs from Node.

/** The Worker's bindings and settings (wrangler.toml; secrets with `wrangler secret put`). */
export interface WorkerEnv {
  /** One Durable Object per tenant (class `TenantObject`). */
  TENANTS: DurableObjectNamespaceLike
  /** The default tenant's admin token (at least 16 characters). */
  CORDON_ADMIN_TOKEN?: string
  /** More keys: a JSON array of `{ "token", "tenant", "scopes": ["admin" | "deploy" | "invoke" | "audit"] }`. */
  CORDON_TOKENS?: string
  /** Keys the audit chain (32 bytes, base64url); without it, a key kept in each tenant's storage. */
  CORDON_AUDIT_KEY?: string
  /**
   * The container engine: `@cloudflare/sandbox`'s container, one per tenant (the `Sandbox` Durable
   * Object class, with its `[[containers]]` image). Without it (and without CORDON_SANDBOX_URL), the
   * container engine is unavailable.
   */
  SANDBOX?: DurableObjectNamespaceLike
  /**
   * Development: the base URL of a server speaking the sandbox container's protocol, such as Cordon's
   * local engine (`./cordon sandbox-server`), used instead of a `Sandbox` container.
   */
  CORDON_SANDBOX_URL?: string
  /** The bearer token the server at CORDON_SANDBOX_URL requires, if any. */
  CORDON_SANDBOX_TOKEN?: string
  /**
   * The isolate engine: a Worker Loader binding (`[[worker_loaders]]`), where the account has it. Each
   * job runs in a fresh isolate of its own; without it, the isolate engine is unavailable.
   */
  LOADER?: WorkerLoaderLike
  /**
   * Agent runs: the operator's provider keys (secrets; a tenant's stored key of the same name wins)
   * and endpoints, as on Node (see `modelSettingsFrom`).
   */
  ANTHROPIC_API_KEY?: string
  OPENAI_API_KEY?: string
  OPENAI_COMPATIBLE_API_KEY?: string
  CORDON_OPENAI_COMPATIBLE_URL?: string
  CORDON_OPENAI_URL?: string
  CORDON_ANTHROPIC_URL?: string
}

interface DurableObjectNamespaceLike {
  idFromName(name: string): unknown
  get(id: unknown): { fetch(request: Request): Promise<Response> }
}

/** The SDK's client of a `Sandbox` object's container (its control port), as its own objects make it. */
type ContainerStub = NonNullable<ConstructorParameters<typeof SandboxClient>[0]['stub']>

const MiB = 1024 * 1024

/** The header by which the Worker tells a tenant's object which tenant the request is for. */
const TENANT_HEADER = 'x-cordon-tenant'

/**
 * Bounds of the object's engines. An isolate has 128 MB for everything in it, so one job of each
 * engine runs at a time (others wait in a short queue), and QuickJS's (which runs in the object) of at
 * most 64 MiB; QuickJS keeps no spare module. The object's SQLite takes values of at most 2 MB: a
 * record holds its output as JSON, where escaping can make text six times longer (`\u0001`), so a
 * job's output is held to 256 KiB; a file to 1 MiB.
 */
export const WORKER_RUNNER_LIMITS = {
  maxRunning: 1,
  maxQueued: 16,
  maxMemoryMb: 64,
  maxOutputBytes: 256 * 1024,
} as const
/** Largest file content in an object's storage (SQLite values there are at most 2 MB). */
const WORKER_MAX_FILE_BYTES = MiB

/**
 * Tool calls need their input checked against the tool's JSON Schema, and Ajv (the Node service's
 * validator) compiles schemas to code, which a Worker may not do: until a validator that interprets
 * schemas runs here, tool calls are refused, saying why.
 */
const NO_TOOL_INPUT: ToolInputChecker = {
  check: async () => 'tool calls are not available on the Cloudflare deployment yet (no schema validator)',
  close: () => {},
}

/** A tenant's store and API, in its own Durable Object. */
export class TenantObject {
  readonly #storage: DurableObjectStorageLike
  readonly #env: WorkerEnv
  /** Egress grants of the container jobs running here, each with its job's fetch binding. */
  readonly #grants = new Map<string, BindingChannel>()
  #app: ReturnType<typeof createApp> | null = null
  #tenant: string | null = null

  constructor(ctx: { storage: DurableObjectStorageLike }, env: WorkerEnv) {
    this.#storage = ctx.storage
    this.#env = env
  }

  fetch(request: Request): Response | Promise<Response> {
    // A container's outbound request, from this deployment's own Worker (clients cannot reach the path).
    if (new URL(request.url).pathname === EGRESS_PATH) return decideEgress(this.#grants, request)
    const tenant = request.headers.get(TENANT_HEADER) ?? DEFAULT_TENANT
    // An object serves one tenant, for its whole life.
    if (this.#tenant !== null && this.#tenant !== tenant) return new Response('wrong tenant', { status: 421 })
    this.#tenant = tenant
    try {
      this.#app ??= this.#start(tenant)
    } catch (error) {
      // The store would not open (an audit key other than the one its chain was made with): said
      // plainly, for the operator, on every request until it is fixed.
      return failure(`this tenant's store cannot open: ${error instanceof Error ? error.message : 'unknown'}`)
    }
    return this.#app.fetch(request)
  }

  #start(tenant: string): ReturnType<typeof createApp> {
    const { keys, auditKey, models } = settingsOf(this.#env)
    const store = new SqlStore(new DurableObjectSqlDatabase(this.#storage), {
      maxFileBytes: WORKER_MAX_FILE_BYTES,
      ...(auditKey === null ? {} : { auditKey }),
    })
    const quickjs = new QuickJSEngine({
      build: prebuiltQuickJS(QUICKJS_WASM),
      // No CPU clock here, and the clock stands still while code runs: work is counted instead.
      meter: interruptCountMeter(),
      warmSpare: false,
    })
    const engines: Record<string, InProcessEngine> = { quickjs }
    const containers = sandboxLeases(this.#env, tenant, this.#grants)
    if (containers !== null) engines.container = new SandboxControlEngine(containers)
    if (this.#env.LOADER !== undefined) {
      engines.isolate = new WorkerLoaderEngine({
        loader: this.#env.LOADER,
        bridge: (call) => new GuestBridge(call),
        compatibilityDate: GUEST_COMPATIBILITY_DATE,
      })
    }
    const runner = new InProcessRunner(engines, WORKER_RUNNER_LIMITS)
    const harness = new Harness({
      store,
      supervisor: runner,
      builtinProfiles: builtinProfilesFrom(BUILTIN_PROFILE_FILES),
      engines: runner.engines,
      // Names are looked up over DNS-over-HTTPS and every answer checked; the runtime's fetch then
      // connects by name (it cannot be pinned), and Cloudflare's network refuses private destinations.
      // Response bodies are held to 1 MiB: a journaled reply must fit the object's 2 MB values.
      egress: { transport: fetchTransport, resolver: dohResolver(), limits: { maxResponseBytes: MiB } },
      toolInput: NO_TOOL_INPUT,
      models: new ProviderModels(models),
    })
    // Executions the object was running when it was evicted or restarted resume now, in the
    // background; then its runs, from their journals.
    harness.resumeInterrupted()
    harness.runs.resumeInterrupted()
    const own = keys.filter((key) => key.principal.tenant === tenant)
    return createApp({ harness, auth: new TokenAuthenticator(own) })
  }
}

/** The outbound handler a job's container is given when its profile grants network. */
const CONTAINER_EGRESS_HANDLER = 'cordonEgress'

/**
 * The container class bound as SANDBOX in wrangler.toml: @cloudflare/sandbox's, with no network of its
 * own (its default lets the container reach the whole Internet, past every profile). A job granted
 * network has its container's requests, https included (intercepted by the platform), handed to
 * `cordonEgress`, which takes them to the tenant's object to be decided by the job's fetch binding.
 */
export class Sandbox extends SandboxContainer {
  override enableInternet = false
  override interceptHttps = true

  static {
    Sandbox.outboundHandlers = {
      [CONTAINER_EGRESS_HANDLER]: async (request: Request, env: unknown, ctx: { params?: unknown }) => {
        const grant = (ctx.params as { grant?: unknown } | undefined)?.grant
        const args = await requestArgs(request)
        if (typeof args === 'string') return replyResponse(bindingFailure('REQUEST_TOO_LARGE', args))
        return sendToTenant((env as WorkerEnv).TENANTS, typeof grant === 'string' ? grant : '', args)
      },
    }
  }
}

// The entry point through which the platform runs a container's outbound handlers.
export { ContainerProxy } from '@cloudflare/sandbox'

/** The compatibility date of the isolates the Worker Loader starts for guests. */
const GUEST_COMPATIBILITY_DATE = '2026-07-30'

/**
 * What a guest's isolate calls back into for its binding calls, passed to it by reference over RPC:
 * its one method hands the call to the engine, which checks it and has the harness decide it.
 */
class GuestBridge extends RpcTarget {
  readonly #call: (kind: unknown, op: unknown, argsJSON: unknown) => Promise<string>

  constructor(call: (kind: unknown, op: unknown, argsJSON: unknown) => Promise<string>) {
    super()
    this.#call = call
  }

  call(kind: unknown, op: unknown, argsJSON: unknown): Promise<string> {
    return this.#call(kind, op, argsJSON)
  }
}

/**
 * Containers for the tenant's jobs, one per job: a `Sandbox` object of its own (its container's
 * control port, reached through the object), destroyed when the job ends; or, in development, a
 * session of the server at CORDON_SANDBOX_URL (a sandbox of its own there). Null without either.
 */
function sandboxLeases(
  env: WorkerEnv,
  tenant: string,
  grants: Map<string, BindingChannel>,
): SandboxOpener | null {
  // A job granted network gets an egress grant: its container's requests name it, and only this
  // object, while the job runs, can decide them (with the job's own fetch binding).
  const grantFor = (egress: BindingChannel | undefined): string | null => {
    if (egress === undefined) return null
    const grant = newEgressGrant(tenant)
    grants.set(grant, egress)
    return grant
  }
  const containers = env.SANDBOX
  if (containers !== undefined) {
    return (_job, egress) => {
      const stub = containers.get(
        containers.idFromName(`${tenant}/${crypto.randomUUID()}`),
      ) as unknown as ContainerStub & {
        destroy(): Promise<void>
        setOutboundHandler(method: string, params: { grant: string }): Promise<void>
      }
      const grant = grantFor(egress)
      return {
        control: new SandboxClient({ stub, port: 3000 }),
        // Every outbound request of the container goes to `cordonEgress` with the job's grant.
        ...(grant === null ? {} : { ready: stub.setOutboundHandler(CONTAINER_EGRESS_HANDLER, { grant }) }),
        close: async () => {
          if (grant !== null) grants.delete(grant)
          await stub.destroy()
        },
      }
    }
  }
  const url = settingsOf(env).sandboxUrl
  if (url === null) return null
  const token = env.CORDON_SANDBOX_TOKEN
  const control = new SandboxClient({
    baseUrl: url,
    retryTimeoutMs: 5_000,
    ...(token === undefined || token === '' ? {} : { defaultHeaders: { authorization: `Bearer ${token}` } }),
  })
  return (_job, egress) => {
    const grant = grantFor(egress)
    return {
      control,
      // The local server routes the session's requests to SANDBOX_OUTBOUND_PATH with this grant.
      ...(grant === null ? {} : { env: { [EGRESS_TOKEN_VARIABLE]: grant } }),
      close: async () => {
        if (grant !== null) grants.delete(grant)
      },
    }
  }
}

/** The deployment's settings, checked: its keys and its audit key. */
interface Settings {
  keys: { token: string; principal: Principal }[]
  /** The same keys, ready to check a token (their digests made once). */
  auth: TokenAuthenticator
  auditKey: Buffer | null
  /** CORDON_SANDBOX_URL, checked (http or https, no credentials). */
  sandboxUrl: string | null
  /** Agent runs' provider keys and endpoints, checked. */
  models: ModelSettings
}

/** Settings are read once per isolate (they change only with a new deployment), errors included. */
let settings: { env: WorkerEnv; value: Settings | Error } | null = null

/** The checked settings; throws the same error, with what is wrong, while they are invalid. */
function settingsOf(env: WorkerEnv): Settings {
  if (settings === null || settings.env !== env) {
    let value: Settings | Error
    try {
      const keys = workerKeys(env)
      value = {
        keys,
        auth: new TokenAuthenticator(keys),
        auditKey: auditKeyOf(env),
        sandboxUrl: sandboxUrlOf(env),
        models: modelSettingsFrom({
          ANTHROPIC_API_KEY: env.ANTHROPIC_API_KEY,
          OPENAI_API_KEY: env.OPENAI_API_KEY,
          OPENAI_COMPATIBLE_API_KEY: env.OPENAI_COMPATIBLE_API_KEY,
          CORDON_OPENAI_COMPATIBLE_URL: env.CORDON_OPENAI_COMPATIBLE_URL,
          CORDON_OPENAI_URL: env.CORDON_OPENAI_URL,
          CORDON_ANTHROPIC_URL: env.CORDON_ANTHROPIC_URL,
        }),
      }
    } catch (error) {
      value = error instanceof Error ? error : new Error(String(error))
    }
    settings = { env, value }
  }
  if (settings.value instanceof Error) throw settings.value
  return settings.value
}

/** `CORDON_SANDBOX_URL`: an http(s) URL without credentials; null when unset. */
function sandboxUrlOf(env: WorkerEnv): string | null {
  const text = env.CORDON_SANDBOX_URL?.trim()
  if (text === undefined || text === '') return null
  return new URL(httpBaseURL('CORDON_SANDBOX_URL', text)).origin
}

/** `CORDON_AUDIT_KEY`: exactly 32 bytes, base64url; null when unset. */
function auditKeyOf(env: WorkerEnv): Buffer | null {
  const text = env.CORDON_AUDIT_KEY?.trim()
  if (text === undefined || text === '') return null
  const key = Buffer.from(text, 'base64url')
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(text) || key.length !== 32) {
    throw new Error('CORDON_AUDIT_KEY must be 32 bytes, base64url')
  }
  return key
}

/**
 * The keys this deployment accepts: the admin token, and `CORDON_TOKENS`. A bad setting is an error,
 * as is a token listed twice (it would belong to whichever tenant came last).
 */
export function workerKeys(env: WorkerEnv): { token: string; principal: Principal }[] {
  const keys: { token: string; principal: Principal }[] = []
  const admin = env.CORDON_ADMIN_TOKEN
  if (admin !== undefined && admin.length > 0) {
    if (admin.length < 16) throw new Error('CORDON_ADMIN_TOKEN must be at least 16 characters')
    keys.push({ token: admin, principal: { tenant: DEFAULT_TENANT, scopes: ['admin'] } })
  }
  if (env.CORDON_TOKENS !== undefined && env.CORDON_TOKENS.trim() !== '') {
    let listed: unknown
    try {
      listed = JSON.parse(env.CORDON_TOKENS)
    } catch {
      // Not the parser's message: it may quote the text, tokens and all.
      throw new Error('CORDON_TOKENS is not valid JSON')
    }
    if (!Array.isArray(listed)) throw new Error('CORDON_TOKENS must be a JSON array')
    for (const entry of listed) {
      const { token, tenant, scopes } = (entry ?? {}) as {
        token?: unknown
        tenant?: unknown
        scopes?: unknown
      }
      const valid =
        typeof token === 'string' &&
        token.length >= 16 &&
        typeof tenant === 'string' &&
        /^[a-z0-9][a-z0-9-]{0,62}$/.test(tenant) &&
        Array.isArray(scopes) &&
        scopes.every((scope) => (SCOPES as readonly unknown[]).includes(scope))
      if (!valid) {
        throw new Error(
          'CORDON_TOKENS entries need a token of 16+ characters, a tenant (lowercase letters, digits, "-") and scopes',
        )
      }
      keys.push({ token, principal: { tenant, scopes: scopes as Scope[] } })
    }
  }
  if (new Set(keys.map((key) => key.token)).size !== keys.length) {
    throw new Error('a token is listed twice (CORDON_ADMIN_TOKEN and CORDON_TOKENS)')
  }
  return keys
}

/** A deployment problem, as the API says errors (the message names the setting, never a value). */
function failure(message: string): Response {
  return Response.json(errorBody(new CordonError(ErrorCode.INTERNAL, message)), { status: 500 })
}

/**
 * What the Worker answers itself, without waking any tenant's object: the public routes, and the
 * refusal of a request without a valid token (no object's time is spent on anonymous traffic).
 */
function publicApp(): Hono {
  const app = new Hono()
  addPublicRoutes(app)
  app.all('*', (c) => {
    const refusal = unauthenticated(bearerToken(c.req.header('authorization')) === undefined)
    c.header('WWW-Authenticate', refusal.challenge)
    return c.json(errorBody(refusal.error), 401)
  })
  return app
}

let publicRoutes: Hono | null = null

/** `{ token, args }` from the local sandbox server: the job's grant and the fetch binding's arguments. */
async function sandboxOutbound(request: Request, env: WorkerEnv): Promise<Response> {
  // With CORDON_SANDBOX_TOKEN set, only the local server (which holds it) may use the route.
  const token = env.CORDON_SANDBOX_TOKEN
  if (token !== undefined && token !== '' && request.headers.get('authorization') !== `Bearer ${token}`) {
    return Response.json(bindingFailure('EGRESS_DENIED', 'the sandbox token is missing or wrong'), {
      status: 401,
    })
  }
  const length = Number(request.headers.get('content-length') ?? '0')
  const text = length > MAX_MESSAGE_BYTES ? '' : await request.text()
  let message: { token?: unknown; args?: unknown } = {}
  try {
    if (text.length <= MAX_MESSAGE_BYTES) message = JSON.parse(text) as typeof message
  } catch {}
  if (typeof message.token !== 'string' || !Array.isArray(message.args)) {
    return Response.json(bindingFailure('INVALID_ARGUMENT', 'malformed outbound request'))
  }
  // The local server wants the binding's reply itself (its proxy writes the response).
  return Response.json(await askTenant(env.TENANTS, message.token, message.args))
}

export default {
  async fetch(request: Request, env: WorkerEnv): Promise<Response> {
    let auth: TokenAuthenticator
    try {
      auth = settingsOf(env).auth
    } catch (error) {
      return failure(
        `the deployment's settings are invalid: ${error instanceof Error ? error.message : 'unknown'}`,
      )
    }
    const path = new URL(request.url).pathname
    if (path.startsWith(INTERNAL_PREFIX)) {
      // Development: the local sandbox server's sandboxes' requests, each carrying its job's grant.
      if (
        path === SANDBOX_OUTBOUND_PATH &&
        request.method === 'POST' &&
        settingsOf(env).sandboxUrl !== null
      ) {
        return sandboxOutbound(request, env)
      }
      return Response.json(errorBody(new CordonError(ErrorCode.NOT_FOUND, 'no such route')), { status: 404 })
    }
    // The tenant is the token's, and only the Worker names it to the object: no client can.
    const token = bearerToken(request.headers.get('authorization') ?? undefined)
    const principal = token === undefined ? null : auth.authenticate(token)
    if (principal === null) {
      publicRoutes ??= publicApp()
      return publicRoutes.fetch(request)
    }
    const forwarded = new Request(request)
    forwarded.headers.set(TENANT_HEADER, principal.tenant)
    return env.TENANTS.get(env.TENANTS.idFromName(principal.tenant)).fetch(forwarded)
  },
}
