import { readFileSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { fileURLToPath } from 'node:url'
import { brotliCompressSync, deflateSync, gzipSync, constants as zlib } from 'node:zlib'
import { blockedRange, parseIP } from '@cordon/policy'
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  ATTEMPT,
  auditOf,
  deployEgressAgent,
  echo,
  guestFetch,
  type Handler,
  type RecordingServer,
  refusal,
  ScriptedResolver,
  startRecordingServer,
  startServerPair,
} from './helpers/egress.ts'
import { startTestServer, type TestServer } from './helpers/server.ts'

/** This service's egress limits: small, so that each one is reached quickly. */
const LIMITS = {
  maxRequestBytes: 16 * 1024,
  maxResponseBytes: 64 * 1024,
  headersTimeoutMs: 1000,
  totalTimeoutMs: 3000,
  maxRedirects: 4,
}
const INFLATED = 16 * 1024 * 1024
const BOMBS = {
  gzip: gzipSync(Buffer.alloc(INFLATED)),
  deflate: deflateSync(Buffer.alloc(INFLATED)),
  br: brotliCompressSync(Buffer.alloc(INFLATED), { params: { [zlib.BROTLI_PARAM_QUALITY]: 5 } }),
}

const resolver = new ScriptedResolver()
let service: TestServer
/** 127.0.0.1:P, the allowed server: echo, redirects, bombs, slow and endless answers. */
let upstream: RecordingServer
/** 127.0.0.2:P, the same port on another loopback address: must never be reached. */
let shadow: RecordingServer
/** 127.0.0.1:Q, another port on the allowed address: must never be reached. */
let other: RecordingServer
let P = 0
let Q = 0

/** `/r/<status>?to=<url>` answers that redirect; `/loop/a` and `/loop/b` redirect to each other. */
const routes: Handler = (seen, res) => {
  const url = new URL(seen.url, 'http://upstream')
  const redirect = /^\/r\/(\d{3})$/.exec(url.pathname)
  if (redirect !== null) {
    res.writeHead(Number(redirect[1]), { location: url.searchParams.get('to') ?? '/' })
    res.end()
    return
  }
  if (url.pathname === '/loop/a' || url.pathname === '/loop/b') {
    res.writeHead(302, { location: url.pathname === '/loop/a' ? '/loop/b' : '/loop/a' })
    res.end()
    return
  }
  const bomb = /^\/bomb\/(gzip|deflate|br)$/.exec(url.pathname)?.[1] as keyof typeof BOMBS | undefined
  if (bomb !== undefined) {
    res.writeHead(200, { 'content-encoding': bomb, 'content-type': 'text/plain' })
    res.end(BOMBS[bomb])
    return
  }
  if (url.pathname === '/endless') return endless(res)
  if (url.pathname === '/trickle') return trickle(res)
  if (url.pathname === '/silent') return // never answers
  echo(seen, res)
}

/** Writes as fast as the client reads, until the connection closes. */
function endless(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream' })
  const chunk = Buffer.alloc(16 * 1024, 0x61)
  const pump = () => {
    while (!res.destroyed && res.write(chunk)) {}
  }
  res.on('drain', pump)
  pump()
}

/** Sends the head at once, then one byte every 100 ms, forever (never reaching a size limit). */
function trickle(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/plain' })
  const timer = setInterval(() => res.write('x'), 100)
  res.on('close', () => clearInterval(timer))
}

