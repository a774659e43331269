import { describe, expect, it } from 'vitest'
import { decideAddress, decideEgress, decideTunnel } from './egress.ts'
import { testProfile } from './test-profile.ts'

const profile = (network: unknown) => testProfile(network === undefined ? {} : { network })

const web = profile({
  allow: [
    { host: 'allowed.example', methods: ['GET', 'POST'], paths: ['/api/**', '/index.html'] },
    { host: '*.cdn.example', schemes: ['https', 'http'] },
    { host: 'bücher.example' },
    { host: '10.1.2.3', ports: [8080], schemes: ['http'] },
  ],
  deny: [{ host: 'allowed.example', paths: ['/api/admin/**'] }, { host: 'evil.cdn.example' }],
})

const decide = (url: string, method?: string) => decideEgress(web, { url, method })
/** Any host over http or https: only the private-address check stands between guest and loopback. */
const anyHost = profile({ allow: [{ host: '*', schemes: ['https', 'http'] }] })

describe('decideEgress: normalisation before matching', () => {
  it.each([
    ['an exact host', 'https://allowed.example/api/x'],
    ['upper case', 'https://ALLOWED.Example/api/x'],
    ['a trailing dot', 'https://allowed.example./api/x'],
    ['upper case and a trailing dot', 'https://ALLOWED.example./index.html'],
    ['the default port written out', 'https://allowed.example:443/api/x'],
    ['dot segments that resolve inside', 'https://allowed.example/api/a/../b'],
    ['percent-encoded dot segments', 'https://allowed.example/api/a/%2e%2e/b'],
    ['a Unicode host written in Unicode', 'https://bücher.example/'],
    ['the same host in punycode', 'https://xn--bcher-kva.example/'],
    ['a subdomain of a wildcard', 'https://img.cdn.example/x.png'],
    ['a deep subdomain of a wildcard', 'http://a.b.cdn.example/x.png'],
    ['a lower-case method', 'https://allowed.example/api/x'],
  ])('allows %s', (_what, url) => {
    expect(decide(url, 'get')).toMatchObject({ effect: 'allow', code: 'ALLOWED' })
  })

  it('hands back the canonical request it allowed', () => {
    const decision = decide('https://ALLOWED.example.:443/api/a/../b?q=1')
    expect(decision).toMatchObject({
      effect: 'allow',
      rule: 'profiles/p#/network/allow/0',
      request: {
        url: 'https://allowed.example/api/b?q=1',
        host: 'allowed.example',
        port: 443,
        method: 'GET',
        path: '/api/b',
        address: null,
        privateAllowed: false,
      },
    })
  })

  it.each([
    ['decimal', 'http://2130706433/'],
    ['hex with a short form', 'http://0x7f.1/'],
    ['octal', 'http://0177.0.0.1/'],
    ['IPv4-mapped IPv6', 'http://[::ffff:127.0.0.1]/'],
    ['IPv4-mapped IPv6 in hex', 'http://[::ffff:7f00:1]/'],
    ['plain loopback', 'http://127.0.0.1/'],
  ])('sees loopback written in %s as 127.0.0.1, denied as a private address', (_what, url) => {
    expect(decideEgress(anyHost, { url })).toMatchObject({
      effect: 'deny',
      code: 'PRIVATE_ADDRESS',
      rule: 'profiles/p#/network/allowPrivateAddresses',
      message: '127.0.0.1 is a loopback address',
    })
  })

  it('refuses cloud metadata addresses reached through a wildcard rule', () => {
    expect(decideEgress(anyHost, { url: 'http://169.254.169.254/latest/meta-data/' })).toMatchObject({
      code: 'PRIVATE_ADDRESS',
    })
    expect(decideEgress(anyHost, { url: 'http://[fd00:ec2::254]/' })).toMatchObject({
      code: 'PRIVATE_ADDRESS',
    })
    expect(decideEgress(anyHost, { url: 'http://[::ffff:a9fe:a9fe]/' })).toMatchObject({
      code: 'PRIVATE_ADDRESS',
    })
  })

  it('allows a private address that a rule names literally, and only there', () => {
    expect(decide('http://10.1.2.3:8080/')).toMatchObject({
      effect: 'allow',
      request: { address: '10.1.2.3', privateAllowed: true },
    })
    expect(decide('http://167838211:8080/')).toMatchObject({ effect: 'allow' })
    expect(decide('http://10.1.2.4:8080/')).toMatchObject({ effect: 'deny', code: 'HOST_NOT_ALLOWED' })
  })

  it('allows a private address named by a later rule even when an earlier "*" rule matches first', () => {
    // Found by the property test: the first full match used to decide alone.
    const both = profile({
      allow: [
        { host: '*', schemes: ['http'] },
        { host: '127.0.0.1', schemes: ['http'] },
      ],
    })
    expect(decideEgress(both, { url: 'http://[::ffff:127.0.0.1]/' })).toMatchObject({
      effect: 'allow',
      rule: 'profiles/p#/network/allow/1',
    })
    expect(decideEgress(both, { url: 'http://127.0.0.2/' })).toMatchObject({ code: 'PRIVATE_ADDRESS' })
  })

  it('refuses userinfo: http://allowed.example@evil.example/ goes to evil.example', () => {
    expect(decide('https://allowed.example@evil.example/api/x')).toMatchObject({ code: 'USERINFO_REFUSED' })
    expect(decide('https://user:pw@allowed.example/api/x')).toMatchObject({ code: 'USERINFO_REFUSED' })
  })

  it.each([
    ['an encoded slash', 'https://allowed.example/api/..%2fadmin'],
    ['an encoded backslash', 'https://allowed.example/api/..%5cadmin'],
    ['an encoded NUL', 'https://allowed.example/api/x%00.html'],
    ['a Tomcat-style ..;', 'https://allowed.example/api/..;/secret'],
    ['a malformed escape', 'https://allowed.example/api/%zz'],
    ['an escape that is not UTF-8', 'https://allowed.example/api/%ff'],
  ])('refuses an ambiguous path: %s', (_what, url) => {
    expect(decide(url)).toMatchObject({ effect: 'deny', code: 'PATH_AMBIGUOUS' })
  })

  it('matches paths after the URL parser resolved dot segments, so traversal out of /api is seen', () => {
    expect(decide('https://allowed.example/api/../secret')).toMatchObject({ code: 'PATH_NOT_ALLOWED' })
    expect(decide('https://allowed.example/api/%2e%2e/secret')).toMatchObject({ code: 'PATH_NOT_ALLOWED' })
    expect(decide('https://allowed.example/api\\..\\secret')).toMatchObject({ code: 'PATH_NOT_ALLOWED' })
  })
})

