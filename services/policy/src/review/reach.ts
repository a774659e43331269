import type { ResolvedProfile } from '../profile.ts'
import type { ReviewSubject } from './review.ts'

/** What one profile lets code touch, in words a reviewer reads at a glance. */
export interface ReachEntry {
  /**
   * `code` for the agent's own code, `tool <name>` for a tool with its own profile that code may call,
   * `tool <name> (API and MCP only)` for one that code may not call.
   */
  via: string
  profile: string
  engines: string[]
  languages: string[]
  /** `GET,HEAD https://api.github.com:443/repos/**` per allow rule; deny rules follow as `deny ...`. */
  egress: string[]
  privateAddresses: boolean
  /** `GITHUB_TOKEN -> api.github.com` */
  secrets: string[]
  filesystem: string
  kv: string
  tools: string[]
}

/**
 * The effective reach of a subject: the union of what its code can touch directly and what the tools
 * it may call can touch under their own profiles.
 */
export interface Reach {
  profile: string
  agent?: string
  entries: ReachEntry[]
}

/** The tool's own profile, if it has one (own properties only, whatever the tool is called). */
export function toolProfile(subject: ReviewSubject, name: string): ResolvedProfile | undefined {
  const profiles = subject.toolProfiles
  return profiles !== undefined && Object.hasOwn(profiles, name) ? profiles[name] : undefined
}

export function describeReach(subject: ReviewSubject): Reach {
  const entries = [entry('code', subject.profile)]
  const granted = subject.profile.tools
  for (const tool of subject.agent?.tools ?? []) {
    const own = toolProfile(subject, tool.name)
    if (own === undefined) continue
    const callable = granted.includes('*') || granted.includes(tool.name)
    entries.push(entry(`tool ${tool.name}${callable ? '' : ' (API and MCP only)'}`, own))
  }
  return {
    profile: subject.profile.name,
    ...(subject.agent === undefined ? {} : { agent: subject.agent.name }),
    entries,
  }
}

function entry(via: string, profile: ResolvedProfile): ReachEntry {
  const { network, filesystem: fs, kv } = profile
  return {
    via,
    profile: profile.name,
    engines: [...profile.engines],
    languages: [...profile.languages],
    egress: [
      ...network.allow.map((rule) =>
        rule.schemes
          .map(
            (scheme) =>
              `${rule.methods.join(',')} ${scheme}://${rule.host}:${rule.ports.join('|')}${paths(rule.paths)}`,
          )
          .join('; '),
      ),
      ...network.deny.map(
        (rule) =>
          `deny ${rule.methods?.join(',') ?? 'any method'} ${rule.host}:${rule.ports?.join('|') ?? '*'}${paths(rule.paths ?? ['/**'])}`,
      ),
    ],
    privateAddresses: network.allowPrivateAddresses,
    secrets: Object.entries(profile.secrets).map(([name, secret]) => `${name} -> ${secret.hosts.join(', ')}`),
    filesystem:
      fs.access === 'none'
        ? 'none'
        : `${fs.access} ${fs.paths.join(', ')}${fs.deny.length > 0 ? ` (deny ${fs.deny.join(', ')})` : ''}`,
    kv:
      kv.access === 'none'
        ? 'none'
        : `${kv.access} ${kv.keys.join(', ')}${kv.deny.length > 0 ? ` (deny ${kv.deny.join(', ')})` : ''}`,
    tools: [...profile.tools],
  }
}

function paths(list: readonly string[]): string {
  return list.length === 1 ? (list[0] ?? '') : `{${list.join(',')}}`
}