beforeAll(async () => {
  ;[upstream, shadow] = await startServerPair({ first: routes })
  other = await startRecordingServer()
  P = upstream.port
  Q = other.port
  resolver
    .set('api.test', ['127.0.0.1'])
    .set('meta.test', ['169.254.169.254'])
    .set('loop.test', ['127.0.0.1'])
  service = await startTestServer({ egress: { resolver, limits: LIMITS } })
  const http = ['http' as const]
  const methods = ['GET', 'POST']
  // Any host, on the test port and 80, but never a private address.
  await deployEgressAgent(service, 'anyhost', {
    allow: [{ host: '*', schemes: http, ports: [P, 80], methods }],
  })
  // One named host, which resolves to loopback (so private addresses are allowed).
  await deployEgressAgent(service, 'named', {
    allow: [{ host: 'api.test', schemes: http, ports: [P], methods }],
    allowPrivateAddresses: true,
  })
  await deployEgressAgent(
    service,
    'short',
    { allow: [{ host: 'api.test', schemes: http, ports: [P], methods }], allowPrivateAddresses: true },
    { limits: { wallMs: 1500 } },
  )
  // The upstream by its address (a rule naming a loopback address allows that address only), a
  // GET-only rule for the shadow, and names that resolve to blocked addresses.
  await deployEgressAgent(service, 'redirects', {
    allow: [
      { host: '127.0.0.1', schemes: http, ports: [P], methods },
      { host: '127.0.0.2', schemes: http, ports: [P], methods: ['GET'] },
      { host: 'meta.test', schemes: http, ports: [Q], methods },
      { host: 'loop.test', schemes: http, ports: [Q], methods },
    ],
  })
  // Private addresses allowed, loopback denied by name: the unspecified addresses must not reach it.
  await deployEgressAgent(service, 'noloop', {
    allow: [{ host: '*', schemes: http, ports: [P], methods }],
    deny: [{ host: '127.0.0.1' }, { host: '[::1]' }, { host: 'localhost' }],
    allowPrivateAddresses: true,
  })
  await deployEgressAgent(service, 'rebind', {
    allow: [{ host: '*.rebind.test', schemes: http, ports: [P], methods }],
    deny: [{ host: '127.0.0.2' }],
    allowPrivateAddresses: true,
  })
})

afterAll(async () => {
  await service?.close()
  await Promise.all([upstream?.close(), shadow?.close(), other?.close()])
})

beforeEach(() => {
  for (const server of [upstream, shadow, other]) server.seen.length = 0
  resolver.calls.length = 0
})

describe('baseline', () => {
  it('an allowed fetch reaches its server with path and query, and kv works alongside', async () => {
    const { record } = await guestFetch(service, 'named', `http://api.test:${P}/`)
    expect(record.status).toBe('ok')
    const { body } = await service.execute(
      `const r = await fetch('http://api.test:${P}/hello?x=1')
       await kv.set('a', { n: 1 })
       export default [r.status, r.ok, r.url, (await r.json()).url, await kv.get('a')]`,
      {},
      'named',
    )
    expect(body.status, JSON.stringify(body)).toBe('ok')
    expect(body.result).toEqual([200, true, `http://api.test:${P}/hello?x=1`, '/hello?x=1', { n: 1 }])
    expect(upstream.seen.map((seen) => `${seen.method} ${seen.url}`)).toEqual(['GET /', 'GET /hello?x=1'])
    expect(resolver.calls).toEqual(['api.test', 'api.test'])
  })
})

/** Spellings of loopback and "this host" a URL parser accepts, each to be judged as the address it is. */
const LOOPBACK_SPELLINGS = [
  ['decimal integer', () => `http://2130706433:${P}/`],
  ['hex and short form', () => `http://0x7f.1:${P}/`],
  ['octal first octet', () => `http://0177.0.0.1:${P}/`],
  ['two-part short form', () => `http://127.1:${P}/`],
  ['octal integer', () => `http://017700000001:${P}/`],
  ['hex integer', () => `http://0x7f000001:${P}/`],
  ['trailing dot', () => `http://127.0.0.1.:${P}/`],
  ['IPv4-mapped IPv6, dotted', () => `http://[::ffff:127.0.0.1]:${P}/`],
  ['IPv4-mapped IPv6, full hex', () => `http://[0:0:0:0:0:ffff:7f00:1]:${P}/`],
  ['IPv4-compatible IPv6', () => `http://[::127.0.0.1]:${P}/`],
  ['NAT64 IPv6', () => `http://[64:ff9b::127.0.0.1]:${P}/`],
  ['IPv6 loopback', () => `http://[::1]:${P}/`],
  ['IPv6 unspecified', () => `http://[::]:${P}/`],
  ['"0" on the default port', () => 'http://0/'],
  ['"0" on the test port', () => `http://0:${P}/`],
] as const

