import { type Decision, deny } from './decision.ts'
import { globMatches, MAX_NAME_SEGMENTS } from './globs.ts'
import { blockedHostRange, canonicalHostname, type HostPattern, hostMatches, hostPatternOf } from './hosts.ts'
import { blockedRange, embeddedIPv4, formatIP, isUnspecified, parseIP, unmapIPv4 } from './ip-address.ts'
import { type ResolvedDenyRule, type ResolvedProfile, ruleRef } from './profile.ts'
import { DEFAULT_PORTS, HTTP_METHODS, type HttpMethod, type Scheme } from './profile-schema.ts'

declare const checkedBrand: unique symbol

/**
 * An outgoing request the egress policy allowed. Bindings connect only with one of these (it cannot be
 * built outside this package), to `host`:`port` as given, and only after every resolved address has
 * passed {@link decideAddress}.
 */
export interface CheckedEgress {
  /** The URL to request: the WHATWG parse of the guest's URL with the canonical host. */
  readonly url: string
  readonly scheme: Scheme
  /** Canonical host: lowercase punycode without trailing dot, or an IP literal (IPv6 bracketed). */
  readonly host: string
  readonly port: number
  readonly method: HttpMethod
  /** The percent-decoded path the rules were matched against. */
  readonly path: string
  /** The IP address when the host is a literal (no DNS lookup is needed), else null. */
  readonly address: string | null
  /** Whether a blocked (private, loopback, metadata...) address may be connected to. */
  readonly privateAllowed: boolean
  readonly rule: string
  /**
   * A CONNECT tunnel rather than one request: any method and path may travel inside it, so every deny
   * rule for the host and port applies whatever methods and paths it names.
   */
  readonly tunnel?: true
  readonly [checkedBrand]: true
}

export type EgressDenyCode =
  | 'INVALID_URL'
  | 'SCHEME_NOT_ALLOWED'
  | 'USERINFO_REFUSED'
  | 'INVALID_HOST'
  | 'PATH_AMBIGUOUS'
  | 'EGRESS_DENIED'
  | 'HOST_NOT_ALLOWED'
  | 'PORT_NOT_ALLOWED'
  | 'METHOD_NOT_ALLOWED'
  | 'PATH_NOT_ALLOWED'
  | 'PRIVATE_ADDRESS'
  | 'TUNNEL_NOT_ALLOWED'

export interface EgressRequest {
  url: string
  /** Defaults to GET; compared case-insensitively. */
  method?: string | undefined
}

const MAX_URL_LENGTH = 8192
/** Parsed host patterns of resolved (frozen) rules; a memo, invisible to callers. */
const patterns = new WeakMap<object, HostPattern | null>()

/**
 * Decides an outgoing HTTP request. The URL is parsed once (WHATWG) and normalised before matching:
 * host case, trailing dot, IDNA and every IPv4 spelling a URL accepts, the scheme's default port, dot
 * segments. Userinfo, encoded separators and ambiguous dot segments are refused outright. An explicit
 * deny rule beats any allow rule; without an allow rule that matches host, scheme, port, method and
 * path the request is denied. A literal address in a blocked range is denied unless the profile allows
 * private addresses or the matching rule names that very address.
 */
