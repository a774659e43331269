import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ATTEMPT,
  deployEgressAgent,
  echo,
  type RecordingServer,
  refusal,
  ScriptedResolver,
  startRecordingServer,
  testTLS,
} from './helpers/egress.ts'
import { type Body, startTestServer, type TestServer } from './helpers/server.ts'

// The guest contract of the bindings, the same on every JavaScript engine: one suite, run on QuickJS
// and on V8 isolates, against one real server (the bridge's host side is shared; the glue is not).

const ENGINES = ['quickjs', 'isolate'] as const
const VALUE = `sk-${randomBytes(12).toString('hex')}`
const limits = { cpuMs: 2000, wallMs: 10_000, memoryMb: 32, outputBytes: 262_144, bindingCalls: 60 }

let service: TestServer
let api: RecordingServer

beforeAll(async () => {
  api = await startRecordingServer({ tls: true, handler: echo })
  service = await startTestServer({
    egress: { resolver: new ScriptedResolver().set('api.test', ['127.0.0.1']), ca: [testTLS().ca] },
    envSecrets: { default: { TOKEN: VALUE } },
  })
  const put = async (path: string, body: unknown) => {
    const response = await service.request('PUT', path, { body })
    expect(response.status, JSON.stringify(response.body)).toBe(200)
  }
  for (const engine of ENGINES) {
    await deployEgressAgent(
      service,
      `web-${engine}`,
      {
        allow: [{ host: 'api.test', ports: [api.port], methods: ['GET', 'POST'] }],
        allowPrivateAddresses: true,
      },
      { engines: [engine], secrets: { TOKEN: { from: 'env:TOKEN', hosts: ['api.test'] } } },
    )
    await put(`/v1/profiles/store-${engine}`, {
      engines: [engine],
      languages: ['javascript'],
      limits,
      kv: { access: 'read-write', quotaBytes: 8192, deny: ['private/**'] },
      filesystem: { access: 'read-write', quotaBytes: 8192 },
      tools: ['double'],
    })
    await put(`/v1/agents/store-${engine}`, {
      sandbox: `store-${engine}`,
      tools: [
        {
          name: 'double',
          description: 'doubles n',
          language: 'javascript',
          input: { type: 'object', properties: { n: { type: 'number' } }, required: ['n'] },
          code: 'export default ({ n }) => n * 2',
        },
      ],
    })
  }
})
afterAll(async () => {
  await service?.close()
  await api?.close()
})

/** Runs guest code as `agent` and answers its result; the execution itself must end ok. */
async function run(agent: string, code: string, input: unknown = null): Promise<Body> {
  const { status, body } = await service.execute(code, { input }, agent)
  expect(status).toBe(200)
  expect(body.status, JSON.stringify(body.error)).toBe('ok')
  return body.result
}

const CATCH = `const attempt = async (fn) => { try { return await fn() } catch (e) { return { name: e.name, code: e.code, reason: e.reason ?? null, rule: e.rule ?? null } } }\n`

