import type { Issue } from '@cordon/contracts'
import { type GlobBudget, globCovers } from './globs.ts'
import { blockedHostRange, patternTextCovers } from './hosts.ts'
import { LIMIT_NAMES, type Limits } from './limits.ts'
import type {
  Normalised,
  ProfileValue,
  ResolvedAllowRule,
  ResolvedProfile,
  ResolvedSecret,
} from './profile.ts'
import { ACCESS_LEVELS, type Access, type ProfileInput } from './profile-schema.ts'

/** Coverage work one resolution may spend (about 50 ms here); see `GlobBudget`. */
const GLOB_BUDGET = 2_000_000

type Narrowed = { ok: true; value: ProfileValue } | { ok: false; issues: Issue[] }

/**
 * Applies a child document onto its resolved parent. What the child states replaces the parent's
 * value only if it is no wider; deny lists are appended (a child cannot drop its parent's denials).
 * Every widening is an issue naming the field and the parent's value.
 */
export function narrowProfile(input: ProfileInput, own: Normalised, parent: ResolvedProfile): Narrowed {
  const issues: Issue[] = []
  const from = `parent "${parent.name}"`
  const budget: GlobBudget = { steps: GLOB_BUDGET }
  const wider = (path: string, message: string) => issues.push({ path, message })

  const subset = <T extends string>(
    list: readonly T[] | undefined,
    allowed: readonly T[],
    path: string,
    what: string,
  ) => {
    list?.forEach((item, i) => {
      if (!allowed.includes(item)) {
        wider(`${path}[${i}]`, `${what} "${item}" is not allowed by ${from} (it allows: ${listed(allowed)})`)
      }
    })
    return list ?? allowed
  }

  const engines = subset(input.engines, parent.engines, '$.engines', 'engine')
  const languages = subset(input.languages, parent.languages, '$.languages', 'language')
  const tools = parent.tools.includes('*')
    ? (input.tools ?? parent.tools)
    : subset(input.tools, parent.tools, '$.tools', 'tool')

  const limits = { ...parent.limits } as Limits
  for (const name of LIMIT_NAMES) {
    const value = input.limits?.[name]
    if (value === undefined) continue
    if (value > parent.limits[name]) {
      wider(`$.limits.${name}`, `${value} is wider than ${from} (${parent.limits[name]})`)
    }
    limits[name] = value
  }

  own.allow?.forEach((rule, i) => {
    const problem = allowProblem(rule, parent.network.allow, parent.network.allowPrivateAddresses, budget)
    if (problem !== null)
      wider(`$.network.allow[${i}]${problem.field}`, `${problem.message}; ${from} ${problem.parent}`)
  })
  const allowPrivate = input.network?.allowPrivateAddresses ?? parent.network.allowPrivateAddresses
  if (allowPrivate && !parent.network.allowPrivateAddresses) {
    wider('$.network.allowPrivateAddresses', `true is wider than ${from} (false)`)
  }

  const secrets: Record<string, ResolvedSecret> = own.secretHosts === undefined ? { ...parent.secrets } : {}
  for (const [name, hosts] of Object.entries(own.secretHosts ?? {})) {
    const path = `$.secrets.${name}`
    const theirs = Object.hasOwn(parent.secrets, name) ? parent.secrets[name] : undefined
    const source = input.secrets?.[name]?.from ?? ''
    if (theirs === undefined) {
      wider(path, `${from} grants no secret "${name}" (it grants: ${listed(Object.keys(parent.secrets))})`)
      continue
    }
    if (source !== theirs.from) wider(`${path}.from`, `"${source}" differs from ${from} ("${theirs.from}")`)
    hosts.forEach((host, i) => {
      if (!theirs.hosts.some((outer) => patternTextCovers(outer, host))) {
        wider(
          `${path}.hosts[${i}]`,
          `"${host}" is not allowed by ${from} (it allows: ${listed(theirs.hosts)})`,
        )
      }
    })
    const query = input.secrets?.[name]?.query ?? theirs.query
    if (query && !theirs.query) wider(`${path}.query`, `true is wider than ${from} (false)`)
    secrets[name] = { from: theirs.from, hosts, query }
  }

  const store = <K extends 'paths' | 'keys'>(
    section: 'filesystem' | 'kv',
    key: K,
    mine: { access?: Access | undefined; quotaBytes?: number | undefined; deny?: string[] | undefined } & {
      [P in K]?: string[] | undefined
    },
    theirs: { access: Access; quotaBytes: number; deny: readonly string[] } & { [P in K]: readonly string[] },
  ) => {
    const access = mine.access ?? theirs.access
    if (rank(access) > rank(theirs.access)) {
      wider(`$.${section}.access`, `"${access}" is wider than ${from} ("${theirs.access}")`)
    }
    const quotaBytes = mine.quotaBytes ?? theirs.quotaBytes
    if (quotaBytes > theirs.quotaBytes) {
      wider(`$.${section}.quotaBytes`, `${quotaBytes} is wider than ${from} (${theirs.quotaBytes})`)
    }
    const allowed: readonly string[] = mine[key] ?? theirs[key]
    mine[key]?.forEach((glob, i) => {
      if (!theirs[key].some((outer) => globCovers(outer, glob, budget))) {
        wider(
          `$.${section}.${key}[${i}]`,
          `"${glob}" is not covered by ${from} (it allows: ${listed(theirs[key])})`,
        )
      }
    })
    return { access, quotaBytes, [key]: allowed, deny: [...new Set([...theirs.deny, ...(mine.deny ?? [])])] }
  }
  const filesystem = store('filesystem', 'paths', input.filesystem ?? {}, parent.filesystem)
  // A kept filesystem outlives the execution: `agent` is wider than `execution`.
  const scope = input.filesystem?.scope ?? parent.filesystem.scope
  if (scope === 'agent' && parent.filesystem.scope !== 'agent') {
    wider('$.filesystem.scope', `"agent" is wider than ${from} ("${parent.filesystem.scope}")`)
  }
  const kv = store('kv', 'keys', input.kv ?? {}, parent.kv)

  if (budget.steps < 0) {
    const message = `comparing its globs with ${from}'s takes more work than a resolution may spend; use fewer or simpler path and key globs`
    return { ok: false, issues: [{ path: '$', message }] }
  }
  if (issues.length > 0) return { ok: false, issues }
  return {
    ok: true,
    value: {
      name: input.name,
      ...(input.description === undefined ? {} : { description: input.description }),
      chain: [input.name, ...parent.chain],
      engines,
      languages,
      limits,
      network: {
        allow: own.allow ?? parent.network.allow,
        deny: [...parent.network.deny, ...(own.deny ?? [])],
        allowPrivateAddresses: allowPrivate,
      },
      secrets,
      filesystem: {
        root: parent.filesystem.root,
        access: filesystem.access,
        scope,
        quotaBytes: filesystem.quotaBytes,
        paths: filesystem.paths as readonly string[],
        deny: filesystem.deny,
      },
      kv: {
        access: kv.access,
        quotaBytes: kv.quotaBytes,
        keys: kv.keys as readonly string[],
        deny: kv.deny,
      },
      tools,
    },
  }
}

