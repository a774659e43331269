import type { EngineName, Issue, Language } from '@cordon/contracts'
import type { Limits } from './limits.ts'
import type { Access, FilesystemScope, HttpMethod, Scheme } from './profile-schema.ts'

declare const resolvedBrand: unique symbol

/** An egress allow rule with every field explicit; `host` is a canonical host pattern. */
export interface ResolvedAllowRule {
  readonly host: string
  readonly schemes: readonly Scheme[]
  readonly ports: readonly number[]
  readonly methods: readonly HttpMethod[]
  readonly paths: readonly string[]
}

/** An egress deny rule; a field left out denies every port, method or path of the host. */
export interface ResolvedDenyRule {
  readonly host: string
  readonly ports?: readonly number[]
  readonly methods?: readonly HttpMethod[]
  readonly paths?: readonly string[]
}

export interface ResolvedSecret {
  readonly from: string
  readonly hosts: readonly string[]
  /** The host may put the value into the URL query too (URLs end up in logs: off unless asked for). */
  readonly query: boolean
}

/**
 * The virtual filesystem: `paths` are globs a path must match, `deny` globs refused regardless.
 * `scope` says whose files an execution sees: its own scratch space (`execution`) or the agent's
 * persistent one (`agent`).
 */
export interface ResolvedFilesystem {
  readonly root: string
  readonly access: Access
  readonly scope: FilesystemScope
  readonly quotaBytes: number
  readonly paths: readonly string[]
  readonly deny: readonly string[]
}

/** The agent's key-value namespace: `keys` are globs a key must match, `deny` globs refused regardless. */
export interface ResolvedKv {
  readonly access: Access
  readonly quotaBytes: number
  readonly keys: readonly string[]
  readonly deny: readonly string[]
}

/**
 * A profile that passed validation and resolved its `extends` chain: every limit explicit, every
 * section present (an absent capability is an explicit denial), hosts and globs canonical. Only this
 * package mints it; engines, bindings and the harness accept nothing else. Frozen all the way down.
 */
export interface ResolvedProfile {
  readonly name: string
  readonly description?: string
  /** The chain this profile resolved through, itself first (`["mine", "web-reader", "strict"]`). */
  readonly chain: readonly string[]
  readonly engines: readonly EngineName[]
  readonly languages: readonly Language[]
  readonly limits: Readonly<Limits>
  readonly network: {
    readonly allow: readonly ResolvedAllowRule[]
    readonly deny: readonly ResolvedDenyRule[]
    readonly allowPrivateAddresses: boolean
  }
  readonly secrets: Readonly<Record<string, ResolvedSecret>>
  readonly filesystem: ResolvedFilesystem
  readonly kv: ResolvedKv
  readonly tools: readonly string[]
  readonly [resolvedBrand]: true
}

export type ProfileResult = { ok: true; profile: ResolvedProfile } | { ok: false; issues: Issue[] }

/** The parts of a document that need canonical forms, made canonical (hosts) or checked (globs). */
export interface Normalised {
  allow?: ResolvedAllowRule[]
  deny?: ResolvedDenyRule[]
  secretHosts?: Record<string, string[]>
}

/** A resolved profile before it is frozen and branded. */
export type ProfileValue = Omit<ResolvedProfile, typeof resolvedBrand>

/** Freezes a plain resolved value and brands it. Only `resolve.ts` calls this. */
export function mintProfile(value: ProfileValue): ResolvedProfile {
  return deepFreeze(value) as ResolvedProfile
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner)
    Object.freeze(value)
  }
  return value
}

/** A pointer into a resolved profile, as decisions and findings name the entry that decided them. */
export function ruleRef(profile: Pick<ResolvedProfile, 'name'>, pointer: string): string {
  return `profiles/${profile.name}#${pointer}`
}
