import { describe, expect, it } from 'vitest'
import { blockedRange, formatIP, type IPAddress, inCIDR, parseIP, unmapIPv4 } from './ip-address.ts'

function ip(text: string): IPAddress {
  const parsed = parseIP(text)
  if (parsed === null) throw new Error(`test address "${text}" did not parse`)
  return parsed
}

describe('parseIP and formatIP', () => {
  it.each([
    ['0.0.0.0', '0.0.0.0'],
    ['127.0.0.1', '127.0.0.1'],
    ['255.255.255.255', '255.255.255.255'],
    ['::', '::'],
    ['[::1]', '::1'],
    ['::1', '::1'],
    ['fe80::1', 'fe80::1'],
    ['::ffff:7f00:1', '::ffff:7f00:1'],
    ['::ffff:1.2.3.4', '::ffff:102:304'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
    ['2001:DB8::ABCD', '2001:db8::abcd'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['1:0:0:0:0:0:0:0', '1::'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8'],
    ['fd00:ec2::254', 'fd00:ec2::254'],
  ])('%s formats as %s', (text, canonical) => {
    expect(formatIP(ip(text))).toBe(canonical)
    expect(formatIP(ip(canonical))).toBe(canonical)
  })

  it('parses bytes in network order', () => {
    expect(parseIP('1.2.3.4')).toEqual({ version: 4, bytes: new Uint8Array([1, 2, 3, 4]) })
    expect(ip('[::ffff:7f00:1]').bytes).toEqual(
      new Uint8Array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 127, 0, 0, 1]),
    )
  })

  it.each([
    ['too few octets', '1.2.3'],
    ['too many octets', '1.2.3.4.5'],
    ['leading zero', '01.2.3.4'],
    ['octet over 255', '256.1.1.1'],
    ['empty octet', '1..2.3'],
    ['hex IPv4', '0x7f.0.0.1'],
    ['short IPv4', '0x7f.1'],
    ['decimal IPv4', '2130706433'],
    ['signed octet', '+1.2.3.4'],
    ['triple colon', ':::1'],
    ['two double colons', '1::2::3'],
    ['zone id', 'fe80::1%eth0'],
    ['bracketed zone id', '[fe80::1%25eth0]'],
    ['hostname', 'example.com'],
    ['empty', ''],
    ['unclosed bracket', '[::1'],
    ['unopened bracket', '::1]'],
    ['bracketed IPv4', '[1.2.3.4]'],
    ['five hex digits', '1::12345'],
    ['seven groups without ::', '1:2:3:4:5:6:7'],
    ['nine groups', '1:2:3:4:5:6:7:8:9'],
    [':: standing for no group', '1:2:3:4::5:6:7:8'],
    ['leading single colon', ':1::2'],
    ['trailing single colon', '1::2:'],
    ['non-hex group', '1::g'],
    ['IPv4 tail not last', '::1.2.3.4:1'],
    ['IPv4 tail with too many groups', '1:2:3:4:5:6:7:1.2.3.4'],
    ['bad IPv4 tail', '::ffff:1.2.3.256'],
    ['whitespace', ' ::1'],
    ['overlong input', `${'0:'.repeat(40)}1`],
  ])('refuses %s (%j)', (_name, text) => {
    expect(parseIP(text)).toBeNull()
  })
})

describe('unmapIPv4', () => {
  it('turns ::ffff:127.0.0.1 into 127.0.0.1, which is blocked either way', () => {
    const mapped = ip('::ffff:127.0.0.1')
    expect(blockedRange(mapped)?.name).toBe('IPv4-mapped')
    const plain = unmapIPv4(mapped)
    expect(plain).toEqual({ version: 4, bytes: new Uint8Array([127, 0, 0, 1]) })
    expect(blockedRange(plain)?.name).toBe('loopback')
  })

  it('blocks a mapped public address until it is unmapped', () => {
    const mapped = ip('[::ffff:808:808]')
    expect(blockedRange(mapped)?.name).toBe('IPv4-mapped')
    expect(blockedRange(unmapIPv4(mapped))).toBeNull()
  })

  it.each(['8.8.8.8', '::1', '::127.0.0.1', '::fffe:7f00:1', '1::ffff:7f00:1'])(
    'leaves %s unchanged',
    (text) => {
      const address = ip(text)
      expect(unmapIPv4(address)).toBe(address)
    },
  )
})

describe('inCIDR', () => {
  it('matches prefixes on and off byte boundaries', () => {
    expect(inCIDR(ip('10.255.0.1'), '10.0.0.0/8')).toBe(true)
    expect(inCIDR(ip('11.0.0.0'), '10.0.0.0/8')).toBe(false)
    expect(inCIDR(ip('100.127.255.255'), '100.64.0.0/10')).toBe(true)
    expect(inCIDR(ip('100.128.0.0'), '100.64.0.0/10')).toBe(false)
    expect(inCIDR(ip('fdff::1'), 'fc00::/7')).toBe(true)
    expect(inCIDR(ip('fe00::1'), 'fc00::/7')).toBe(false)
    expect(inCIDR(ip('1.2.3.4'), '0.0.0.0/0')).toBe(true)
    expect(inCIDR(ip('1.2.3.4'), '1.2.3.4/32')).toBe(true)
  })

  it('never mixes families', () => {
    expect(inCIDR(ip('::ffff:10.0.0.1'), '10.0.0.0/8')).toBe(false)
    expect(inCIDR(ip('10.0.0.1'), '::/0')).toBe(false)
    expect(inCIDR(ip('::'), '0.0.0.0/0')).toBe(false)
  })

  it.each([
    '10.0.0.0',
    '10.0.0.0/',
    '10.0.0.0/33',
    '10.0.0.0/08',
    '10.0.0.1/8',
    '::/129',
    '[::]/0',
    'x/8',
    '/8',
  ])('throws on malformed CIDR %j', (cidr) => {
    expect(() => inCIDR(ip('10.0.0.1'), cidr)).toThrow(/CIDR/)
  })
})

// [address, expected name, expected cidr]: one address inside each range.
const BLOCKED_CASES: readonly (readonly [string, string, string])[] = [
  ['0.0.0.0', 'this network (unspecified)', '0.0.0.0/8'],
  ['0.255.255.255', 'this network (unspecified)', '0.0.0.0/8'],
  ['10.1.2.3', 'private (RFC 1918)', '10.0.0.0/8'],
  ['100.64.0.0', 'shared address space (CGNAT)', '100.64.0.0/10'],
  ['100.127.255.255', 'shared address space (CGNAT)', '100.64.0.0/10'],
  ['127.0.0.1', 'loopback', '127.0.0.0/8'],
  ['127.255.255.254', 'loopback', '127.0.0.0/8'],
  ['169.254.169.254', 'cloud metadata', '169.254.169.254/32'],
  ['169.254.170.2', 'cloud metadata (ECS)', '169.254.170.2/32'],
  ['169.254.1.1', 'link-local', '169.254.0.0/16'],
  ['169.254.169.253', 'link-local', '169.254.0.0/16'],
  ['172.16.0.0', 'private (RFC 1918)', '172.16.0.0/12'],
  ['172.31.255.255', 'private (RFC 1918)', '172.16.0.0/12'],
  ['192.0.0.8', 'IETF protocol assignments', '192.0.0.0/24'],
  ['192.0.2.1', 'documentation (TEST-NET-1)', '192.0.2.0/24'],
  ['192.88.99.1', '6to4 relay anycast', '192.88.99.0/24'],
  ['192.168.1.1', 'private (RFC 1918)', '192.168.0.0/16'],
  ['198.18.0.1', 'benchmarking', '198.18.0.0/15'],
  ['198.19.255.255', 'benchmarking', '198.18.0.0/15'],
  ['198.51.100.7', 'documentation (TEST-NET-2)', '198.51.100.0/24'],
  ['203.0.113.9', 'documentation (TEST-NET-3)', '203.0.113.0/24'],
  ['224.0.0.1', 'multicast', '224.0.0.0/4'],
  ['239.255.255.250', 'multicast', '224.0.0.0/4'],
  ['240.0.0.1', 'reserved', '240.0.0.0/4'],
  ['255.255.255.255', 'limited broadcast', '255.255.255.255/32'],
  ['::', 'unspecified', '::/128'],
  ['::1', 'loopback', '::1/128'],
  ['::ffff:192.168.0.1', 'IPv4-mapped', '::ffff:0:0/96'],
  ['::ffff:0:7f00:1', 'IPv4-translated (SIIT)', '::ffff:0:0:0/96'],
  ['::10.0.0.1', 'IPv4-compatible (deprecated)', '::/96'],
  ['64:ff9b::a9fe:a9fe', 'NAT64', '64:ff9b::/96'],
  ['64:ff9b:1::1', 'NAT64 (local use)', '64:ff9b:1::/48'],
  ['100::1', 'discard', '100::/64'],
  ['2001::1', 'Teredo', '2001::/32'],
  ['2001:1ff::1', 'IETF protocol assignments', '2001::/23'],
  ['2001:db8::1', 'documentation', '2001:db8::/32'],
  ['3fff:fff::1', 'documentation', '3fff::/20'],
  ['2002:7f00:1::1', '6to4', '2002::/16'],
  ['fd00:ec2::254', 'cloud metadata', 'fd00:ec2::254/128'],
  ['fd00:ec2::253', 'unique local', 'fc00::/7'],
  ['fc00::1', 'unique local', 'fc00::/7'],
  ['fe80::1', 'link-local', 'fe80::/10'],
  ['febf::1', 'link-local', 'fe80::/10'],
  ['fec0::1', 'site-local (deprecated)', 'fec0::/10'],
  ['ff02::1', 'multicast', 'ff00::/8'],
]

describe('blockedRange: blocked addresses', () => {
  it.each(BLOCKED_CASES)('%s is %s', (text, name, cidr) => {
    expect(blockedRange(ip(text))).toEqual({ cidr, name })
    expect(inCIDR(ip(text), cidr)).toBe(true)
  })

  it('has a case for every range in the table', () => {
    expect(new Set(BLOCKED_CASES.map(([, , cidr]) => cidr)).size).toBe(36)
  })
})

describe('blockedRange: public neighbours and examples', () => {
  it.each([
    '8.8.8.8',
    '1.1.1.1',
    '1.0.0.0',
    '9.255.255.255',
    '11.0.0.0',
    '100.63.255.255',
    '100.128.0.0',
    '126.255.255.255',
    '128.0.0.0',
    '169.253.255.255',
    '169.255.0.0',
    '172.15.255.255',
    '172.32.0.0',
    '192.0.1.0',
    '192.0.3.0',
    '192.88.98.255',
    '192.88.100.0',
    '192.167.255.255',
    '192.169.0.0',
    '198.17.255.255',
    '198.20.0.0',
    '198.51.99.255',
    '198.51.101.0',
    '203.0.112.255',
    '203.0.114.0',
    '223.255.255.255',
    '2606:4700:4700::1111',
    '2001:4860:4860::8888',
    '::1:0:0:0',
    '64:ff9b:0:1::1',
    '100:0:0:1::1',
    '2001:200::1',
    '2001:db9::1',
    '2003::1',
    'fbff:ffff::1',
  ])('%s is public', (text) => {
    expect(blockedRange(ip(text))).toBeNull()
  })
})