export function decideEgress(
  profile: ResolvedProfile,
  request: EgressRequest,
): Decision<EgressDenyCode, { request: CheckedEgress }> {
  const at = (pointer: string) => ruleRef(profile, pointer)
  if (request.url.length > MAX_URL_LENGTH) return deny('INVALID_URL', at('/network'), 'the URL is too long')
  let url: URL
  try {
    url = new URL(request.url)
  } catch {
    return deny('INVALID_URL', at('/network'), 'the URL does not parse')
  }
  const scheme = url.protocol.slice(0, -1)
  if (scheme !== 'https' && scheme !== 'http') {
    return deny('SCHEME_NOT_ALLOWED', at('/network'), `scheme "${scheme.slice(0, 20)}" is never allowed`)
  }
  if (url.username !== '' || url.password !== '') {
    return deny('USERINFO_REFUSED', at('/network'), 'URLs with credentials (user@host) are refused')
  }
  const host = canonicalHostname(url.hostname)
  if (host === null) return deny('INVALID_HOST', at('/network'), 'the URL has no valid host')
  const literal = parseIP(host)
  if (literal !== null && isUnspecified(literal)) {
    return deny('PRIVATE_ADDRESS', at('/network'), `${host} is an unspecified address, never a destination`)
  }
  const method = (request.method ?? 'GET').toUpperCase()
  if (!(HTTP_METHODS as readonly string[]).includes(method)) {
    return deny('METHOD_NOT_ALLOWED', at('/network'), `method "${method.slice(0, 20)}" is never allowed`)
  }
  const path = decodedPath(url.pathname)
  if (path === null) {
    return deny(
      'PATH_AMBIGUOUS',
      at('/network'),
      'the path has encoded separators, control characters or dot segments',
    )
  }
  const port = url.port === '' ? DEFAULT_PORTS[scheme] : Number(url.port)
  const target = { scheme: scheme as Scheme, host, port, method: method as HttpMethod, path }

  const { allow, deny: denials } = profile.network
  const denied = denyRuleFor(denials, target)
  if (denied >= 0) {
    return deny(
      'EGRESS_DENIED',
      at(`/network/deny/${denied}`),
      `${describe(target)} is denied by a deny rule`,
    )
  }

  let closest: ReturnType<typeof deny<EgressDenyCode>> | null = null
  let blocked: ReturnType<typeof deny<EgressDenyCode>> | null = null
  for (const [i, rule] of allow.entries()) {
    if (!matchesHost(rule, host)) continue
    const miss = (code: EgressDenyCode, field: string, what: string) =>
      deny(code, at(`/network/allow/${i}/${field}`), `${what} is not allowed for host "${rule.host}"`)
    const problem = !rule.schemes.includes(scheme)
      ? miss('SCHEME_NOT_ALLOWED', 'schemes', `scheme ${scheme}`)
      : !rule.ports.includes(port)
        ? miss('PORT_NOT_ALLOWED', 'ports', `port ${port}`)
        : !rule.methods.includes(target.method)
          ? miss('METHOD_NOT_ALLOWED', 'methods', `method ${method}`)
          : !rule.paths.some((glob) => globMatches(glob, path))
            ? miss('PATH_NOT_ALLOWED', 'paths', `path "${path.slice(0, 200)}"`)
            : null
    if (problem !== null) {
      closest ??= problem
      continue
    }
    url.hostname = host
    const admitted = admit(profile, i, rule, url.href, target)
    // A later rule may name this very address; only if none does is the request refused.
    if (admitted.effect === 'deny') blocked ??= admitted
    else return admitted
  }
  return (
    blocked ??
    closest ??
    deny('HOST_NOT_ALLOWED', at('/network/allow'), `host "${host}" is not in the allow list`)
  )
}

/**
 * Decides a CONNECT tunnel to `host`:`port` (https from the container engine's proxy). Only the host
 * and port are visible; method, path and headers travel encrypted inside the tunnel. So a tunnel is
 * allowed only where it widens nothing: an allow rule for the host must take https on that port with
 * every method and every path (`/**`), and no deny rule may name the host on that port, whatever
 * methods and paths it lists. A rule that narrows
 * methods or paths refuses the tunnel (TUNNEL_NOT_ALLOWED); plain-http requests through the proxy are
 * decided per request by {@link decideEgress} instead.
 */
