/**
 * An IP address as bytes in network order: 4 for IPv4, 16 for IPv6. Values come from `parseIP` or
 * `unmapIPv4`, which always produce the right length; callers must not mutate `bytes`.
 */
export type IPAddress =
  | { readonly version: 4; readonly bytes: Uint8Array }
  | { readonly version: 6; readonly bytes: Uint8Array }

/** A special-purpose range an address lies in: its CIDR text and a short human-readable name. */
export interface BlockedRange {
  readonly cidr: string
  readonly name: string
}

// Longer than any IP literal (the longest, bracketed with a dotted tail, is 47 characters).
const MAX_TEXT_LENGTH = 64
const V4_OCTET = /^(?:0|[1-9][0-9]{0,2})$/
const V6_GROUP = /^[0-9a-fA-F]{1,4}$/

/**
 * Parses a canonical IP literal as WHATWG URL's `hostname` produces it: a dotted-quad IPv4 address
 * (exactly 4 decimal octets 0-255, no leading zeros) or an RFC 4291 IPv6 text form, bare or in
 * brackets (8 groups of 1-4 hex digits, at most one `::`, optionally a dotted IPv4 tail). Returns null
 * for everything else: hostnames, zone ids (`fe80::1%eth0`), bracketed IPv4, and the non-canonical
 * IPv4 forms (`0x7f.1`, `2130706433`) that callers must first normalise through `new URL`.
 */
export function parseIP(text: string): IPAddress | null {
  if (text.length > MAX_TEXT_LENGTH) return null
  if (text.startsWith('[') || text.endsWith(']')) {
    if (!text.startsWith('[') || !text.endsWith(']')) return null
    const bytes = parseIPv6(text.slice(1, -1))
    return bytes === null ? null : { version: 6, bytes }
  }
  if (text.includes(':')) {
    const bytes = parseIPv6(text)
    return bytes === null ? null : { version: 6, bytes }
  }
  const bytes = parseIPv4(text)
  return bytes === null ? null : { version: 4, bytes }
}

function parseIPv4(text: string): Uint8Array | null {
  const parts = text.split('.')
  if (parts.length !== 4) return null
  const bytes = new Uint8Array(4)
  for (const [i, part] of parts.entries()) {
    if (!V4_OCTET.test(part)) return null
    const value = Number(part)
    if (value > 255) return null
    bytes[i] = value
  }
  return bytes
}

/** Groups of one side of `::` as 16-bit values, or null. `allowTail` permits a final dotted IPv4. */
function parseGroups(text: string, allowTail: boolean): number[] | null {
  if (text === '') return []
  const parts = text.split(':')
  const groups: number[] = []
  for (const [i, part] of parts.entries()) {
    if (allowTail && i === parts.length - 1 && part.includes('.')) {
      const v4 = parseIPv4(part)
      if (v4 === null) return null
      groups.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0))
    } else if (V6_GROUP.test(part)) {
      groups.push(Number.parseInt(part, 16))
    } else {
      return null
    }
  }
  return groups
}

function parseIPv6(text: string): Uint8Array | null {
  const halves = text.split('::')
  if (halves.length > 2) return null
  const [headText = '', tailText] = halves
  const head = parseGroups(headText, tailText === undefined)
  const tail = tailText === undefined ? [] : parseGroups(tailText, true)
  if (head === null || tail === null) return null
  const count = head.length + tail.length
  // `::` stands for at least one zero group.
  if (tailText === undefined ? count !== 8 : count > 7) return null
  const groups = [...head, ...new Array<number>(8 - count).fill(0), ...tail]
  const bytes = new Uint8Array(16)
  for (const [i, group] of groups.entries()) {
    bytes[2 * i] = group >> 8
    bytes[2 * i + 1] = group & 0xff
  }
  return bytes
}

/**
 * Canonical text of an address: IPv4 as a dotted quad; IPv6 per RFC 5952 (lowercase hex, no leading
 * zeros, the longest run of two or more zero groups compressed to `::`, the first on a tie, no
 * brackets). IPv4-mapped addresses stay in hex (`::ffff:7f00:1`), as WHATWG URL serialises them, so a
 * URL hostname round-trips; call `unmapIPv4` first to get the IPv4 text.
 */
