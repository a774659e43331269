import { type BlockedRange, blockedRange, formatIP, parseIP, unmapIPv4 } from './ip-address.ts'

/**
 * Hosts as the policy compares them: lowercase ASCII (IDNA to punycode), no trailing dot, IP literals
 * in one canonical form (IPv4 dotted quad, an IPv4-mapped IPv6 address as its IPv4 address, other IPv6
 * compressed and bracketed). Requests and profile rules go through the same function, so two spellings
 * of one host always compare equal.
 */
export type HostPattern =
  | { readonly kind: 'any' }
  | { readonly kind: 'exact'; readonly host: string; readonly ip: boolean }
  | { readonly kind: 'suffix'; readonly suffix: string }

const MAX_HOST_LENGTH = 253
const FORBIDDEN = /[\s/\\@?#%*]/

/**
 * The canonical form of a hostname or IP literal, or null when it is not one. Uses the WHATWG URL host
 * parser, so every IPv4 form a URL accepts (`2130706433`, `0x7f.1`, `017700000001`) becomes dotted.
 */
export function canonicalHost(text: string): string | null {
  if (text.length === 0 || text.length > MAX_HOST_LENGTH + 2 || FORBIDDEN.test(text)) return null
  if (text.includes(':') && !text.startsWith('[')) return null
  let url: URL
  try {
    url = new URL(`http://${text}/`)
  } catch {
    return null
  }
  if (url.username !== '' || url.password !== '' || url.port !== '' || url.pathname !== '/') return null
  return canonicalHostname(url.hostname)
}

/** Canonical form of a hostname already parsed by WHATWG URL (`url.hostname`), or null. */
export function canonicalHostname(hostname: string): string | null {
  if (hostname.startsWith('[')) {
    const ip = parseIP(hostname)
    if (ip === null) return null
    const plain = unmapIPv4(ip)
    return plain.version === 4 ? formatIP(plain) : `[${formatIP(plain)}]`
  }
  const host = hostname.endsWith('.') ? hostname.slice(0, -1) : hostname
  if (host.length === 0 || host.length > MAX_HOST_LENGTH || host.includes('*')) return null
  if (parseIP(host) !== null) return host
  const labels = host.split('.')
  if (labels.some((label) => label.length === 0 || label.length > 63)) return null
  if (!/^[a-z0-9._-]+$/.test(host)) return null
  return host
}

/** True when a canonical host is an IP literal. */
export function isIPHost(host: string): boolean {
  return host.startsWith('[') || parseIP(host) !== null
}

export type HostPatternResult = { ok: true; pattern: HostPattern } | { ok: false; message: string }

/** Parses a profile's host pattern: `*` (any host), `*.suffix` (any subdomain, not the apex), or a host. */
export function parseHostPattern(text: string): HostPatternResult {
  if (text === '*') return { ok: true, pattern: { kind: 'any' } }
  if (text.startsWith('*.')) {
    const suffix = canonicalHost(text.slice(2))
    if (suffix === null) return { ok: false, message: `"${text}" is not a valid "*.domain" pattern` }
    if (isIPHost(suffix)) return { ok: false, message: `"${text}": a wildcard cannot apply to an IP address` }
    return { ok: true, pattern: { kind: 'suffix', suffix } }
  }
  const host = canonicalHost(text)
  if (host === null) {
    return { ok: false, message: `"${text}" is not a hostname, IP literal, "*.domain" or "*"` }
  }
  return { ok: true, pattern: { kind: 'exact', host, ip: isIPHost(host) } }
}

/** A pattern text parsed, or null when it is not a pattern (resolved profiles hold only valid ones). */
export function hostPatternOf(text: string): HostPattern | null {
  const parsed = parseHostPattern(text)
  return parsed.ok ? parsed.pattern : null
}

/** `hostPatternCovers` on two pattern texts; false when either is not a pattern. */
export function patternTextCovers(outer: string, inner: string): boolean {
  const o = hostPatternOf(outer)
  const i = hostPatternOf(inner)
  return o !== null && i !== null && hostPatternCovers(o, i)
}

/** The blocked range of a canonical IP-literal host (IPv4-mapped judged as IPv4); null for names. */
export function blockedHostRange(host: string): BlockedRange | null {
  const ip = parseIP(host)
  return ip === null ? null : blockedRange(unmapIPv4(ip))
}

/** The pattern written back in canonical text. */
export function formatHostPattern(pattern: HostPattern): string {
  switch (pattern.kind) {
    case 'any':
      return '*'
    case 'suffix':
      return `*.${pattern.suffix}`
    case 'exact':
      return pattern.host
  }
}

/** True when canonical `host` is matched by `pattern`. A suffix pattern never matches an IP literal. */
export function hostMatches(pattern: HostPattern, host: string): boolean {
  switch (pattern.kind) {
    case 'any':
      return true
    case 'exact':
      return pattern.host === host
    case 'suffix':
      return host.endsWith(`.${pattern.suffix}`) && !isIPHost(host)
  }
}

/** True when every host `inner` matches is matched by `outer`. */
export function hostPatternCovers(outer: HostPattern, inner: HostPattern): boolean {
  if (outer.kind === 'any') return true
  if (inner.kind === 'any') return false
  if (inner.kind === 'exact') return hostMatches(outer, inner.host)
  if (outer.kind === 'exact') return false
  return inner.suffix === outer.suffix || inner.suffix.endsWith(`.${outer.suffix}`)
}