describe('decideEgress: the forms named in issue 3, written exactly', () => {
  const p = profile({
    allow: [
      { host: 'allowed.example', schemes: ['http', 'https'] },
      { host: '*', schemes: ['http'] },
    ],
  })

  it.each([
    ['http://2130706433/', 'PRIVATE_ADDRESS'],
    ['http://0x7f.1/', 'PRIVATE_ADDRESS'],
    ['http://[::ffff:127.0.0.1]/', 'PRIVATE_ADDRESS'],
    ['http://allowed.example@evil.example/', 'USERINFO_REFUSED'],
  ])('%s is denied (%s)', (url, code) => {
    expect(decideEgress(p, { url })).toMatchObject({ effect: 'deny', code })
  })

  it('http://ALLOWED.example./ is allowed.example, on the rule that names it', () => {
    expect(decideEgress(p, { url: 'http://ALLOWED.example./' })).toMatchObject({
      effect: 'allow',
      rule: 'profiles/p#/network/allow/0',
      request: { host: 'allowed.example', port: 80, url: 'http://allowed.example/' },
    })
  })
})

describe('decideEgress: decisions name their rule', () => {
  it('lets an explicit deny beat an allow', () => {
    expect(decide('https://allowed.example/api/admin/users')).toMatchObject({
      effect: 'deny',
      code: 'EGRESS_DENIED',
      rule: 'profiles/p#/network/deny/0',
    })
    expect(decide('https://evil.cdn.example/')).toMatchObject({
      code: 'EGRESS_DENIED',
      rule: 'profiles/p#/network/deny/1',
    })
    expect(decide('https://EVIL.cdn.example./')).toMatchObject({ code: 'EGRESS_DENIED' })
  })

  it.each([
    ['a host no rule names', 'https://evil.example/', 'GET', 'HOST_NOT_ALLOWED', 'profiles/p#/network/allow'],
    [
      'the apex of a wildcard',
      'https://cdn.example/',
      'GET',
      'HOST_NOT_ALLOWED',
      'profiles/p#/network/allow',
    ],
    [
      'a host that only ends like an allowed one',
      'https://notallowed.example/',
      'GET',
      'HOST_NOT_ALLOWED',
      'profiles/p#/network/allow',
    ],
    [
      'plain http where https is required',
      'http://allowed.example/api/x',
      'GET',
      'SCHEME_NOT_ALLOWED',
      'profiles/p#/network/allow/0/schemes',
    ],
    [
      'another port',
      'https://allowed.example:444/api/x',
      'GET',
      'PORT_NOT_ALLOWED',
      'profiles/p#/network/allow/0/ports',
    ],
    [
      'another method',
      'https://allowed.example/api/x',
      'DELETE',
      'METHOD_NOT_ALLOWED',
      'profiles/p#/network/allow/0/methods',
    ],
    [
      'another path',
      'https://allowed.example/other',
      'GET',
      'PATH_NOT_ALLOWED',
      'profiles/p#/network/allow/0/paths',
    ],
    [
      'a method HTTP rules never list',
      'https://allowed.example/api/x',
      'TRACE',
      'METHOD_NOT_ALLOWED',
      'profiles/p#/network',
    ],
    ['a scheme that is not HTTP', 'file:///etc/passwd', 'GET', 'SCHEME_NOT_ALLOWED', 'profiles/p#/network'],
    ['javascript:', 'javascript:alert(1)', 'GET', 'SCHEME_NOT_ALLOWED', 'profiles/p#/network'],
    ['a URL that does not parse', 'https://', 'GET', 'INVALID_URL', 'profiles/p#/network'],
    ['a wildcard in the request', 'https://*.cdn.example/', 'GET', 'INVALID_HOST', 'profiles/p#/network'],
    [
      'a path of more than 128 segments',
      `https://allowed.example/api/${Array(128).fill('a').join('/')}`,
      'GET',
      'PATH_AMBIGUOUS',
      'profiles/p#/network',
    ],
    [
      'an overlong URL',
      `https://allowed.example/api/${'a'.repeat(9000)}`,
      'GET',
      'INVALID_URL',
      'profiles/p#/network',
    ],
  ])('denies %s', (_what, url, method, code, rule) => {
    expect(decide(url, method)).toMatchObject({ effect: 'deny', code, rule, message: expect.any(String) })
  })

  it.each([
    ['a doubled slash (nginx merges them)', '/api//admin/users'],
    ['a ;parameter (Tomcat and Spring drop it)', '/api/admin;x=1/users'],
    ['an encoded ;parameter', '/api/admin%3b/users'],
    ['another letter case', '/api/ADMIN/users'],
  ])('applies a deny rule to %s', (_what, path) => {
    expect(decide(`https://allowed.example${path}`)).toMatchObject({
      code: 'EGRESS_DENIED',
      rule: 'profiles/p#/network/deny/0',
    })
  })

  it.each([
    ['a fullwidth solidus', '/api\uff0fadmin/users'],
    ['a trailing dot (IIS drops it)', '/api/admin./users'],
    ['a trailing space (IIS drops it)', '/api/admin%20/users'],
    ['a dotless i that folds to i', '/api/adm\u0131n/users'],
  ])('applies a deny rule to %s', (_what, path) => {
    const p = profile({
      allow: [{ host: 'allowed.example', paths: ['/**'] }],
      deny: [{ host: 'allowed.example', paths: ['/api/admin/**'] }],
    })
    expect(decideEgress(p, { url: `https://allowed.example${path}` })).toMatchObject({
      code: 'EGRESS_DENIED',
    })
  })

  it('lets a deny rule for GET deny HEAD too (frameworks run the GET handler)', () => {
    const p = profile({
      allow: [{ host: 'a.example' }],
      deny: [{ host: 'a.example', methods: ['GET'], paths: ['/admin/**'] }],
    })
    expect(decideEgress(p, { url: 'https://a.example/admin/x', method: 'HEAD' })).toMatchObject({
      code: 'EGRESS_DENIED',
    })
    expect(decideEgress(p, { url: 'https://a.example/public', method: 'HEAD' })).toMatchObject({
      effect: 'allow',
    })
  })

  it.each([
    ['IPv4-compatible', '[::10.0.0.5]'],
    ['NAT64', '[64:ff9b::a00:5]'],
    ['SIIT', '[::ffff:0:a00:5]'],
    ['6to4', '[2002:a00:5::1]'],
  ])('applies an IPv4 deny rule to the %s spelling of the address', (_what, host) => {
    const p = profile({ allow: [{ host: '*' }], deny: [{ host: '10.0.0.5' }], allowPrivateAddresses: true })
    expect(decideEgress(p, { url: `https://${host}/` })).toMatchObject({ code: 'EGRESS_DENIED' })
    const viaName = decideEgress(p, { url: 'https://internal.example/' })
    if (viaName.effect !== 'allow') throw new Error('fixture')
    expect(decideAddress(p, viaName.request, host.slice(1, -1))).toMatchObject({ code: 'EGRESS_DENIED' })
  })

  it.each([
    ['a double-encoded slash', '/api/x%252f..%252fadmin'],
    ['double-encoded dot segments', '/api/x/%252e%252e/admin/users'],
    ['a double-encoded backslash', '/api/x%255cadmin'],
  ])('refuses %s (servers that decode twice read it differently)', (_what, path) => {
    expect(decide(`https://allowed.example${path}`)).toMatchObject({ code: 'PATH_AMBIGUOUS' })
  })

  it('applies a deny rule naming an address to a hostname that resolves to it', () => {
    const p = profile({
      allow: [{ host: '*' }],
      deny: [{ host: '8.8.8.8' }, { host: '[2001:4860:4860::8888]' }],
    })
    const checked = decideEgress(p, { url: 'https://dns.google/' })
    if (checked.effect !== 'allow') throw new Error('fixture')
    expect(decideAddress(p, checked.request, '8.8.8.8')).toMatchObject({
      code: 'EGRESS_DENIED',
      rule: 'profiles/p#/network/deny/0',
    })
    expect(decideAddress(p, checked.request, '::ffff:8.8.8.8')).toMatchObject({ code: 'EGRESS_DENIED' })
    expect(decideAddress(p, checked.request, '2001:4860:4860::8888')).toMatchObject({
      rule: 'profiles/p#/network/deny/1',
    })
    expect(decideAddress(p, checked.request, '8.8.4.4')).toMatchObject({ effect: 'allow' })
  })

  it('denies everything when the profile allows no egress', () => {
    expect(decideEgress(profile(undefined), { url: 'https://example.com/' })).toMatchObject({
      effect: 'deny',
      code: 'HOST_NOT_ALLOWED',
    })
  })
})