describe('IP encodings of loopback, with any host allowed but no private address', () => {
  it('has spellings to try', () => {
    expect(LOOPBACK_SPELLINGS.length).toBeGreaterThanOrEqual(15)
  })

  it.each(LOOPBACK_SPELLINGS)('%s is refused as a private address, before any connection', async (_, url) => {
    const { outcome } = await guestFetch(service, 'anyhost', url())
    expect(refusal(outcome)).toEqual(['EGRESS_DENIED', 'PRIVATE_ADDRESS'])
    // The unspecified addresses are refused by the network section itself: no setting allows them.
    const unspecified = /\[::\]|\/\/0[:/]/.test(url())
    expect('error' in outcome && outcome.error.rule).toBe(
      unspecified ? 'profiles/anyhost#/network' : 'profiles/anyhost#/network/allowPrivateAddresses',
    )
    expect(upstream.seen).toEqual([])
    expect(resolver.calls).toEqual([])
  })
})

describe('userinfo and Unicode host tricks', () => {
  it.each([
    ['an allowed name as userinfo before another host', () => `http://allowed.test@evil.test:${P}/`],
    ['credentials for the allowed host', () => `http://user:pass@api.test:${P}/`],
    ['an empty password', () => `http://api.test:@api.test:${P}/`],
  ])('%s is refused (USERINFO_REFUSED), before any lookup', async (_, url) => {
    const { outcome } = await guestFetch(service, 'named', url())
    expect(refusal(outcome)).toEqual(['EGRESS_DENIED', 'USERINFO_REFUSED'])
    expect(upstream.seen).toEqual([])
    expect(resolver.calls).toEqual([])
  })

  it.each([
    ['fullwidth dots (api．test)', () => `http://api\uff0etest:${P}/`],
    ['upper case and a trailing dot (API.TEST.)', () => `http://API.TEST.:${P}/`],
  ])('%s folds to the allowed host itself, and only it is asked for and reached', async (_, url) => {
    const { outcome } = await guestFetch(service, 'named', url())
    expect(refusal(outcome)).toMatch(/"status":200/)
    expect(resolver.calls).toEqual(['api.test'])
    expect(upstream.seen.map((seen) => seen.headers.host)).toEqual([`api.test:${P}`])
  })

  it('an IDN homograph (Cyrillic а in аpi.test) is another host: refused, never looked up', async () => {
    const { outcome } = await guestFetch(service, 'named', `http://\u0430pi.test:${P}/`)
    expect(refusal(outcome)).toEqual(['EGRESS_DENIED', 'HOST_NOT_ALLOWED'])
    expect(upstream.seen).toEqual([])
    expect(resolver.calls).toEqual([])
  })
})

describe('the host is decided before DNS', () => {
  it('a host outside the allow list is refused without a lookup (and an allowed one is looked up)', async () => {
    const denied = await guestFetch(service, 'named', `http://evil.test:${P}/`)
    expect(refusal(denied.outcome)).toEqual(['EGRESS_DENIED', 'HOST_NOT_ALLOWED'])
    expect(resolver.calls).toEqual([])
    const allowed = await guestFetch(service, 'named', `http://api.test:${P}/`)
    expect(refusal(allowed.outcome)).toMatch(/"status":200/)
    expect(resolver.calls).toEqual(['api.test'])
  })
})

const REDIRECT_STATUSES = [301, 302, 303, 307, 308] as const
/** Where a redirect from the allowed upstream tries to go, and the policy's reason to refuse. */
const REDIRECT_TARGETS = [
  ['another port of the allowed address', () => `http://127.0.0.1:${Q}/`, 'PORT_NOT_ALLOWED'],
  ['a host not in the allow list', () => `http://evil.test:${Q}/`, 'HOST_NOT_ALLOWED'],
  ['an allowed name that resolves to 169.254.169.254', () => `http://meta.test:${Q}/`, 'PRIVATE_ADDRESS'],
  ['an allowed name that resolves to loopback', () => `http://loop.test:${Q}/`, 'PRIVATE_ADDRESS'],
] as const
const REDIRECT_CASES = REDIRECT_STATUSES.flatMap((status) =>
  REDIRECT_TARGETS.map(([what, target, reason]) => [status, what, target, reason] as const),
)

