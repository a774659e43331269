import { ENGINE_LANGUAGES } from '@cordon/contracts'
import { parse } from 'tldts'
import type { AgentDeclaration } from '../agent.ts'
import type { DocumentFormat } from '../documents.ts'
import { blockedHostRange, type HostPattern, hostPatternCovers, hostPatternOf } from '../hosts.ts'
import { widenings } from '../narrowing.ts'
import type { ResolvedAllowRule, ResolvedProfile } from '../profile.ts'
import { describeReach, type Reach, toolProfile } from './reach.ts'
import { RULES, type Rule, SEVERITIES, type Severity } from './rules.ts'
import { locate, type SourceLocation } from './source-map.ts'

export type { Reach } from './reach.ts'
export { RULES, SEVERITIES, type Severity } from './rules.ts'

/** What one review looks at: a resolved profile, optionally the agent that runs under it. */
export interface ReviewSubject {
  profile: ResolvedProfile
  agent?: AgentDeclaration
  /** Resolved profiles of the agent's tools that declare their own `sandbox`, by tool name. */
  toolProfiles?: Readonly<Record<string, ResolvedProfile>>
  /** Where the subject was read from, so that findings can point at a file, line and column. */
  source?: { file: string; text: string; format: DocumentFormat }
}

export interface Finding {
  ruleId: string
  severity: Severity
  title: string
  message: string
  remediation: string
  profile: string
  agent?: string
  /** The tool whose own profile the finding is about, when it is about a tool's profile. */
  tool?: string
  /** JSON pointer into the resolved profile named by `profile`. */
  pointer: string
  location?: SourceLocation
}

export interface ReviewReport {
  findings: Finding[]
  reach: Reach[]
  summary: Record<Severity, number> & { subjects: number }
}

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
/**
 * Domains whose subdomains belong to many unrelated parties without each being a public suffix
 * themselves (cloud storage and CDN namespaces), and wildcard-DNS services that map any name to any
 * address. The Public Suffix List covers the rest.
 */
const SHARED_PARENTS = [
  'amazonaws.com',
  'windows.net',
  'cloudapp.net',
  'googleusercontent.com',
  'cloudfront.net',
  'azureedge.net',
  'nip.io',
  'sslip.io',
  'xip.io',
  'traefik.me',
  'localtest.me',
  'lvh.me',
]
/** Limits above these are flagged as beyond what an interactive execution needs (CORDON-LIM-001). */
const SENSIBLE_LIMITS: Record<string, number> = {
  cpuMs: 30_000,
  wallMs: 120_000,
  memoryMb: 512,
  outputBytes: 4 * 1024 * 1024,
  bindingCalls: 10_000,
  processes: 64,
  openFiles: 256,
}

/**
 * Reviews profiles (and agents) for risk. Pure: every finding names a rule with a stable id, a
 * severity, the JSON pointer of the field and a remediation, and where the subject came from a file,
 * the line and column. The report also states each subject's effective reach.
 */
export function reviewProfiles(subjects: readonly ReviewSubject[]): ReviewReport {
  const findings = subjects.flatMap(reviewOne)
  findings.sort((a, b) => SEVERITIES.indexOf(a.severity) - SEVERITIES.indexOf(b.severity))
  const summary = { subjects: subjects.length, critical: 0, high: 0, medium: 0, low: 0, info: 0 }
  for (const finding of findings) summary[finding.severity]++
  return { findings, reach: subjects.map(describeReach), summary }
}