describe('decideAddress: what DNS answered', () => {
  const allowed = decide('https://allowed.example/api/x')
  if (allowed.effect !== 'allow') throw new Error('fixture')

  it.each([
    ['loopback', '127.0.0.1'],
    ['RFC 1918', '192.168.1.10'],
    ['CGNAT', '100.64.0.1'],
    ['cloud metadata', '169.254.169.254'],
    ['IPv6 loopback', '::1'],
    ['IPv4-mapped loopback', '::ffff:127.0.0.1'],
    ['unique local', 'fd12::1'],
  ])('refuses a name that resolves to %s (DNS rebinding)', (_what, address) => {
    expect(decideAddress(web, allowed.request, address)).toMatchObject({
      effect: 'deny',
      code: 'PRIVATE_ADDRESS',
    })
  })

  it('accepts a public address, and refuses what is not an address', () => {
    expect(decideAddress(web, allowed.request, '93.184.215.14')).toMatchObject({ effect: 'allow' })
    expect(decideAddress(web, allowed.request, 'example.com')).toMatchObject({ code: 'INVALID_ADDRESS' })
  })

  it('accepts private addresses when the profile allows them', () => {
    const open = profile({ allow: [{ host: 'intranet.example' }], allowPrivateAddresses: true })
    const decision = decideEgress(open, { url: 'https://intranet.example/' })
    if (decision.effect !== 'allow') throw new Error('fixture')
    expect(decideAddress(open, decision.request, '10.0.0.5')).toMatchObject({ effect: 'allow' })
  })
})