export function decideTunnel(
  profile: ResolvedProfile,
  request: { host: string; port: number },
): Decision<EgressDenyCode, { request: CheckedEgress }> {
  const at = (pointer: string) => ruleRef(profile, pointer)
  const { port } = request
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    return deny('INVALID_HOST', at('/network'), 'the tunnel has no valid port')
  }
  let url: URL
  try {
    url = new URL(`https://${request.host}:${port}/`)
  } catch {
    return deny('INVALID_HOST', at('/network'), 'the tunnel has no valid host')
  }
  if (url.pathname !== '/' || url.search !== '' || url.username !== '' || url.password !== '') {
    return deny('INVALID_HOST', at('/network'), 'the tunnel has no valid host')
  }
  const host = canonicalHostname(url.hostname)
  if (host === null) return deny('INVALID_HOST', at('/network'), 'the tunnel has no valid host')
  const literal = parseIP(host)
  if (literal !== null && isUnspecified(literal)) {
    return deny('PRIVATE_ADDRESS', at('/network'), `${host} is an unspecified address, never a destination`)
  }
  const target = {
    scheme: 'https' as const,
    host,
    port,
    method: 'GET' as const,
    path: '/',
    tunnel: true as const,
  }
  const denied = denyRuleFor(profile.network.deny, target)
  if (denied >= 0) {
    return deny(
      'EGRESS_DENIED',
      at(`/network/deny/${denied}`),
      `a tunnel to ${host}:${port} is denied by a deny rule`,
    )
  }
  let closest: ReturnType<typeof deny<EgressDenyCode>> | null = null
  let blocked: ReturnType<typeof deny<EgressDenyCode>> | null = null
  for (const [i, rule] of profile.network.allow.entries()) {
    if (!matchesHost(rule, host)) continue
    const miss = (code: EgressDenyCode, field: string, what: string) =>
      deny(code, at(`/network/allow/${i}/${field}`), what)
    const narrowedMethods = HTTP_METHODS.filter((method) => !rule.methods.includes(method))
    const problem = !rule.schemes.includes('https')
      ? miss('SCHEME_NOT_ALLOWED', 'schemes', `https is not allowed for host "${rule.host}"`)
      : !rule.ports.includes(port)
        ? miss('PORT_NOT_ALLOWED', 'ports', `port ${port} is not allowed for host "${rule.host}"`)
        : narrowedMethods.length > 0
          ? miss(
              'TUNNEL_NOT_ALLOWED',
              'methods',
              `a tunnel (CONNECT) to ${host}:${port} could carry any method, and the rule for "${rule.host}" allows only ${rule.methods.join(', ')}`,
            )
          : !rule.paths.includes('/**')
            ? miss(
                'TUNNEL_NOT_ALLOWED',
                'paths',
                `a tunnel (CONNECT) to ${host}:${port} could reach any path, and the rule for "${rule.host}" allows only some`,
              )
            : null
    if (problem !== null) {
      closest ??= problem
      continue
    }
    const admitted = admit(profile, i, rule, url.href, target)
    if (admitted.effect === 'deny') blocked ??= admitted
    else return admitted
  }
  return (
    blocked ??
    closest ??
    deny('HOST_NOT_ALLOWED', at('/network/allow'), `host "${host}" is not in the allow list`)
  )
}

/**
 * The request allow rule `i` matched, checked for a literal address in a blocked range (refused unless
 * the profile allows private addresses or the rule names that very address).
 */
function admit(
  profile: ResolvedProfile,
  i: number,
  rule: { readonly host: string },
  href: string,
  target: { scheme: Scheme; host: string; port: number; method: HttpMethod; path: string; tunnel?: true },
): Decision<EgressDenyCode, { request: CheckedEgress }> {
  const { host } = target
  const address = parseIP(host)
  const privateAllowed = profile.network.allowPrivateAddresses || (address !== null && rule.host === host)
  if (address !== null && !privateAllowed) {
    const range = blockedHostRange(host)
    if (range !== null) {
      return deny(
        'PRIVATE_ADDRESS',
        ruleRef(profile, '/network/allowPrivateAddresses'),
        `${host} is a ${range.name} address`,
      )
    }
  }
  const checked = {
    url: href,
    ...target,
    address: address === null ? null : host.replace(/^\[|\]$/g, ''),
    privateAllowed,
    rule: ruleRef(profile, `/network/allow/${i}`),
  }
  return {
    effect: 'allow',
    code: 'ALLOWED',
    rule: checked.rule,
    request: Object.freeze(checked) as CheckedEgress,
  }
}

export type AddressDenyCode = 'INVALID_ADDRESS' | 'PRIVATE_ADDRESS' | 'EGRESS_DENIED'

/**
 * Decides one address a checked request's host resolved to (DNS is the caller's job; every resolved
 * address must pass, and the connection must go to the address that passed). IPv4-mapped IPv6 is
 * judged as the IPv4 address it maps.
 */
export function decideAddress(
  profile: ResolvedProfile,
  request: CheckedEgress,
  address: string,
): Decision<AddressDenyCode, { address: string }> {
  const ip = parseIP(address)
  if (ip === null) return deny('INVALID_ADDRESS', request.rule, 'not an IP address')
  const plain = unmapIPv4(ip)
  if (isUnspecified(plain)) {
    return deny(
      'PRIVATE_ADDRESS',
      ruleRef(profile, '/network'),
      `${request.host} resolves to an unspecified address, never a destination`,
    )
  }
  // A deny rule that names this address applies however the request spelled the host.
  const literal = plain.version === 4 ? formatIP(plain) : `[${formatIP(plain)}]`
  const denied = denyRuleFor(profile.network.deny, { ...request, host: literal })
  if (denied >= 0) {
    return deny(
      'EGRESS_DENIED',
      ruleRef(profile, `/network/deny/${denied}`),
      `${request.host} resolves to ${literal}, which a deny rule names`,
    )
  }
  const range = blockedRange(plain)
  if (range !== null && !request.privateAllowed) {
    return deny(
      'PRIVATE_ADDRESS',
      ruleRef(profile, '/network/allowPrivateAddresses'),
      `${request.host} resolves to a ${range.name} address`,
    )
  }
  return { effect: 'allow', code: 'ALLOWED', rule: request.rule, address }
}