describe.each(ENGINES)('bindings on the %s engine', (engine) => {
  const store = `store-${engine}`
  const web = `web-${engine}`

  it('kv: set, get, list and delete round-trip JSON values', async () => {
    const result = await run(
      store,
      `await kv.set('a/1', { n: 1, s: 'é' })
await kv.set('a/2', [true, null])
const listed = await kv.list('a/')
const got = await kv.get('a/1')
const deleted = await kv.delete('a/2')
export default [got, listed, deleted, await kv.get('a/2')]`,
    )
    expect(result[0]).toEqual({ n: 1, s: 'é' })
    expect(JSON.stringify(result[1])).toContain('a/2')
    expect(result.slice(2)).toEqual([true, null])
  })

  it('kv: a denied key fails with the policy reason and rule, as a CordonError', async () => {
    const result = await run(store, `${CATCH}export default await attempt(() => kv.set('private/x', 1))`)
    expect(result).toMatchObject({ name: 'CordonError', code: 'KV_DENIED' })
    expect(result.rule).toMatch(/^profiles\/store-/)
  })

  it('fs: text and bytes written, read back, listed, stat-ed and removed', async () => {
    const result = await run(
      store,
      `await fs.writeFile('/workspace/t.txt', 'hello ✓')
await fs.writeFile('/workspace/b.bin', new Uint8Array([0, 1, 254, 255]))
const text = await fs.readFile('/workspace/t.txt')
const bytes = await fs.readFile('/workspace/b.bin', null)
const names = await fs.readdir('/workspace')
const size = (await fs.stat('/workspace/b.bin')).size
await fs.rm('/workspace/t.txt')
export default [text, Array.from(bytes), names.map((e) => e.name ?? e).sort(), size, (await fs.readdir('/workspace')).length]`,
    )
    expect(result).toEqual(['hello ✓', [0, 1, 254, 255], ['b.bin', 't.txt'], 4, 1])
  })

  it('tools: a declared tool answers through the bridge, input validated', async () => {
    const result = await run(
      store,
      `${CATCH}export default [await tools.double({ n: 21 }), await attempt(() => tools.double({ n: 'x' }))]`,
    )
    expect(result[0]).toBe(42)
    expect(result[1]).toMatchObject({ name: 'CordonError' })
  })

  it('fetch: a secret placeholder becomes the value on the wire only; bodies read as text, JSON and bytes', async () => {
    const url = `https://api.test:${api.port}/echo`
    const result = await run(
      web,
      `const r = await fetch(input.url, { method: 'POST', headers: { authorization: 'Bearer ' + secrets.TOKEN }, body: 'ping' })
const echoed = await r.json()
const copy = await fetch(input.url, { method: 'POST', body: new Uint8Array([104, 105]) })
const bytes = new Uint8Array(await copy.arrayBuffer())
export default [r.status, secrets.TOKEN, echoed.headers.authorization, echoed.body, bytes[0], await (await fetch(input.url)).text()]`,
      { url },
    )
    expect(result[0]).toBe(200)
    expect(result[1]).toMatch(/^cdn-secret-TOKEN-[0-9a-f]{32}$/)
    // The server got the value; what it echoed reaches the guest redacted.
    expect(api.seen.at(-3)?.headers.authorization).toBe(`Bearer ${VALUE}`)
    expect(result[2]).toBe('Bearer [REDACTED:TOKEN]')
    expect(result.slice(3, 5)).toEqual(['ping', '{'.charCodeAt(0)])
    expect(JSON.parse(result[5])).toMatchObject({ method: 'GET' })
    expect(JSON.stringify(result)).not.toContain(VALUE)
  })

  it('fetch: the metadata address is refused before any connection', async () => {
    const result = await run(
      web,
      `${ATTEMPT}\nexport default await attempt('https://169.254.169.254/latest/meta-data/')`,
    )
    expect(refusal(result)).toEqual(['EGRESS_DENIED', expect.any(String)])
  })

  it('calls past the profile limit fail with BINDING_LIMIT; the run goes on', async () => {
    const result = await run(
      store,
      `${CATCH}const codes = []
for (let i = 0; i < ${limits.bindingCalls + 2}; i++) { const r = await attempt(() => kv.get('k')); if (r && r.code) codes.push(r.code) }
export default codes`,
    )
    expect(result).toEqual(['BINDING_LIMIT', 'BINDING_LIMIT'])
  })

  it('more than 32 calls in flight: the extra ones fail with BINDING_BUSY, the rest answer', async () => {
    const result = await run(
      store,
      `${CATCH}const all = await Promise.all(Array.from({ length: 40 }, () => attempt(() => kv.get('k'))))
export default all.map((r) => (r && r.code) || 'ok')`,
    )
    expect(result.filter((r: string) => r === 'BINDING_BUSY')).toHaveLength(8)
    expect(result.filter((r: string) => r === 'ok')).toHaveLength(32)
  })

  it('replies that arrive while the guest keeps the engine busy are delivered after, in order', async () => {
    const result = await run(
      store,
      `await kv.set('busy', 7)
const pending = Array.from({ length: 10 }, (_, i) => kv.get('busy').then((v) => v + i))
const until = Date.now() + 50
while (Date.now() < until) {}
export default await Promise.all(pending)`,
    )
    expect(result).toEqual([7, 8, 9, 10, 11, 12, 13, 14, 15, 16])
  })
})
