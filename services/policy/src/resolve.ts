import type { Issue } from '@cordon/contracts'
import { globProblem } from './globs.ts'
import { formatHostPattern, parseHostPattern } from './hosts.ts'
import { protoKeyPath, toIssues } from './issues.ts'
import { CORE_LIMITS, ENGINE_LIMIT_DEFAULTS, type Limits } from './limits.ts'
import { narrowProfile } from './narrowing.ts'
import {
  mintProfile,
  type Normalised,
  type ProfileResult,
  type ResolvedAllowRule,
  type ResolvedDenyRule,
} from './profile.ts'
import {
  type AllowRuleInput,
  DEFAULT_PORTS,
  type DenyRuleInput,
  FILESYSTEM_ROOT,
  type ProfileInput,
  ProfileSchema,
} from './profile-schema.ts'

/** `extends` chains are at most this long (the profile itself included). */
export const MAX_CHAIN_LENGTH = 8

export interface ResolveOptions {
  /**
   * The parsed document of another profile, for `extends`; undefined when there is none of that name.
   * The caller decides which profiles are visible (a tenant's own and the built-ins).
   */
  lookup?: (name: string) => unknown
}

/**
 * Validates a parsed profile document and resolves its `extends` chain into the effective profile.
 * A child may only narrow its parent: anything wider is an issue naming the field and the parent's
 * value. Cycles, missing parents and chains longer than {@link MAX_CHAIN_LENGTH} are issues at
 * `$.extends`. Pure: parents come only from `options.lookup`.
 */
export function resolveProfile(document: unknown, options: ResolveOptions = {}): ProfileResult {
  return resolveChain(document, options.lookup ?? (() => undefined), [])
}

function resolveChain(document: unknown, lookup: (name: string) => unknown, below: string[]): ProfileResult {
  const proto = protoKeyPath(document)
  if (proto !== null)
    return { ok: false, issues: [{ path: proto, message: 'the key "__proto__" is not allowed' }] }
  const parsed = ProfileSchema.safeParse(document)
  if (!parsed.success) return { ok: false, issues: toIssues(parsed.error) }
  const input = parsed.data
  const own = normalise(input)
  if (!own.ok) return own
  if (input.extends === undefined) return rootProfile(input, own.value)

  const chain = [...below, input.name]
  const fail = (message: string): ProfileResult => ({ ok: false, issues: [{ path: '$.extends', message }] })
  if (chain.includes(input.extends))
    return fail(`${[...chain, input.extends].map(quote).join(' -> ')} is a cycle`)
  if (chain.length >= MAX_CHAIN_LENGTH)
    return fail(`the extends chain is longer than ${MAX_CHAIN_LENGTH} profiles`)
  const parentDocument = lookup(input.extends)
  if (parentDocument === undefined) return fail(`parent profile "${input.extends}" does not exist`)
  const parent = resolveChain(parentDocument, lookup, chain)
  if (!parent.ok) {
    const first = parent.issues[0]
    return fail(
      `parent profile "${input.extends}" does not resolve: ${first?.path ?? '$'} ${first?.message ?? ''}`,
    )
  }
  if (parent.profile.name !== input.extends)
    return fail(`profile "${input.extends}" names itself "${parent.profile.name}"`)
  const narrowed = narrowProfile(input, own.value, parent.profile)
  return narrowed.ok ? { ok: true, profile: mintProfile(narrowed.value) } : narrowed
}

function normalise(input: ProfileInput): { ok: true; value: Normalised } | { ok: false; issues: Issue[] } {
  const issues: Issue[] = []
  const host = (text: string, path: string): string => {
    const result = parseHostPattern(text)
    if (result.ok) return formatHostPattern(result.pattern)
    issues.push({ path, message: result.message })
    return text
  }
  const globs = (list: readonly string[] | undefined, path: string, under?: string) => {
    list?.forEach((glob, i) => {
      const problem = globProblem(glob)
      if (problem !== null) issues.push({ path: `${path}[${i}]`, message: problem })
      else if (under !== undefined && glob !== under && !glob.startsWith(`${under}/`)) {
        issues.push({ path: `${path}[${i}]`, message: `must lie under ${under}` })
      }
    })
  }
  const value: Normalised = {}
  const network = input.network
  if (network?.allow !== undefined) {
    value.allow = network.allow.map((rule, i) => {
      globs(rule.paths, `$.network.allow[${i}].paths`)
      return explicitAllow({ ...rule, host: host(rule.host, `$.network.allow[${i}].host`) })
    })
  }
  if (network?.deny !== undefined) {
    value.deny = network.deny.map((rule, i) => {
      globs(rule.paths, `$.network.deny[${i}].paths`)
      return denyRule({ ...rule, host: host(rule.host, `$.network.deny[${i}].host`) })
    })
  }
  if (input.secrets !== undefined) {
    value.secretHosts = {}
    for (const [name, secret] of Object.entries(input.secrets)) {
      value.secretHosts[name] = secret.hosts.map((h, i) => host(h, `$.secrets.${name}.hosts[${i}]`))
    }
  }
  globs(input.filesystem?.paths, '$.filesystem.paths', FILESYSTEM_ROOT)
  globs(input.filesystem?.deny, '$.filesystem.deny', FILESYSTEM_ROOT)
  globs(input.kv?.keys, '$.kv.keys')
  globs(input.kv?.deny, '$.kv.deny')
  return issues.length > 0 ? { ok: false, issues } : { ok: true, value }
}

