import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  auditOf,
  type RecordingServer,
  ScriptedResolver,
  startRecordingServer,
  testTLS,
} from './helpers/egress.ts'
import { type Body, startTestServer, type TestServer } from './helpers/server.ts'

// The container engine's egress: the sandbox has no network but its own loopback, where a forwarder
// passes connections to the host's proxy, which sends plain-http requests through the `fetch`
// binding (policy, DNS and address checks, secrets, audit) and opens CONNECT tunnels only where the
// policy allows a tunnel. Ordinary clients (curl, python urllib) find it through HTTP(S)_PROXY.

const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']
const SECRET_VALUE = 'sk-live-container-7c1e'

let t: TestServer
let plain: RecordingServer
let tls: RecordingServer
/** An https server on port 443 (of 127.0.0.3, which no other test uses), for TLS origination. */
let tls443: RecordingServer
const resolver = new ScriptedResolver()

async function deploy(name: string, network: unknown, extra: Record<string, unknown> = {}): Promise<void> {
  const profile = await t.request('PUT', `/v1/profiles/${name}`, {
    body: {
      engines: ['container'],
      languages: ['python', 'bash'],
      limits: {
        cpuMs: 5000,
        wallMs: 15_000,
        memoryMb: 128,
        outputBytes: 262_144,
        bindingCalls: 20,
        processes: 16,
        openFiles: 1024,
      },
      filesystem: { access: 'read-write', quotaBytes: 1_048_576 },
      ...(network === null ? {} : { network }),
      ...extra,
    },
  })
  expect(profile.status, JSON.stringify(profile.body)).toBe(200)
  expect((await t.request('PUT', `/v1/agents/${name}`, { body: { sandbox: name } })).status).toBe(200)
}

const run = async (
  agent: string,
  code: string,
  files?: { path: string; content: string }[],
): Promise<Body> => {
  const { status, body } = await t.request('POST', `/v1/agents/${agent}/executions`, {
    body: { language: 'bash', code, ...(files === undefined ? {} : { files }) },
  })
  expect(status, JSON.stringify(body)).toBe(200)
  return body
}

beforeAll(async () => {
  plain = await startRecordingServer()
  tls = await startRecordingServer({ tls: true })
  tls443 = await startRecordingServer({ tls: true, host: '127.0.0.3', port: 443 })
  // evil.test is only a name the TLS fixture covers: here it is the secret's own host.
  resolver.set('api.test', ['127.0.0.1']).set('narrow.test', ['127.0.0.1']).set('evil.test', ['127.0.0.3'])
  t = await startTestServer({
    egress: { resolver, ca: [testTLS().ca] },
    envSecrets: { default: { API_TOKEN: SECRET_VALUE } },
  })
  await deploy(
    'net',
    {
      allow: [
        { host: 'api.test', schemes: ['http', 'https'], ports: [plain.port, tls.port], methods: ALL_METHODS },
        { host: 'narrow.test', schemes: ['http', 'https'], ports: [plain.port, tls.port], methods: ['GET'] },
        { host: 'evil.test', methods: ALL_METHODS },
      ],
      allowPrivateAddresses: true,
    },
    { secrets: { API_TOKEN: { from: 'env:API_TOKEN', hosts: ['api.test', 'evil.test'] } } },
  )
  await deploy('offline', null)
  await deploy(
    'few',
    {
      allow: [{ host: 'api.test', schemes: ['http'], ports: [plain.port], methods: ALL_METHODS }],
      allowPrivateAddresses: true,
    },
    {
      limits: {
        cpuMs: 5000,
        wallMs: 15_000,
        memoryMb: 128,
        outputBytes: 65_536,
        bindingCalls: 2,
        processes: 16,
        openFiles: 64,
      },
    },
  )
})

afterAll(async () => {
  await t.close()
  await plain.close()
  await tls.close()
  await tls443.close()
})