interface AllowProblem {
  field: string
  message: string
  parent: string
}

/**
 * Why no parent rule covers `rule`, against the first parent rule that covers its host; null if one
 * does. A rule naming a blocked address (loopback, private, metadata...) lets requests reach it, so
 * unless the parent allows private addresses it is covered only by a parent rule naming that address.
 */
function allowProblem(
  rule: ResolvedAllowRule,
  parents: readonly ResolvedAllowRule[],
  parentAllowsPrivate: boolean,
  budget: GlobBudget,
): AllowProblem | null {
  const namesBlocked = !parentAllowsPrivate && blockedHostRange(rule.host) !== null
  const sameHost = parents.filter(
    (outer) => patternTextCovers(outer.host, rule.host) && (!namesBlocked || outer.host === rule.host),
  )
  if (sameHost.length === 0 && namesBlocked) {
    return {
      field: '.host',
      message: `host "${rule.host}" is a blocked address, which only a rule naming it may allow`,
      parent: `names no such rule and does not allow private addresses`,
    }
  }
  if (sameHost.length === 0) {
    return {
      field: '.host',
      message: `host "${rule.host}" is not allowed`,
      parent: `allows hosts: ${listed(parents.map((p) => p.host))}`,
    }
  }
  let first: AllowProblem | null = null
  for (const outer of sameHost) {
    const problem = ruleProblem(rule, outer, budget)
    if (problem === null) return null
    first ??= problem
  }
  return first
}

function ruleProblem(
  rule: ResolvedAllowRule,
  outer: ResolvedAllowRule,
  budget: GlobBudget,
): AllowProblem | null {
  const extra = <T>(mine: readonly T[], theirs: readonly T[]) => mine.filter((item) => !theirs.includes(item))
  const fields = [
    ['schemes', extra(rule.schemes, outer.schemes), outer.schemes],
    ['ports', extra(rule.ports, outer.ports), outer.ports],
    ['methods', extra(rule.methods, outer.methods), outer.methods],
    ['paths', rule.paths.filter((p) => !outer.paths.some((o) => globCovers(o, p, budget))), outer.paths],
  ] as const
  for (const [field, wide, theirs] of fields) {
    if (wide.length > 0) {
      return {
        field: `.${field}`,
        message: `${listed(wide as readonly (string | number)[])} is wider than allowed for host "${rule.host}"`,
        parent: `allows: ${listed(theirs as readonly (string | number)[])}`,
      }
    }
  }
  return null
}

function rank(access: Access): number {
  return ACCESS_LEVELS.indexOf(access)
}

function listed(values: readonly (string | number)[]): string {
  return values.length === 0 ? 'none' : values.join(', ')
}

/**
 * How `child` reaches further than `parent` (hosts, secrets, storage, engines, languages, tools), as
 * issues in the narrowing check's words; limits are not reach and are left out. Empty when it does not.
 */
export function widenings(child: ResolvedProfile, parent: ResolvedProfile): Issue[] {
  const input: ProfileInput = {
    name: child.name,
    engines: [...child.engines],
    languages: [...child.languages],
    network: { allowPrivateAddresses: child.network.allowPrivateAddresses },
    secrets: Object.fromEntries(
      Object.entries(child.secrets).map(([name, secret]) => [
        name,
        { from: secret.from, hosts: [...secret.hosts], query: secret.query },
      ]),
    ),
    filesystem: { ...child.filesystem, paths: [...child.filesystem.paths], deny: [] },
    kv: { ...child.kv, keys: [...child.kv.keys], deny: [] },
    tools: [...child.tools],
  } as ProfileInput
  const own: Normalised = {
    allow: [...child.network.allow],
    secretHosts: Object.fromEntries(Object.entries(child.secrets).map(([name, s]) => [name, [...s.hosts]])),
  }
  const result = narrowProfile(input, own, parent)
  return result.ok
    ? []
    : result.issues.filter(
        (issue) => !issue.path.startsWith('$.limits') && !issue.path.endsWith('quotaBytes'),
      )
}