/** An allow rule with its defaults written out: https, the scheme's port, GET and HEAD, any path. */
function explicitAllow(rule: AllowRuleInput): ResolvedAllowRule {
  const schemes = rule.schemes ?? ['https']
  return {
    host: rule.host,
    schemes,
    ports: rule.ports ?? [...new Set(schemes.map((scheme) => DEFAULT_PORTS[scheme]))],
    methods: rule.methods ?? ['GET', 'HEAD'],
    paths: rule.paths ?? ['/**'],
  }
}

function denyRule(rule: DenyRuleInput): ResolvedDenyRule {
  return {
    host: rule.host,
    ...(rule.ports === undefined ? {} : { ports: rule.ports }),
    ...(rule.methods === undefined ? {} : { methods: rule.methods }),
    ...(rule.paths === undefined ? {} : { paths: rule.paths }),
  }
}

/** A profile without a parent: it states engines, languages and core limits; what it omits is denied. */
function rootProfile(input: ProfileInput, own: Normalised): ProfileResult {
  const issues: Issue[] = []
  const required = (path: string, what: string) =>
    issues.push({ path, message: `is required in a profile without "extends" (${what})` })
  if (input.engines === undefined) required('$.engines', 'which engines it may use')
  if (input.languages === undefined) required('$.languages', 'which languages it may run')
  for (const limit of CORE_LIMITS) {
    if (input.limits?.[limit] === undefined) required(`$.limits.${limit}`, 'every limit is explicit')
  }
  const fs = input.filesystem
  const kv = input.kv
  if (fs?.access === 'read-write' && fs.quotaBytes === undefined) {
    required('$.filesystem.quotaBytes', 'a writable filesystem needs a quota')
  }
  if (kv?.access === 'read-write' && kv.quotaBytes === undefined) {
    required('$.kv.quotaBytes', 'a writable key-value store needs a quota')
  }
  if (issues.length > 0 || input.engines === undefined || input.languages === undefined) {
    return { ok: false, issues }
  }
  return {
    ok: true,
    profile: mintProfile({
      name: input.name,
      ...(input.description === undefined ? {} : { description: input.description }),
      chain: [input.name],
      engines: input.engines,
      languages: input.languages,
      limits: { ...ENGINE_LIMIT_DEFAULTS, ...input.limits } as Limits,
      network: {
        allow: own.allow ?? [],
        deny: own.deny ?? [],
        allowPrivateAddresses: input.network?.allowPrivateAddresses ?? false,
      },
      secrets: Object.fromEntries(
        Object.entries(input.secrets ?? {}).map(([name, secret]) => [
          name,
          { from: secret.from, hosts: own.secretHosts?.[name] ?? secret.hosts, query: secret.query ?? false },
        ]),
      ),
      filesystem: {
        root: FILESYSTEM_ROOT,
        access: fs?.access ?? 'none',
        scope: fs?.scope ?? 'execution',
        quotaBytes: fs?.quotaBytes ?? 0,
        paths: fs?.paths ?? [`${FILESYSTEM_ROOT}/**`],
        deny: fs?.deny ?? [],
      },
      kv: {
        access: kv?.access ?? 'none',
        quotaBytes: kv?.quotaBytes ?? 0,
        keys: kv?.keys ?? ['**'],
        deny: kv?.deny ?? [],
      },
      tools: input.tools ?? [],
    }),
  }
}

function quote(name: string): string {
  return `"${name}"`
}
