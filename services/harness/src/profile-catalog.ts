import { CordonError, ErrorCode, type Issue } from '@cordon/contracts'
import {
  type AgentDeclaration,
  inlineProfileNames,
  MAX_CHAIN_LENGTH,
  type ProfileResult,
  type ResolvedProfile,
  resolveInlineProfile,
  resolveInlineToolProfile,
  resolveProfile,
} from '@cordon/policy'
import type { BuiltinProfile } from './builtins.ts'
import type { Store } from './storage/store.ts'

export interface ProfileView {
  profile: ResolvedProfile
  builtin: boolean
}

/** An agent's effective profiles: its code's, and those of tools that declare their own sandbox. */
export interface AgentProfiles {
  profile: ResolvedProfile
  toolProfiles: Record<string, ResolvedProfile>
}

const MAX_CACHED = 10_000

/**
 * Every tenant's view of profiles: the built-ins plus its own, resolved through `extends` by the policy
 * package, cached until the tenant changes a profile. A change that would leave another profile or an
 * agent's inline sandbox unresolvable (a parent narrowed below its child) is refused.
 */
export class ProfileCatalog {
  readonly #store: Store
  readonly #builtins: ReadonlyMap<string, BuiltinProfile>
  readonly #resolved = new Map<string, ResolvedProfile>()

  constructor(store: Store, builtins: ReadonlyMap<string, BuiltinProfile>) {
    this.#store = store
    this.#builtins = builtins
  }

  isBuiltin(name: string): boolean {
    return this.#builtins.has(name)
  }

  builtin(name: string): BuiltinProfile | undefined {
    return this.#builtins.get(name)
  }

  /** The documents `extends` may name for this tenant: its own first, then the built-ins. */
  lookup(tenant: string, override?: { name: string; document: unknown }): (name: string) => unknown {
    return (name) => {
      if (override !== undefined && name === override.name) return override.document
      const builtin = this.#builtins.get(name)
      if (builtin !== undefined) return builtin.document
      const stored = this.#store.getProfile(tenant, name)
      return stored === null ? undefined : JSON.parse(stored.document)
    }
  }