describe('redirects are decided hop by hop', () => {
  it('has redirect cases to try', () => {
    expect(REDIRECT_CASES.length).toBe(20)
  })

  it.each(REDIRECT_CASES)(
    'a %i to %s is refused, and the target sees nothing',
    async (status, _, target, reason) => {
      const to = target()
      const { outcome } = await guestFetch(
        service,
        'redirects',
        `http://127.0.0.1:${P}/r/${status}?to=${encodeURIComponent(to)}`,
      )
      expect(refusal(outcome)).toEqual(['EGRESS_DENIED', reason])
      expect(upstream.seen.length).toBe(1)
      expect(other.seen).toEqual([])
      expect(resolver.calls).toEqual(reason === 'PRIVATE_ADDRESS' ? [new URL(to).hostname] : [])
    },
  )

  it('a redirect loop ends with TOO_MANY_REDIRECTS after the hop limit', async () => {
    const { outcome } = await guestFetch(service, 'redirects', `http://127.0.0.1:${P}/loop/a`)
    expect(refusal(outcome)).toEqual(['TOO_MANY_REDIRECTS', null])
    expect(upstream.seen.length).toBe(LIMITS.maxRedirects + 1)
  })

  it.each([301, 302, 303])('a %i turns a POST into a GET without body', async (status) => {
    const { outcome } = await guestFetch(service, 'redirects', `http://127.0.0.1:${P}/r/${status}?to=/echo`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', 'content-language': 'en' },
      body: 'payload',
    })
    expect(refusal(outcome)).toMatch(/"status":200/)
    expect('url' in outcome && [outcome.url, outcome.redirected]).toEqual([
      `http://127.0.0.1:${P}/echo`,
      true,
    ])
    const [first, second] = upstream.seen
    expect([first?.method, first?.body]).toEqual(['POST', 'payload'])
    expect([second?.method, second?.url, second?.body]).toEqual(['GET', '/echo', ''])
    expect(second?.headers['content-type']).toBeUndefined()
    expect(second?.headers['content-length']).toBeUndefined()
    expect(second?.headers['content-language']).toBeUndefined()
  })

  it.each([307, 308])('a %i keeps the method and the body', async (status) => {
    const { outcome } = await guestFetch(service, 'redirects', `http://127.0.0.1:${P}/r/${status}?to=/echo`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'payload',
    })
    expect(refusal(outcome)).toMatch(/"status":200/)
    expect(
      upstream.seen.map((seen) => [seen.method, seen.url, seen.body, seen.headers['content-type']]),
    ).toEqual([
      ['POST', `/r/${status}?to=/echo`, 'payload', 'text/plain'],
      ['POST', '/echo', 'payload', 'text/plain'],
    ])
  })

  it.each([307, 308])('a %i POST to a target whose rule allows only GET is refused', async (status) => {
    const to = encodeURIComponent(`http://127.0.0.2:${P}/`)
    const { outcome } = await guestFetch(service, 'redirects', `http://127.0.0.1:${P}/r/${status}?to=${to}`, {
      method: 'POST',
      body: 'payload',
    })
    expect(refusal(outcome)).toEqual(['EGRESS_DENIED', 'METHOD_NOT_ALLOWED'])
    expect('error' in outcome && outcome.error.rule).toBe('profiles/redirects#/network/allow/1/methods')
    expect(shadow.seen).toEqual([])
  })

  it('redirect: "manual" returns the 3xx itself and does not follow it', async () => {
    const { outcome } = await guestFetch(service, 'redirects', `http://127.0.0.1:${P}/r/302?to=/echo`, {
      redirect: 'manual',
    })
    expect('status' in outcome && [outcome.status, outcome.redirected]).toEqual([302, false])
    expect('headers' in outcome && outcome.headers).toContainEqual(['location', '/echo'])
    expect(upstream.seen.map((seen) => seen.url)).toEqual(['/r/302?to=/echo'])
  })

  it('redirect: "error" fails on a redirect and does not follow it', async () => {
    const { outcome } = await guestFetch(service, 'redirects', `http://127.0.0.1:${P}/r/302?to=/echo`, {
      redirect: 'error',
    })
    expect(refusal(outcome)).toEqual(['FETCH_FAILED', null])
    expect(upstream.seen.map((seen) => seen.url)).toEqual(['/r/302?to=/echo'])
  })
})

