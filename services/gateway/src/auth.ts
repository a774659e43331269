import { createHash, timingSafeEqual } from 'node:crypto'

/**
 * API key scopes. Routes already check them; for now the only key is the admin token (all scopes).
 * Scoped keys and more tenants come with the key-management API.
 */
export const SCOPES = ['admin', 'deploy', 'invoke', 'audit'] as const
export type Scope = (typeof SCOPES)[number]

/** Who is calling: the tenant whose data every call is scoped to, and what it may do. */
export interface Principal {
  tenant: string
  scopes: readonly Scope[]
}

export interface Authenticator {
  /** The principal for a bearer token, or null. Must not leak timing about valid tokens. */
  authenticate(token: string): Principal | null
}

/** The default tenant that the admin token acts for in a single-tenant deployment. */
export const DEFAULT_TENANT = 'default'

/** Authenticates the admin token; compares SHA-256 digests in constant time. */
/** The token of an `Authorization: Bearer <token>` header, or undefined when there is none. */
export function bearerToken(header: string | undefined): string | undefined {
  return /^Bearer[ ]+([^\s]+)\s*$/i.exec(header ?? '')?.[1]
}

export class TokenAuthenticator implements Authenticator {
  readonly #keys: { digest: Buffer; principal: Principal }[]

  constructor(keys: { token: string; principal: Principal }[]) {
    this.#keys = keys.map(({ token, principal }) => ({ digest: digest(token), principal }))
  }

  authenticate(token: string): Principal | null {
    const candidate = digest(token)
    let found: Principal | null = null
    for (const key of this.#keys) if (timingSafeEqual(key.digest, candidate)) found = key.principal
    return found
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest()
}

/** True when the principal holds `scope` (admin holds every scope). */
export function hasScope(principal: Principal, scope: Scope): boolean {
  return principal.scopes.includes('admin') || principal.scopes.includes(scope)
}