describe('container egress through the policy proxy', () => {
  it('curl reaches an allowed http host through HTTP_PROXY; the request is audited', async () => {
    const before = plain.seen.length
    const record = await run('net', `curl -sS -X POST -d hello http://api.test:${plain.port}/items?x=1`)
    expect(record.status, record.stderr).toBe('ok')
    expect(JSON.parse(record.stdout)).toMatchObject({ method: 'POST', url: '/items?x=1', body: 'hello' })
    expect(plain.seen.length).toBe(before + 1)
    const audit = await auditOf(t, record.id)
    expect(audit).toContainEqual(
      expect.objectContaining({ kind: 'binding.fetch.request', decision: 'allow', code: 'ALLOWED' }),
    )
  })

  it('python urllib works through the same proxy variables', async () => {
    const { body } = await t.request('POST', '/v1/agents/net/executions', {
      body: {
        language: 'python',
        code: `import json, urllib.request\nprint(json.load(urllib.request.urlopen("http://api.test:${plain.port}/py"))["url"])`,
      },
    })
    expect(body).toMatchObject({ status: 'ok', stdout: '/py\n' })
  })

  it('a request the policy refuses is a 403 naming the reason; nothing reaches the server', async () => {
    const before = plain.seen.length
    const record = await run(
      'net',
      `curl -sS -i -X DELETE http://narrow.test:${plain.port}/x | tr -d '\\r'; curl -sS -o /dev/null -w '%{http_code}\\n' http://elsewhere.test:${plain.port}/`,
    )
    expect(record.stdout).toMatch(/^HTTP\/1\.1 403 EGRESS_DENIED\nx-cordon-error: EGRESS_DENIED/)
    expect(record.stdout).toContain('(METHOD_NOT_ALLOWED)')
    expect(record.stdout).toMatch(/\n403\n$/)
    expect(plain.seen.length).toBe(before)
    const audit = await auditOf(t, record.id)
    expect(audit.filter((row) => row.decision === 'deny')).toHaveLength(2)
  })

  it('https goes through a CONNECT tunnel to the address the harness checked', async () => {
    const before = tls.seen.length
    const record = await run('net', `curl -sS --cacert ca.pem https://api.test:${tls.port}/secure`, [
      { path: 'ca.pem', content: testTLS().ca },
    ])
    expect(record.status, record.stderr).toBe('ok')
    expect(JSON.parse(record.stdout)).toMatchObject({ method: 'GET', url: '/secure' })
    expect(tls.seen.length).toBe(before + 1)
    const audit = await auditOf(t, record.id)
    expect(audit).toContainEqual(
      expect.objectContaining({ kind: 'binding.fetch.connect', decision: 'allow', code: 'ALLOWED' }),
    )
  })

  it('refuses a tunnel where the rule narrows methods: inside it any method could travel', async () => {
    const before = tls.seen.length
    const record = await run(
      'net',
      `curl -sS --cacert ca.pem https://narrow.test:${tls.port}/ 2>&1; echo "exit $?"`,
      [{ path: 'ca.pem', content: testTLS().ca }],
    )
    expect(record.stdout).toMatch(/403[\s\S]*exit 56/)
    expect(tls.seen.length).toBe(before)
    const audit = await auditOf(t, record.id)
    expect(audit).toContainEqual(
      expect.objectContaining({
        kind: 'binding.fetch.connect',
        decision: 'deny',
        code: 'TUNNEL_NOT_ALLOWED',
      }),
    )
  })

  it('a secret is an opaque placeholder in the environment; the proxy puts the value in, over TLS it originates', async () => {
    const before = tls443.seen.length
    // Plain http to port 443: the proxy sees the request, puts the value in, and sends it as https.
    const record = await run(
      'net',
      `case "$API_TOKEN" in *${SECRET_VALUE}*) echo LEAKED;; esac; curl -sS -H "Authorization: Bearer $API_TOKEN" http://evil.test:443/auth`,
    )
    expect(record.status, JSON.stringify(record)).toBe('ok')
    expect(tls443.seen[before]?.headers.authorization, JSON.stringify(record)).toBe(`Bearer ${SECRET_VALUE}`)
    // The echo of the header comes back redacted; the value never enters the sandbox.
    expect(record.stdout).not.toContain(SECRET_VALUE)
    expect(record.stdout).not.toContain('LEAKED')
    expect(JSON.parse(record.stdout).headers.authorization).toBe('Bearer [REDACTED:API_TOKEN]')
  })

  it('a secret never travels in clear text: plain http to another port is refused', async () => {
    const before = plain.seen.length
    const record = await run(
      'net',
      `curl -sS -H "Authorization: Bearer $API_TOKEN" http://api.test:${plain.port}/auth`,
    )
    expect(record.stdout).toMatch(/^cordon: SECRET_DENIED \(SECRET_PLAINTEXT\)/)
    expect(plain.seen.length).toBe(before)
  })

  it('a secret sent to a host it is not granted for is refused', async () => {
    const before = plain.seen.length
    const record = await run(
      'net',
      `curl -sS -o /dev/null -w '%{http_code}\\n' -H "Authorization: Bearer $API_TOKEN" http://narrow.test:${plain.port}/`,
    )
    expect(record.stdout).toBe('403\n')
    expect(plain.seen.length).toBe(before)
  })

  it('ignoring the proxy reaches nothing: not the server, not its address', async () => {
    const before = plain.seen.length
    const record = await run(
      'net',
      `curl --noproxy '*' -sS -m 3 http://127.0.0.1:${plain.port}/ 2>&1; echo "exit $?"; env -u http_proxy -u HTTP_PROXY curl -sS -m 3 http://api.test:${plain.port}/ 2>&1; echo "exit $?"`,
    )
    expect(record.stdout).not.toMatch(/exit 0/)
    expect(plain.seen.length).toBe(before)
  })

  it('a profile without network gets no proxy variables, no forwarder, and a proxy that refuses', async () => {
    const record = await run(
      'offline',
      [
        'env | grep -ci proxy',
        'curl -sS -m 3 -x http://127.0.0.1:3128 http://api.test/ 2>&1 | head -c 200; echo " exit $?"',
        `curl -sS --unix-socket /.cordon/proxy.sock http://api.test:${plain.port}/ | head -c 200; echo`,
      ].join('\n'),
    )
    expect(record.stdout).toMatch(/^0\n/)
    expect(record.stdout).toMatch(/Failed to connect|Couldn't connect|Connection refused/)
    expect(record.stdout).toMatch(/cordon: (NOT_GRANTED|BAD_REQUEST)/)
  })

  it('a flood of connections to the proxy: at most 64 stay open, and the service carries on', async () => {
    const { body } = await t.request('POST', '/v1/agents/net/executions', {
      body: {
        language: 'python',
        code: [
          'import socket, time',
          'held = []',
          'for _ in range(300):',
          '    try:',
          '        s = socket.socket(socket.AF_UNIX); held.append(s); s.connect("/.cordon/proxy.sock")',
          '    except OSError:',
          '        pass',
          'time.sleep(0.3)',
          'alive = 0',
          'for s in held:',
          '    s.setblocking(False)',
          '    try:',
          '        alive += 1 if s.recv(1) != b"" else 0',
          '    except BlockingIOError:',
          '        alive += 1',
          '    except OSError:',
          '        pass',
          'print(alive <= 64, alive > 0)',
        ].join('\n'),
      },
    })
    expect(body.stdout).toBe('True True\n')
    expect(
      (await run('net', `curl -sS -o /dev/null -w '%{http_code}\\n' http://api.test:${plain.port}/after`))
        .stdout,
    ).toBe('200\n')
  })

  it('each proxied request is a binding call: past bindingCalls it is refused (429)', async () => {
    const record = await run(
      'few',
      `for i in 1 2 3; do curl -sS -o /dev/null -w '%{http_code}\\n' http://api.test:${plain.port}/$i; done`,
    )
    expect(record.stdout).toBe('200\n200\n429\n')
  })
})
