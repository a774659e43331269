import { CordonError, ErrorCode } from '@cordon/contracts'
import type { JobRunner } from '@cordon/executor/portable'
import { BUILTIN_PROFILE_FILES, builtinProfilesFrom, Harness } from '@cordon/harness'
import { DurableObjectSqlDatabase, type DurableObjectStorageLike, SqlStore } from '@cordon/harness/store'
import { createApp } from '../app.ts'
import { DEFAULT_TENANT, type Principal, SCOPES, type Scope, TokenAuthenticator } from '../auth.ts'

// Cloudflare entry point: the same Hono app as the Node adapter, one Durable Object per tenant holding
// that tenant's store (agents, profiles, executions, journal, audit chain) in its SQLite storage.
// The Worker authenticates the bearer token to find the tenant's object and hands the request over;
// the object authenticates it again against its own tenant's keys.
// Not yet here: engines. Until QuickJS runs in the object (the next step of the Cloudflare issue),
// executions answer 422 ENGINE_UNAVAILABLE, as a deployment without an engine should.

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
}

interface DurableObjectNamespaceLike {
  idFromName(name: string): unknown
  get(id: unknown): { fetch(request: Request): Promise<Response> }
}

/** The header by which the Worker tells a tenant's object which tenant the request is for. */
const TENANT_HEADER = 'x-cordon-tenant'

const NO_ENGINE: JobRunner = {
  run: () => {
    throw new CordonError(ErrorCode.ENGINE_UNAVAILABLE, 'no engine runs on this deployment yet')
  },
}

/** A tenant's store and API, in its own Durable Object. */
export class TenantObject {
  readonly #storage: DurableObjectStorageLike
  readonly #env: WorkerEnv
  #app: ReturnType<typeof createApp> | null = null
  #tenant: string | null = null

  constructor(ctx: { storage: DurableObjectStorageLike }, env: WorkerEnv) {
    this.#storage = ctx.storage
    this.#env = env
  }

  fetch(request: Request): Response | Promise<Response> {
    const tenant = request.headers.get(TENANT_HEADER) ?? DEFAULT_TENANT
    // An object serves one tenant, for its whole life.
    if (this.#tenant !== null && this.#tenant !== tenant) return new Response('wrong tenant', { status: 421 })
    this.#tenant = tenant
    this.#app ??= this.#start(tenant)
    return this.#app.fetch(request)
  }

  #start(tenant: string): ReturnType<typeof createApp> {
    const auditKey = this.#env.CORDON_AUDIT_KEY
    const store = new SqlStore(
      new DurableObjectSqlDatabase(this.#storage),
      auditKey === undefined ? {} : { auditKey: Buffer.from(auditKey, 'base64url') },
    )
    const harness = new Harness({
      store,
      supervisor: NO_ENGINE,
      builtinProfiles: builtinProfilesFrom(BUILTIN_PROFILE_FILES),
      engines: [],
    })
    const keys = workerKeys(this.#env).filter((key) => key.principal.tenant === tenant)
    return createApp({ harness, auth: new TokenAuthenticator(keys) })
  }
}

/** The keys this deployment accepts: the admin token, and `CORDON_TOKENS`. A bad setting is an error. */
export function workerKeys(env: WorkerEnv): { token: string; principal: Principal }[] {
  const keys: { token: string; principal: Principal }[] = []
  const admin = env.CORDON_ADMIN_TOKEN
  if (admin !== undefined && admin.length > 0) {
    if (admin.length < 16) throw new Error('CORDON_ADMIN_TOKEN must be at least 16 characters')
    keys.push({ token: admin, principal: { tenant: DEFAULT_TENANT, scopes: ['admin'] } })
  }
  if (env.CORDON_TOKENS !== undefined && env.CORDON_TOKENS.trim() !== '') {
    const listed = JSON.parse(env.CORDON_TOKENS) as unknown
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
  return keys
}

export default {
  fetch(request: Request, env: WorkerEnv): Promise<Response> {
    // The tenant is the token's; a request without a valid one goes to the default tenant's object,
    // whose app answers it (public routes, or 401). No client can name the tenant itself.
    const header = request.headers.get('authorization') ?? ''
    const token = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header)?.[1]
    const principal = token === undefined ? null : new TokenAuthenticator(workerKeys(env)).authenticate(token)
    const tenant = principal?.tenant ?? DEFAULT_TENANT
    const forwarded = new Request(request)
    forwarded.headers.set(TENANT_HEADER, tenant)
    return env.TENANTS.get(env.TENANTS.idFromName(tenant)).fetch(forwarded)
  },
}