describe('unspecified addresses are never a destination', () => {
  // Linux connects a socket aimed at 0.0.0.0 or :: to the local host: a deny rule naming 127.0.0.1
  // must not be sidestepped by them, and no profile setting may allow them.
  const open = profile({
    allow: [
      { host: '*', schemes: ['https', 'http'] },
      { host: '0.0.0.0', schemes: ['http'] },
    ],
    deny: [{ host: '127.0.0.1' }, { host: '[::1]' }],
    allowPrivateAddresses: true,
  })

  it.each([
    'http://0.0.0.0/',
    'http://0/',
    'http://0.1.2.3/',
    'http://[::]/',
    'http://[::ffff:0:0]/',
    'http://[::ffff:0.0.0.0]/',
  ])('refuses %s even with private addresses allowed and a rule naming 0.0.0.0', (url) => {
    expect(decideEgress(open, { url })).toMatchObject({ effect: 'deny', code: 'PRIVATE_ADDRESS' })
  })

  it.each(['0.0.0.0', '0.0.0.1', '::', '::ffff:0.0.0.0'])('refuses the DNS answer %s', (answer) => {
    const checked = decideEgress(open, { url: 'http://zero.example/' })
    if (checked.effect !== 'allow') throw new Error('expected an allowed request')
    expect(decideAddress(open, checked.request, answer)).toMatchObject({
      effect: 'deny',
      code: 'PRIVATE_ADDRESS',
      rule: 'profiles/p#/network',
    })
  })
})