  get(tenant: string, name: string): ProfileView {
    const builtin = this.#builtins.get(name)
    if (builtin !== undefined) return { profile: builtin.profile, builtin: true }
    const key = `${tenant}\u0000${name}`
    const cached = this.#resolved.get(key)
    if (cached !== undefined) return { profile: cached, builtin: false }
    const stored = this.#store.getProfile(tenant, name)
    if (stored === null) throw new CordonError(ErrorCode.PROFILE_NOT_FOUND, `no profile named "${name}"`)
    const profile = resolved(
      resolveProfile(JSON.parse(stored.document), { lookup: this.lookup(tenant) }),
      name,
    )
    if (this.#resolved.size >= MAX_CACHED) this.#resolved.clear()
    this.#resolved.set(key, profile)
    return { profile, builtin: false }
  }

  list(tenant: string): ProfileView[] {
    const builtins = [...this.#builtins.values()].map(({ profile }) => ({ profile, builtin: true }))
    return [...builtins, ...this.#store.listProfiles(tenant).map((stored) => this.get(tenant, stored.name))]
  }

  /**
   * Resolves `document` as the tenant's profile `name` and checks that every profile and inline
   * sandbox of the tenant that extends it (directly or through others) still resolves with it in
   * place; the others are not touched. Does not store anything.
   */
  check(tenant: string, name: string, document: unknown): ResolvedProfile {
    const lookup = this.lookup(tenant, { name, document })
    const result = resolveProfile(document, { lookup })
    if (!result.ok) throw invalid('profile', result.issues)
    for (const other of this.#store.listProfiles(tenant)) {
      const otherDocument: unknown = JSON.parse(other.document)
      if (other.name === name || !extendsFrom(otherDocument, name, lookup)) continue
      const dependent = resolveProfile(otherDocument, { lookup })
      if (!dependent.ok) throw inUse(name, `profile "${other.name}"`, dependent.issues)
    }
    for (const stored of this.#store.listAgents(tenant)) {
      const agent = JSON.parse(stored.document) as AgentDeclaration
      const taken = inlineProfileNames(agent).find((inline) => inline.name === name)
      if (taken !== undefined) {
        throw new CordonError(
          ErrorCode.PROFILE_IN_USE,
          `agent "${agent.name}" has an inline sandbox named "${name}" (${taken.path}); a profile of that name would take its place`,
        )
      }
      const inline = [agent.sandbox, ...(agent.tools ?? []).map((tool) => tool.sandbox)]
      if (!inline.some((sandbox) => typeof sandbox === 'object' && extendsFrom(sandbox, name, lookup)))
        continue
      const problem = this.#agentProblem(agent, lookup)
      if (problem !== null) throw inUse(name, `agent "${agent.name}"`, problem)
    }
    return result.profile
  }

  /** Drops the tenant's cached resolutions (after any profile change). */
  forget(tenant: string): void {
    for (const key of this.#resolved.keys()) if (key.startsWith(`${tenant}\u0000`)) this.#resolved.delete(key)
  }

  /** The profiles an agent runs under; a 422 naming the field when one does not resolve. */
  forAgent(tenant: string, agent: AgentDeclaration): AgentProfiles {
    const lookup = this.lookup(tenant)
    // A profile named but missing is a 404, as for any reference to a missing resource.
    for (const name of [agent.sandbox, ...(agent.tools ?? []).map((tool) => tool.sandbox)]) {
      if (typeof name === 'string' && lookup(name) === undefined) {
        throw new CordonError(ErrorCode.PROFILE_NOT_FOUND, `no profile named "${name}"`)
      }
    }
    const problem = this.#agentProblem(agent, lookup)
    if (problem !== null) throw invalid('agent', problem)
    const profile =
      typeof agent.sandbox === 'string'
        ? this.get(tenant, agent.sandbox).profile
        : resolved(resolveInlineProfile(agent, { lookup }), agent.name)
    // Null prototype: a tool may be named `__proto__` or `constructor`.
    const toolProfiles: Record<string, ResolvedProfile> = Object.create(null)
    for (const tool of agent.tools ?? []) {
      if (tool.sandbox === undefined) continue
      toolProfiles[tool.name] =
        typeof tool.sandbox === 'string'
          ? this.get(tenant, tool.sandbox).profile
          : resolved(resolveInlineToolProfile(agent, tool, { lookup }), tool.name)
    }
    return { profile, toolProfiles }
  }

  /** Issues (with paths into the agent declaration) when one of its profiles does not resolve. */
  #agentProblem(agent: AgentDeclaration, lookup: (name: string) => unknown): Issue[] | null {
    const check = (result: ProfileResult | null, prefix: string): Issue[] | null =>
      result === null || result.ok
        ? null
        : result.issues.map((i) => ({ ...i, path: i.path.replace(/^\$/, prefix) }))
    const named = (name: string, path: string): Issue[] | null =>
      lookup(name) === undefined ? [{ path, message: `profile "${name}" does not exist` }] : null
    const own =
      typeof agent.sandbox === 'string'
        ? named(agent.sandbox, '$.sandbox')
        : check(resolveInlineProfile(agent, { lookup }), '$.sandbox')
    if (own !== null) return own
    for (const [i, tool] of (agent.tools ?? []).entries()) {
      if (tool.sandbox === undefined) continue
      const problem =
        typeof tool.sandbox === 'string'
          ? named(tool.sandbox, `$.tools[${i}].sandbox`)
          : check(resolveInlineToolProfile(agent, tool, { lookup }), `$.tools[${i}].sandbox`)
      if (problem !== null) return problem
    }
    return null
  }
}

/** Whether `document`'s `extends` chain reaches `name` (a chain too long to follow counts as yes). */
function extendsFrom(document: unknown, name: string, lookup: (name: string) => unknown): boolean {
  let current = document
  for (let depth = 0; depth <= MAX_CHAIN_LENGTH; depth++) {
    const parent = (current as { extends?: unknown } | null)?.extends
    if (typeof parent !== 'string') return false
    if (parent === name) return true
    current = lookup(parent)
  }
  return true
}

function resolved(result: ProfileResult | null, name: string): ResolvedProfile {
  if (result === null) throw new Error(`profile "${name}" is not inline`)
  if (!result.ok) {
    const first = result.issues[0]
    throw new CordonError(
      ErrorCode.VALIDATION_FAILED,
      `profile "${name}" no longer resolves${first === undefined ? '' : `: ${first.path} ${first.message}`}`,
      result.issues,
    )
  }
  return result.profile
}

export function invalid(what: string, issues: Issue[]): CordonError {
  const first = issues[0]
  const summary = first === undefined ? '' : `: ${first.path} ${first.message}`
  return new CordonError(ErrorCode.VALIDATION_FAILED, `invalid ${what}${summary}`, issues)
}

function inUse(name: string, dependent: string, issues: Issue[]): CordonError {
  const first = issues[0]
  return new CordonError(
    ErrorCode.PROFILE_IN_USE,
    `${dependent} depends on profile "${name}" and would no longer resolve${first === undefined ? '' : `: ${first.path} ${first.message}`}`,
    issues,
  )
}