describe('DNS rebinding', () => {
  /** First lookup of each name: 127.0.0.1 (allowed); every later one: 127.0.0.2 (denied by a rule). */
  const rebinding = (name: string) =>
    resolver.set(name, (call) => (call === 1 ? ['127.0.0.1'] : ['127.0.0.2']))

  it('connects to the address that was checked, with one lookup per request', async () => {
    rebinding('a.rebind.test')
    const first = await guestFetch(service, 'rebind', `http://a.rebind.test:${P}/first`)
    expect(refusal(first.outcome)).toMatch(/"status":200/)
    expect(upstream.seen.map((seen) => seen.url)).toEqual(['/first'])
    expect(resolver.count('a.rebind.test')).toBe(1)
    // The next request's lookup answers the denied address, and is refused.
    const second = await guestFetch(service, 'rebind', `http://a.rebind.test:${P}/second`)
    expect(refusal(second.outcome)).toEqual(['EGRESS_DENIED', 'EGRESS_DENIED'])
    expect('error' in second.outcome && second.outcome.error.rule).toBe('profiles/rebind#/network/deny/0')
    expect(resolver.count('a.rebind.test')).toBe(2)
    expect(upstream.seen.length).toBe(1)
    expect(shadow.seen).toEqual([])
  })

  it('a redirect to the same name is looked up afresh, and the rebound answer is refused', async () => {
    rebinding('b.rebind.test')
    const { outcome } = await guestFetch(service, 'rebind', `http://b.rebind.test:${P}/r/302?to=/echo`)
    expect(refusal(outcome)).toEqual(['EGRESS_DENIED', 'EGRESS_DENIED'])
    expect(upstream.seen.map((seen) => seen.url)).toEqual(['/r/302?to=/echo'])
    expect(shadow.seen).toEqual([])
    expect(resolver.count('b.rebind.test')).toBe(2)
  })

  it.each([
    ['a public answer first', ['93.184.215.14', '169.254.169.254']],
    ['the metadata answer first', ['169.254.169.254', '93.184.215.14']],
    [
      'loopback among public answers',
      ['93.184.215.14', '2606:2800:21f:cb07:6820:80da:af6b:8b2c', '127.0.0.1'],
    ],
  ])('a name with one blocked answer among others is refused (%s)', async (_, answers) => {
    resolver.set('mixed.test', answers)
    const { outcome } = await guestFetch(service, 'anyhost', `http://mixed.test:${P}/`)
    expect(refusal(outcome)).toEqual(['EGRESS_DENIED', 'PRIVATE_ADDRESS'])
    expect(resolver.calls).toEqual(['mixed.test'])
    expect(upstream.seen).toEqual([])
  })
})

describe('attack: the unspecified address around a loopback deny rule', () => {
  it.each([
    ['0.0.0.0 as a literal', () => `http://0.0.0.0:${P}/`, null],
    ['"0" as a literal', () => `http://0:${P}/`, null],
    ['[::] as a literal', () => `http://[::]:${P}/`, null],
    ['[::ffff:0:0] as a literal', () => `http://[::ffff:0:0]:${P}/`, null],
    ['a name resolving to 0.0.0.0', () => `http://zero4.test:${P}/`, '0.0.0.0'],
    ['a name resolving to ::', () => `http://zero6.test:${P}/`, '::'],
  ])('%s is refused though private addresses are allowed', async (_, url, answer) => {
    if (answer !== null) resolver.set(answer.includes(':') ? 'zero6.test' : 'zero4.test', [answer])
    const { outcome } = await guestFetch(service, 'noloop', url())
    expect(refusal(outcome)).toEqual(['EGRESS_DENIED', 'PRIVATE_ADDRESS'])
    expect(upstream.seen).toEqual([])
  })
})