function reviewOne(subject: ReviewSubject): Finding[] {
  const { profile, agent } = subject
  const findings: Finding[] = []
  /** Reports against `reviewed`, locating a pointer through `sourcePath` (a path in the source file). */
  const reporter =
    (reviewed: ResolvedProfile, sourcePath: (segments: string[]) => string[], scope?: string): Report =>
    (rule, pointer, message, about) => {
      const tool = about?.tool ?? scope
      const source = subject.source
      findings.push({
        ruleId: rule.id,
        severity: rule.severity,
        title: rule.title,
        message: scope === undefined ? message : `tool "${scope}": ${message}`,
        remediation: rule.remediation,
        profile: reviewed.name,
        ...(agent === undefined ? {} : { agent: agent.name }),
        ...(tool === undefined ? {} : { tool }),
        pointer,
        ...(source === undefined
          ? {}
          : {
              location: locate(
                source,
                about?.sourcePath ?? sourcePath(pointerSegments(pointer)),
                reviewed.network.deny.length,
              ),
            }),
      })
    }
  const code = reporter(profile, (path) =>
    agent === undefined ? path : typeof agent.sandbox === 'string' ? ['sandbox'] : ['sandbox', ...path],
  )
  reviewProfile(profile, code)
  if (agent === undefined) return findings
  reviewAgent(subject, agent, code)
  // Tools with a profile of their own are reachable through the tool API and MCP, and from code when
  // granted: their profiles get the same review.
  for (const [i, tool] of (agent.tools ?? []).entries()) {
    const own = toolProfile(subject, tool.name)
    if (own === undefined) continue
    const at = ['tools', String(i), 'sandbox']
    reviewProfile(
      own,
      reporter(own, (path) => (typeof tool.sandbox === 'string' ? at : [...at, ...path]), tool.name),
    )
  }
  return findings
}

function reviewProfile(profile: ResolvedProfile, report: Report): void {
  reviewNetwork(profile, report)
  reviewSecrets(profile, report)
  reviewStorage(profile, report)
  reviewEngines(profile, report)
}

/** `about`: the tool a finding concerns, and where in the source to point when not at the pointer. */
type Report = (
  rule: Rule,
  pointer: string,
  message: string,
  about?: { tool: string; sourcePath: string[] },
) => void

function reviewNetwork(profile: ResolvedProfile, report: Report): void {
  const { allow, deny, allowPrivateAddresses } = profile.network
  if (allowPrivateAddresses) {
    report(RULES.privateAddresses, '/network/allowPrivateAddresses', 'allowPrivateAddresses is true')
  }
  allow.forEach((rule, i) => {
    const at = `/network/allow/${i}`
    const pattern = hostPatternOf(rule.host)
    if (pattern?.kind === 'any') report(RULES.anyHost, `${at}/host`, 'host "*" allows every host')
    if (pattern?.kind === 'suffix' && isPublicSuffix(pattern.suffix)) {
      report(RULES.publicSuffix, `${at}/host`, `"${rule.host}" covers a public suffix`)
    }
    if (pattern?.kind === 'exact' && pattern.ip) {
      const range = blockedHostRange(pattern.host)
      if (range !== null)
        report(RULES.privateLiteral, `${at}/host`, `${rule.host} is a ${range.name} address`)
    }
    if (rule.schemes.includes('http'))
      report(RULES.plainHTTP, `${at}/schemes`, `"${rule.host}" may be reached over http`)
    const writes = rule.methods.filter((m) => WRITE_METHODS.has(m))
    if (writes.length > 0 && pattern?.kind !== 'exact') {
      report(RULES.wildcardWrites, `${at}/methods`, `${writes.join(', ')} allowed to "${rule.host}"`)
    }
    const odd = rule.ports.filter((port) => port !== 80 && port !== 443)
    if (odd.length > 0)
      report(RULES.oddPort, `${at}/ports`, `port ${odd.join(', ')} allowed to "${rule.host}"`)
  })
  deny.forEach((rule, i) => {
    const denied = hostPatternOf(rule.host)
    const overlaps = allow.some((a) => {
      const allowed = hostPatternOf(a.host)
      return (
        denied !== null &&
        allowed !== null &&
        (hostPatternCovers(allowed, denied) || hostPatternCovers(denied, allowed))
      )
    })
    if (!overlaps) report(RULES.deadDeny, `/network/deny/${i}/host`, `no allow rule reaches "${rule.host}"`)
  })
}