describe('decideTunnel: CONNECT carries any method and path, so it may widen nothing', () => {
  const ALL = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']
  const tunnels = profile({
    allow: [
      { host: 'open.example', methods: ALL },
      { host: 'narrow.example', methods: ['GET'] },
      { host: 'paths.example', methods: ALL, paths: ['/api/**'] },
      { host: 'denied.example', methods: ALL },
      { host: '10.9.8.7', methods: ALL, ports: [8443] },
      { host: 'internal.example', methods: ALL },
    ],
    deny: [{ host: 'denied.example', methods: ['DELETE'], paths: ['/admin/**'] }],
  })
  const tunnel = (host: string, port = 443) => decideTunnel(tunnels, { host, port })

  it('allows a host whose rule takes every method and path on that port', () => {
    expect(tunnel('OPEN.example.')).toMatchObject({
      effect: 'allow',
      request: { host: 'open.example', port: 443, tunnel: true, address: null },
    })
  })

  it('refuses a rule that narrows methods or paths, naming the narrowing', () => {
    expect(tunnel('narrow.example')).toMatchObject({
      effect: 'deny',
      code: 'TUNNEL_NOT_ALLOWED',
      rule: expect.stringContaining('/network/allow/1/methods'),
    })
    expect(tunnel('paths.example')).toMatchObject({
      code: 'TUNNEL_NOT_ALLOWED',
      rule: expect.stringContaining('/paths'),
    })
  })

  it('refuses a host any deny rule names, whatever methods and paths the deny rule lists', () => {
    expect(tunnel('denied.example')).toMatchObject({ effect: 'deny', code: 'EGRESS_DENIED' })
  })

  it('refuses other ports, unknown hosts, malformed targets and the unspecified address', () => {
    expect(tunnel('open.example', 22)).toMatchObject({ code: 'PORT_NOT_ALLOWED' })
    expect(tunnel('elsewhere.example')).toMatchObject({ code: 'HOST_NOT_ALLOWED' })
    expect(tunnel('open.example/x')).toMatchObject({ code: 'INVALID_HOST' })
    expect(tunnel('user@open.example')).toMatchObject({ code: 'INVALID_HOST' })
    expect(tunnel('open.example', 70_000)).toMatchObject({ code: 'INVALID_HOST' })
    expect(tunnel('0.0.0.0')).toMatchObject({ code: 'PRIVATE_ADDRESS' })
  })

  it('allows a private literal only where the rule names it; a resolved address is checked as always', () => {
    expect(tunnel('10.9.8.7', 8443)).toMatchObject({ effect: 'allow', request: { address: '10.9.8.7' } })
    const checked = tunnel('internal.example')
    if (checked.effect !== 'allow') throw new Error('expected allow')
    expect(decideAddress(tunnels, checked.request, '192.168.1.5')).toMatchObject({ code: 'PRIVATE_ADDRESS' })
    expect(decideAddress(tunnels, checked.request, '93.184.216.34')).toMatchObject({ effect: 'allow' })
  })
})