/**
 * The first deny rule matching the target, or -1. Paths are also matched in a loose reading (lower
 * case, `;parameters` dropped, empty segments collapsed) so that spellings servers treat alike cannot
 * step around a denial; allow rules match the exact path only.
 */
function denyRuleFor(
  rules: readonly ResolvedDenyRule[],
  target: { host: string; port: number; method: HttpMethod; path: string; tunnel?: true | undefined },
): number {
  if (rules.length === 0) return -1
  if (target.tunnel === true) {
    // Inside a tunnel any method and path may travel: a rule for the host and port applies whole.
    const hosts = [target.host, ...embeddedIPv4Hosts(target.host)]
    return rules.findIndex(
      (rule) => hosts.some((host) => matchesHost(rule, host)) && (rule.ports?.includes(target.port) ?? true),
    )
  }
  const loose = loosePath(target.path)
  const pathMatches = (glob: string) =>
    globMatches(glob, target.path) || (loose !== target.path && globMatches(looseGlob(glob), loose))
  // HEAD runs the GET handler in most frameworks: a rule denying GET denies HEAD too.
  const method = target.method === 'HEAD' ? ['HEAD', 'GET'] : [target.method]
  const hosts = [target.host, ...embeddedIPv4Hosts(target.host)]
  return rules.findIndex(
    (rule) =>
      hosts.some((host) => matchesHost(rule, host)) &&
      (rule.ports?.includes(target.port) ?? true) &&
      (rule.methods?.some((m) => method.includes(m)) ?? true) &&
      (rule.paths?.some(pathMatches) ?? true),
  )
}

/**
 * The path as lenient servers may read it: compatibility-normalised (NFKC: a fullwidth solidus is a
 * `/`), case-folded, `;parameters` dropped, trailing dots and spaces of a segment dropped (IIS), empty
 * segments collapsed.
 */
function loosePath(path: string): string {
  const segments = looseGlob(path)
    .split('/')
    .map((segment) => segment.replace(/;.*$/, '').replace(/[. ]+$/, ''))
  return segments.filter((segment, i) => i === 0 || segment !== '').join('/') || '/'
}

function looseGlob(glob: string): string {
  return glob.normalize('NFKC').toUpperCase().toLowerCase()
}

/** For an IPv6 literal that embeds an IPv4 address (NAT64, SIIT, IPv4-compatible, 6to4), that address. */
function embeddedIPv4Hosts(host: string): string[] {
  const ip = host.startsWith('[') ? parseIP(host) : null
  const embedded = ip === null ? null : embeddedIPv4(ip)
  return embedded === null ? [] : [formatIP(embedded)]
}

function matchesHost(rule: { readonly host: string }, host: string): boolean {
  let pattern = patterns.get(rule)
  if (pattern === undefined) {
    pattern = hostPatternOf(rule.host)
    patterns.set(rule, pattern)
  }
  return pattern !== null && hostMatches(pattern, host)
}

/**
 * The path as servers will read it, or null when readings could differ: encoded `/`, `\` or control
 * characters, malformed escapes, and `.`/`..` segments (also `..;`, which some servers strip to `..`).
 */
export function decodedPath(pathname: string): string | null {
  if (/%(2f|5c|[01][0-9a-f]|7f)/i.test(pathname)) return null
  let path: string
  try {
    path = decodeURIComponent(pathname)
  } catch {
    return null
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f\\]/.test(path)) return null
  // Encoded twice (`%252f`): a server that decodes again would see a separator or a dot segment.
  if (/%(2e|2f|5c)/i.test(path)) return null
  const segments = path.split('/')
  if (segments.length > MAX_NAME_SEGMENTS) return null
  if (segments.some((segment) => /^\.\.?(;|$)/.test(segment))) return null
  return path
}

function describe(target: {
  scheme: string
  host: string
  port: number
  method: string
  path: string
}): string {
  return `${target.method} ${target.scheme}://${target.host}:${target.port}${target.path.slice(0, 200)}`
}