function reviewSecrets(profile: ResolvedProfile, report: Report): void {
  const names = Object.keys(profile.secrets)
  if (names.length === 0) return
  const broad = profile.network.allow.find((rule) => isBroad(rule))
  if (broad !== undefined) {
    report(
      RULES.secretExfiltration,
      '/secrets',
      `secrets ${names.join(', ')} with egress to "${broad.host}"${broad.methods.some((m) => WRITE_METHODS.has(m)) ? ' (writes allowed)' : ''}`,
    )
  }
  for (const [name, secret] of Object.entries(profile.secrets)) {
    if (secret.query)
      report(RULES.secretInQuery, `/secrets/${name}/query`, `secret ${name} may go into URL queries`)
    secret.hosts.forEach((host, i) => {
      const at = `/secrets/${name}/hosts/${i}`
      const pattern = hostPatternOf(host)
      if (pattern === null) return
      if (pattern.kind !== 'exact')
        report(RULES.secretWildcard, at, `secret ${name} may be sent to "${host}"`)
      const reaching = profile.network.allow.filter((rule) => overlap(hostPatternOf(rule.host), pattern))
      const writable = reaching.filter((rule) => rule.methods.some((m) => WRITE_METHODS.has(m)))
      if (writable.length > 0) {
        const methods = [...new Set(writable.flatMap((r) => r.methods.filter((m) => WRITE_METHODS.has(m))))]
        report(
          RULES.secretWritableHost,
          at,
          `secret ${name} goes to "${host}", which accepts ${methods.join(', ')}`,
        )
      }
      if (
        !reaching.some((rule) => rule.schemes.includes('https') && covers(hostPatternOf(rule.host), pattern))
      ) {
        report(RULES.secretUnreachable, at, `no allow rule reaches "${host}" over https`)
      }
    })
  }
}

function reviewStorage(profile: ResolvedProfile, report: Report): void {
  const egress = profile.network.allow.length > 0
  const { filesystem: fs, kv } = profile
  if (fs.access === 'read-write' && egress) {
    report(
      RULES.fsWriteEgress,
      '/filesystem/access',
      'the filesystem is writable and the profile allows egress',
    )
  }
  if (kv.access === 'read-write' && egress) {
    report(RULES.kvWriteEgress, '/kv/access', 'the key-value store is writable and the profile allows egress')
  }
  if (fs.quotaBytes > 256 * 1024 * 1024)
    report(RULES.storageQuota, '/filesystem/quotaBytes', `${fs.quotaBytes} bytes`)
  if (kv.quotaBytes > 16 * 1024 * 1024) report(RULES.storageQuota, '/kv/quotaBytes', `${kv.quotaBytes} bytes`)
  for (const [name, value] of Object.entries(profile.limits)) {
    const ceiling = SENSIBLE_LIMITS[name]
    if (ceiling !== undefined && value > ceiling) {
      report(RULES.limitCeiling, `/limits/${name}`, `${name} is ${value}, above ${ceiling}`)
    }
  }
  const grants =
    egress ||
    fs.access !== 'none' ||
    kv.access !== 'none' ||
    profile.tools.length > 0 ||
    Object.keys(profile.secrets).length > 0
  if (profile.limits.bindingCalls > 0 && !grants) {
    report(RULES.idleBindingCalls, '/limits/bindingCalls', `bindingCalls is ${profile.limits.bindingCalls}`)
  }
}

function reviewEngines(profile: ResolvedProfile, report: Report): void {
  const index = profile.engines.indexOf('container')
  if (index >= 0) {
    report(RULES.nativeEngine, `/engines/${index}`, 'the container engine is allowed')
    if (profile.network.allow.length > 0) {
      report(
        RULES.containerNetwork,
        `/engines/${index}`,
        'the container engine is allowed together with network egress',
      )
    }
  }
  profile.languages.forEach((language, i) => {
    if (!profile.engines.some((engine) => ENGINE_LANGUAGES[engine].includes(language))) {
      report(RULES.deadLanguage, `/languages/${i}`, `no allowed engine runs ${language}`)
    }
  })
}