describe('attack: resolver answers that are not plain IP addresses', () => {
  it.each([['127.1'], [' 127.0.0.1'], ['0x7f000001'], ['fe80::1%eth0'], ['localhost'], ['93.184.215.14 ']])(
    'an answer %j is refused, never handed to the socket to resolve again',
    async (answer) => {
      resolver.set('odd.test', [answer])
      const { outcome } = await guestFetch(service, 'anyhost', `http://odd.test:${P}/`)
      expect(refusal(outcome)).toEqual(['EGRESS_DENIED', 'INVALID_ADDRESS'])
      expect(upstream.seen).toEqual([])
    },
  )
})

/** One address in each blocked range of the policy (services/policy/src/ip-address.ts). */
const BLOCKED_SAMPLES: readonly (readonly [cidr: string, address: string])[] = [
  ['0.0.0.0/8', '0.1.2.3'],
  ['10.0.0.0/8', '10.1.2.3'],
  ['100.64.0.0/10', '100.100.100.200'],
  ['127.0.0.0/8', '127.0.0.1'],
  ['169.254.169.254/32', '169.254.169.254'],
  ['169.254.170.2/32', '169.254.170.2'],
  ['169.254.0.0/16', '169.254.1.1'],
  ['172.16.0.0/12', '172.20.0.1'],
  ['192.0.0.0/24', '192.0.0.170'],
  ['192.0.2.0/24', '192.0.2.1'],
  ['192.88.99.0/24', '192.88.99.1'],
  ['192.168.0.0/16', '192.168.1.1'],
  ['198.18.0.0/15', '198.19.0.1'],
  ['198.51.100.0/24', '198.51.100.7'],
  ['203.0.113.0/24', '203.0.113.9'],
  ['224.0.0.0/4', '239.255.255.250'],
  ['255.255.255.255/32', '255.255.255.255'],
  ['240.0.0.0/4', '240.0.0.1'],
  ['::/128', '::'],
  ['::1/128', '::1'],
  ['::ffff:0:0/96', '::ffff:10.0.0.1'],
  ['::ffff:0:0:0/96', '::ffff:0:8.8.8.8'],
  ['::/96', '::8.8.8.8'],
  ['64:ff9b::/96', '64:ff9b::8.8.8.8'],
  ['64:ff9b:1::/48', '64:ff9b:1::1'],
  ['100::/64', '100::1'],
  ['2001::/32', '2001:0:4136:e378:8000:63bf:3fff:fdd2'],
  ['2001::/23', '2001:100::1'],
  ['2001:db8::/32', '2001:db8::1'],
  ['3fff::/20', '3fff::1'],
  ['2002::/16', '2002:808:808::1'],
  ['fd00:ec2::254/128', 'fd00:ec2::254'],
  ['fc00::/7', 'fd12:3456::1'],
  ['fe80::/10', 'fe80::1'],
  ['fec0::/10', 'fec0::1'],
  ['ff00::/8', 'ff02::1'],
]
const BLOCKED_CASES = BLOCKED_SAMPLES.flatMap(
  ([cidr, address], i) =>
    [
      [
        'an IP literal',
        cidr,
        address,
        () => `http://${address.includes(':') ? `[${address}]` : address}:${P}/`,
        null,
      ],
      ['a DNS answer', cidr, address, () => `http://r${i}.test:${P}/`, `r${i}.test`],
    ] as const,
)