export function formatIP(ip: IPAddress): string {
  if (ip.version === 4) return Array.from(ip.bytes).join('.')
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((ip.bytes[i] ?? 0) << 8) | (ip.bytes[i + 1] ?? 0))
  let bestStart = -1
  let bestLength = 1
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let end = i
    while (end < 8 && groups[end] === 0) end++
    if (end - i > bestLength) {
      bestStart = i
      bestLength = end - i
    }
    i = end
  }
  const hex = (list: number[]) => list.map((group) => group.toString(16)).join(':')
  if (bestStart < 0) return hex(groups)
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`
}

/**
 * For an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) the IPv4 address `a.b.c.d`; any other address is
 * returned unchanged (the same object). Callers that connect through a dual-stack socket must unmap
 * before classifying, because such a socket reaches the IPv4 address.
 */
export function unmapIPv4(ip: IPAddress): IPAddress {
  if (ip.version === 4 || !isMappedPrefix(ip.bytes)) return ip
  return { version: 4, bytes: ip.bytes.slice(12) }
}

/**
 * True for the unspecified addresses (`0.0.0.0/8`, `::`, and their IPv4-mapped forms). They are never
 * a destination: Linux connects a socket aimed at them to the local host, so no profile may reach
 * them, whatever it says about private addresses or names in its rules.
 */
export function isUnspecified(ip: IPAddress): boolean {
  const plain = unmapIPv4(ip)
  return plain.bytes.every((byte, i) => byte === 0 || (plain.version === 4 && i > 0))
}

function isMappedPrefix(bytes: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false
  return bytes[10] === 0xff && bytes[11] === 0xff
}

interface ParsedCIDR {
  readonly version: 4 | 6
  readonly bytes: Uint8Array
  readonly prefix: number
}

/** Parses `address/prefix`; throws on anything malformed, including host bits set past the prefix. */
function parseCIDR(cidr: string): ParsedCIDR {
  const slash = cidr.indexOf('/')
  const address = slash < 0 || cidr.startsWith('[') ? null : parseIP(cidr.slice(0, slash))
  const prefixText = cidr.slice(slash + 1)
  if (address === null || !/^(?:0|[1-9][0-9]{0,2})$/.test(prefixText)) {
    throw new Error(`malformed CIDR "${cidr}"`)
  }
  const prefix = Number(prefixText)
  const width = address.bytes.length * 8
  if (prefix > width) throw new Error(`CIDR "${cidr}" has a prefix longer than its address`)
  for (let bit = prefix; bit < width; bit++) {
    if (bitAt(address.bytes, bit) !== 0) throw new Error(`CIDR "${cidr}" has host bits set`)
  }
  return { version: address.version, bytes: address.bytes, prefix }
}

function bitAt(bytes: Uint8Array, bit: number): number {
  return ((bytes[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1
}

function contains(range: ParsedCIDR, ip: IPAddress): boolean {
  if (range.version !== ip.version) return false
  const whole = range.prefix >> 3
  for (let i = 0; i < whole; i++) if (ip.bytes[i] !== range.bytes[i]) return false
  const rest = range.prefix & 7
  if (rest === 0) return true
  const mask = (0xff << (8 - rest)) & 0xff
  return ((ip.bytes[whole] ?? 0) & mask) === ((range.bytes[whole] ?? 0) & mask)
}

/**
 * True when `ip` lies inside `cidr` (`10.0.0.0/8`, `fc00::/7`). Families never mix: an IPv4 CIDR never
 * contains an IPv6 address (not even an IPv4-mapped one; unmap first) and vice versa. Throws on a
 * malformed CIDR, including one with host bits set (`10.0.0.1/8`), since CIDRs come from code.
 */
export function inCIDR(ip: IPAddress, cidr: string): boolean {
  return contains(parseCIDR(cidr), ip)
}

const BLOCKED: readonly (readonly [cidr: string, name: string])[] = [
  ['0.0.0.0/8', 'this network (unspecified)'],
  ['10.0.0.0/8', 'private (RFC 1918)'],
  ['100.64.0.0/10', 'shared address space (CGNAT)'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.169.254/32', 'cloud metadata'],
  ['169.254.170.2/32', 'cloud metadata (ECS)'],
  ['169.254.0.0/16', 'link-local'],
  ['172.16.0.0/12', 'private (RFC 1918)'],
  ['192.0.0.0/24', 'IETF protocol assignments'],
  ['192.0.2.0/24', 'documentation (TEST-NET-1)'],
  ['192.88.99.0/24', '6to4 relay anycast'],
  ['192.168.0.0/16', 'private (RFC 1918)'],
  ['198.18.0.0/15', 'benchmarking'],
  ['198.51.100.0/24', 'documentation (TEST-NET-2)'],
  ['203.0.113.0/24', 'documentation (TEST-NET-3)'],
  ['224.0.0.0/4', 'multicast'],
  ['255.255.255.255/32', 'limited broadcast'],
  ['240.0.0.0/4', 'reserved'],
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['::ffff:0:0/96', 'IPv4-mapped'],
  ['::ffff:0:0:0/96', 'IPv4-translated (SIIT)'],
  ['::/96', 'IPv4-compatible (deprecated)'],
  ['64:ff9b::/96', 'NAT64'],
  ['64:ff9b:1::/48', 'NAT64 (local use)'],
  ['100::/64', 'discard'],
  ['2001::/32', 'Teredo'],
  ['2001::/23', 'IETF protocol assignments'],
  ['2001:db8::/32', 'documentation'],
  ['3fff::/20', 'documentation'],
  ['2002::/16', '6to4'],
  ['fd00:ec2::254/128', 'cloud metadata'],
  ['fc00::/7', 'unique local'],
  ['fe80::/10', 'link-local'],
  ['fec0::/10', 'site-local (deprecated)'],
  ['ff00::/8', 'multicast'],
]

// Longest prefix first, so the most specific name wins whatever the table order.
const RANGES = BLOCKED.map(([cidr, name]) => ({ range: parseCIDR(cidr), blocked: { cidr, name } })).sort(
  (a, b) => b.range.prefix - a.range.prefix,
)

/**
 * The special-purpose range `ip` lies in (loopback, private, link-local, cloud metadata, multicast,
 * documentation, NAT64, 6to4, ...), or null when it is a public unicast address. The most specific
 * range wins (`169.254.169.254` is "cloud metadata", not "link-local"). An IPv4-mapped IPv6 address is
 * itself blocked as "IPv4-mapped" whatever IPv4 address it carries, so forgetting to unmap fails
 * closed; callers that want the IPv4 verdict call `unmapIPv4` first.
 */
export function blockedRange(ip: IPAddress): BlockedRange | null {
  for (const { range, blocked } of RANGES) if (contains(range, ip)) return blocked
  return null
}

/**
 * The IPv4 address an IPv6 address carries in a translation or tunnelling form: IPv4-mapped
 * (`::ffff:a.b.c.d`), SIIT (`::ffff:0:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64
 * (`64:ff9b::a.b.c.d`) and 6to4 (`2002:AABB:CCDD::/48`); null for others and for IPv4. Used to apply
 * IPv4 deny rules to such spellings.
 */
export function embeddedIPv4(ip: IPAddress): IPAddress | null {
  if (ip.version === 4) return null
  const b = ip.bytes
  const zero = (from: number, to: number) => b.slice(from, to).every((x) => x === 0)
  const tail = (): IPAddress => ({ version: 4, bytes: b.slice(12, 16) })
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) return tail()
  if (zero(0, 8) && b[8] === 0xff && b[9] === 0xff && zero(10, 12)) return tail()
  if (zero(0, 12) && !zero(12, 16)) return tail()
  if (b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zero(4, 12)) return tail()
  if (b[0] === 0x20 && b[1] === 0x02) return { version: 4, bytes: b.slice(2, 6) }
  return null
}