const USES: ReadonlyArray<readonly [string, RegExp, (p: ResolvedProfile) => boolean, string]> = [
  [
    'network egress',
    /\bfetch\s*\(|\burllib\b|\brequests\b|\bhttp\.client\b|\bcurl\b|\bwget\b/,
    (p) => p.network.allow.length > 0,
    '/network/allow',
  ],
  [
    'the filesystem',
    /\bfs\s*\.|\/workspace\b|\bopen\s*\(/,
    (p) => p.filesystem.access !== 'none',
    '/filesystem/access',
  ],
  ['the key-value store', /\bkv\s*\./, (p) => p.kv.access !== 'none', '/kv/access'],
  ['secrets', /\bsecrets\b/, (p) => Object.keys(p.secrets).length > 0, '/secrets'],
]

function reviewAgent(subject: ReviewSubject, agent: AgentDeclaration, report: Report): void {
  const { profile } = subject
  const tools = agent.tools ?? []
  const declared = new Set(tools.map((tool) => tool.name))
  profile.tools.forEach((name, i) => {
    if (name !== '*' && !declared.has(name)) {
      report(RULES.toolUndeclared, `/tools/${i}`, `tool "${name}" is granted but not declared`)
    }
  })
  // Every declared tool that code may call (by name, or through "*") and that has its own profile.
  for (const [i, tool] of tools.entries()) {
    const index = profile.tools.includes(tool.name)
      ? profile.tools.indexOf(tool.name)
      : profile.tools.indexOf('*')
    const own = toolProfile(subject, tool.name)
    if (index < 0 || own === undefined) continue
    const wider = widenings(own, profile)
    const first = wider[0]
    if (first !== undefined) {
      report(
        RULES.toolWidens,
        `/tools/${index}`,
        `tool "${tool.name}" runs under profile "${own.name}", which reaches further (${wider.length} way${wider.length === 1 ? '' : 's'}; first: ${first.path} ${first.message})`,
        { tool: tool.name, sourcePath: ['tools', String(i)] },
      )
    }
  }
  const inProfile = tools.filter((tool) => tool.sandbox === undefined)
  for (const [what, pattern, granted, pointer] of USES) {
    if (granted(profile) && !inProfile.some((tool) => pattern.test(tool.code))) {
      report(RULES.unusedCapability, pointer, `the profile grants ${what}, which no declared tool uses`)
    }
  }
}

function pointerSegments(pointer: string): string[] {
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
}

function covers(outer: HostPattern | null, inner: HostPattern | null): boolean {
  return outer !== null && inner !== null && hostPatternCovers(outer, inner)
}

function overlap(a: HostPattern | null, b: HostPattern | null): boolean {
  return covers(a, b) || covers(b, a)
}

/**
 * Whether `*.suffix` reaches hosts anyone can register: the suffix is on the Public Suffix List
 * (its ICANN and private sections: `com`, `co.uk`, `github.io`, `s3.us-east-1.amazonaws.com`), an
 * unknown top-level name, or lies in a shared namespace.
 */
function isPublicSuffix(suffix: string): boolean {
  if (parse(`x.${suffix}`, { allowPrivateDomains: true }).publicSuffix === suffix) return true
  return SHARED_PARENTS.some((parent) => suffix === parent || suffix.endsWith(`.${parent}`))
}

function isBroad(rule: ResolvedAllowRule): boolean {
  const pattern = hostPatternOf(rule.host)
  if (pattern === null || pattern.kind === 'exact') return false
  return (
    pattern.kind === 'any' || isPublicSuffix(pattern.suffix) || rule.methods.some((m) => WRITE_METHODS.has(m))
  )
}