describe('every blocked range, as a literal and as a DNS answer', () => {
  it('samples every range the policy blocks, each inside the range it names', () => {
    expect(BLOCKED_SAMPLES.length).toBeGreaterThanOrEqual(30)
    const source = readFileSync(
      fileURLToPath(new URL('../services/policy/src/ip-address.ts', import.meta.url)),
      'utf8',
    )
    const policyRanges = [...source.matchAll(/^\s*\['([0-9a-f.:]+\/\d+)', '/gm)].map((match) => match[1])
    expect(policyRanges.length).toBeGreaterThanOrEqual(30)
    expect(BLOCKED_SAMPLES.map(([cidr]) => cidr).sort()).toEqual([...policyRanges].sort())
    for (const [cidr, address] of BLOCKED_SAMPLES) {
      const ip = parseIP(address)
      expect([address, ip === null ? null : blockedRange(ip)?.cidr]).toEqual([address, cidr])
    }
  })

  it.each(BLOCKED_CASES)(
    '%s in %s (%s) is refused before any connection',
    async (_, _cidr, address, url, name) => {
      if (name !== null) resolver.set(name, [address])
      const { outcome } = await guestFetch(service, 'anyhost', url())
      expect(refusal(outcome)).toEqual(['EGRESS_DENIED', 'PRIVATE_ADDRESS'])
      expect(resolver.calls).toEqual(name === null ? [] : [name])
      expect(upstream.seen).toEqual([])
    },
  )
})

describe('sizes and time', () => {
  it.each(['gzip', 'deflate', 'br'])(
    'a %s bomb stops at maxResponseBytes, and the service stays responsive',
    async (encoding) => {
      expect(BOMBS[encoding as keyof typeof BOMBS].length).toBeLessThan(LIMITS.maxResponseBytes)
      const { outcome } = await guestFetch(service, 'named', `http://api.test:${P}/bomb/${encoding}`)
      expect(refusal(outcome)).toEqual(['RESPONSE_TOO_LARGE', null])
      await vi.waitFor(() => expect(upstream.seen[0]?.closed).toBe(true))
      expect((await service.request('GET', '/healthz')).status).toBe(200)
      const after = await guestFetch(service, 'named', `http://api.test:${P}/after`)
      expect(refusal(after.outcome)).toMatch(/"status":200/)
    },
  )

  it('an endless body is cut at maxResponseBytes, and its connection closed', async () => {
    const started = performance.now()
    const { outcome } = await guestFetch(service, 'named', `http://api.test:${P}/endless`)
    expect(refusal(outcome)).toEqual(['RESPONSE_TOO_LARGE', null])
    expect(performance.now() - started).toBeLessThan(LIMITS.totalTimeoutMs)
    await vi.waitFor(() => expect(upstream.seen[0]?.closed).toBe(true))
  })

  it('a body that trickles forever ends at totalTimeoutMs (FETCH_TIMEOUT, TOTAL)', async () => {
    const started = performance.now()
    const { outcome } = await guestFetch(service, 'named', `http://api.test:${P}/trickle`)
    const elapsed = performance.now() - started
    expect(refusal(outcome)).toEqual(['FETCH_TIMEOUT', 'TOTAL'])
    expect(elapsed).toBeGreaterThanOrEqual(LIMITS.totalTimeoutMs - 100)
    expect(elapsed).toBeLessThan(LIMITS.totalTimeoutMs + 2000)
    await vi.waitFor(() => expect(upstream.seen[0]?.closed).toBe(true))
  })

  it('a fetch still running at the wall time ends with the execution, and its connection is closed', async () => {
    const started = performance.now()
    const { status, body } = await service.execute(
      `const r = await fetch('http://api.test:${P}/trickle'); export default await r.text()`,
      {},
      'short',
    )
    expect([status, body.status]).toEqual([200, 'timeout'])
    expect(performance.now() - started).toBeLessThan(1500 + 2500)
    await vi.waitFor(() => expect(upstream.seen[0]?.closed).toBe(true))
  })

  it('a server that never answers ends at headersTimeoutMs (FETCH_TIMEOUT, HEADERS)', async () => {
    const started = performance.now()
    const { outcome } = await guestFetch(service, 'named', `http://api.test:${P}/silent`)
    const elapsed = performance.now() - started
    expect(refusal(outcome)).toEqual(['FETCH_TIMEOUT', 'HEADERS'])
    expect(elapsed).toBeGreaterThanOrEqual(LIMITS.headersTimeoutMs - 100)
    expect(elapsed).toBeLessThan(LIMITS.totalTimeoutMs)
    await vi.waitFor(() => expect(upstream.seen[0]?.closed).toBe(true))
  })

  it('a DNS lookup that never answers ends at totalTimeoutMs (FETCH_TIMEOUT, TOTAL)', async () => {
    resolver.set('slow.test', 'hang')
    const started = performance.now()
    const { status, body } = await service.execute(
      `${ATTEMPT}\nexport default await attempt('http://slow.test:${P}/')`,
      {},
      'anyhost',
    )
    expect([status, body.status, body.result]).toEqual([
      200,
      'ok',
      { error: expect.objectContaining({ code: 'FETCH_TIMEOUT', reason: 'TOTAL' }) },
    ])
    expect(performance.now() - started).toBeLessThan(LIMITS.totalTimeoutMs + 2000)
  })

  it('a request body over maxRequestBytes is refused and never sent', async () => {
    const { outcome } = await guestFetch(service, 'named', `http://api.test:${P}/upload`, {
      method: 'POST',
      body: 'x'.repeat(LIMITS.maxRequestBytes + 1),
    })
    expect(refusal(outcome)).toEqual(['REQUEST_TOO_LARGE', null])
    expect(upstream.seen).toEqual([])
    expect(resolver.calls).toEqual([])
  })
})

describe('header injection', () => {
  it.each([
    ['CR LF and a second Host header', { x: 'a\r\nHost: evil.test' }],
    ['a lone LF starting a header', { x: 'a\nX-Injected: 1' }],
    ['a lone CR', { x: 'a\rb' }],
    ['a NUL', { x: 'a\u0000b' }],
    ['CR LF in the name', { 'x\r\nHost': 'evil.test' }],
    ['a request smuggled after CR LF CR LF', { x: 'a\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: api.test' }],
    ['more than 100 headers', Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`x-${i}`, 'v']))],
    ['more than 64 KiB of headers', { a: 'x'.repeat(40_000), b: 'y'.repeat(30_000) }],
  ])('%s is refused (INVALID_HEADER) and nothing is sent', async (_, headers) => {
    const { outcome } = await guestFetch(service, 'named', `http://api.test:${P}/`, { headers })
    expect(refusal(outcome)).toEqual(['INVALID_HEADER', null])
    expect(upstream.seen).toEqual([])
  })

  it('Host, forwarding, proxy and hop-by-hop headers of the guest are dropped', async () => {
    const { outcome } = await guestFetch(service, 'named', `http://api.test:${P}/headers`, {
      method: 'POST',
      headers: {
        Host: 'evil.test',
        'X-Forwarded-For': '1.2.3.4',
        'X-Forwarded-Host': 'evil.test',
        Forwarded: 'for=1.2.3.4;host=evil.test',
        'Proxy-Authorization': 'Basic Zm9vOmJhcg==',
        Connection: 'close, X-Secret',
        'X-Secret': 'hop-by-hop by Connection',
        'Transfer-Encoding': 'chunked',
        Via: '1.1 evil',
        'X-Kept': 'yes',
      },
      body: 'payload',
    })
    expect(refusal(outcome)).toMatch(/"status":200/)
    const [seen] = upstream.seen
    expect(seen?.headers.host).toBe(`api.test:${P}`)
    expect(seen?.headers['x-kept']).toBe('yes')
    expect(seen?.body).toBe('payload')
    expect(seen?.headers['content-length']).toBe('7')
    for (const name of [
      'x-forwarded-for',
      'x-forwarded-host',
      'forwarded',
      'proxy-authorization',
      'x-secret',
      'transfer-encoding',
      'via',
    ]) {
      expect([name, seen?.headers[name]]).toEqual([name, undefined])
    }
    expect(seen?.headers.connection ?? '').not.toMatch(/x-secret/i)
  })
})

describe('the audit log', () => {
  it('records each fetch with its decision, code and rule', async () => {
    const { body } = await service.execute(
      `${ATTEMPT}
       export default [await attempt('http://api.test:${P}/audited'), await attempt('http://evil.test:${P}/')]`,
      {},
      'named',
    )
    expect(body.status).toBe('ok')
    const rows = (await auditOf(service, body.id)).filter((row) => row.kind.startsWith('binding.fetch'))
    expect(rows.map(({ kind, decision, code, rule }) => [kind, decision, code, rule])).toEqual([
      ['binding.fetch.request', 'allow', 'ALLOWED', 'profiles/named#/network/allow/0'],
      ['binding.fetch.request', 'deny', 'HOST_NOT_ALLOWED', 'profiles/named#/network/allow'],
    ])
    expect(rows[0]?.detail).toMatchObject({ method: 'GET', url: `http://api.test:${P}/audited`, status: 200 })
  })
})
