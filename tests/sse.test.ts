import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RecordingServer, startRecordingServer, testTLS } from './helpers/egress.ts'
import { type Body, startTestServer, TEST_TOKEN, type TestServer } from './helpers/server.ts'

// Executions as server-sent events, read by a real HTTP client (fetch, the body read as it arrives):
// output as it is written, the final record, a client that goes away and comes back.

const VALUE = `sk-live-${randomBytes(12).toString('hex')}`

let t: TestServer
let upstream: RecordingServer
/** Echoes the x-api-key header reversed (secrets go over https only). */
let echoServer: RecordingServer
/** Requests to /hold/* wait here until the test lets them go. */
const holds = new Map<string, () => void>()

beforeAll(async () => {
  upstream = await startRecordingServer({
    handler: (request, res) => {
      if (request.url.startsWith('/hold/')) {
        // Released once; a response its client already closed (a cancelled run) is left alone.
        holds.set(request.url, () => {
          if (!res.writableEnded && !res.destroyed) res.end('released')
        })
        return
      }
      res.end('ok')
    },
  })
  // Echoes the key reversed: no encoding the broker knows, so only the output redaction can catch it.
  echoServer = await startRecordingServer({
    tls: true,
    handler: (request, res) => res.end([...String(request.headers['x-api-key'] ?? '')].reverse().join('')),
  })
  t = await startTestServer({ envSecrets: { default: { TOKEN: VALUE } }, egress: { ca: [testTLS().ca] } })
  const rule = {
    host: '127.0.0.1',
    schemes: ['http', 'https'],
    ports: [upstream.port, echoServer.port],
    methods: ['GET'],
  }
  const profile = await t.request('PUT', '/v1/profiles/streamy', {
    body: {
      engines: ['quickjs'],
      languages: ['javascript'],
      limits: { cpuMs: 2000, wallMs: 30_000, memoryMb: 32, outputBytes: 65_536, bindingCalls: 50 },
      network: { allow: [rule], allowPrivateAddresses: true },
      kv: { access: 'read-write', quotaBytes: 4096 },
      secrets: { TOKEN: { from: 'env:TOKEN', hosts: ['127.0.0.1'] } },
      tools: ['shout'],
    },
  })
  expect(profile.status).toBe(200)
  const agent = await t.request('PUT', '/v1/agents/streamy', {
    body: {
      sandbox: 'streamy',
      tools: [
        {
          name: 'shout',
          description: 'prints its word',
          input: { type: 'object', properties: { word: { type: 'string' } }, required: ['word'] },
          language: 'javascript',
          code: `export default ({ word }) => { console.log(word.toUpperCase()); return word.length }`,
        },
      ],
    },
  })
  expect(agent.status).toBe(200)
})

afterAll(async () => {
  for (const release of holds.values()) release()
  await t?.close()
  await upstream?.close()
  await echoServer?.close()
})

interface SSEvent {
  id: string
  event: string
  data: Body
}

/** An event stream read as it arrives: `next()` answers the next event (null once it has ended). */
async function openStream(
  path: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
) {
  const controller = new AbortController()
  const response = await fetch(`${t.server.url}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      authorization: `Bearer ${TEST_TOKEN}`,
      accept: 'text/event-stream',
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...init.headers,
    },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    signal: controller.signal,
  })
  let reader: ReadableStreamDefaultReader<string> | undefined
  let buffered = ''
  const events: SSEvent[] = []
  const next = async (): Promise<SSEvent | null> => {
    for (;;) {
      const boundary = buffered.indexOf('\n\n')
      if (boundary >= 0) {
        const block = buffered.slice(0, boundary)
        buffered = buffered.slice(boundary + 2)
        if (block.startsWith(':')) continue
        const field = (name: string) =>
          block
            .split('\n')
            .filter((line) => line.startsWith(`${name}: `))
            .map((line) => line.slice(name.length + 2))
            .join('\n')
        const event = { id: field('id'), event: field('event'), data: JSON.parse(field('data')) }
        events.push(event)
        return event
      }
      reader ??= response.body?.pipeThrough(new TextDecoderStream()).getReader()
      const chunk = await reader?.read()
      if (chunk === undefined || chunk.done) return null
      buffered += chunk.value
    }
  }
  const rest = async () => {
    const all: SSEvent[] = []
    for (let event = await next(); event !== null; event = await next()) all.push(event)
    return all
  }
  return { response, next, rest, events, close: () => controller.abort() }
}

const output = (events: SSEvent[], stream: 'stdout' | 'stderr') =>
  events
    .filter((event) => event.event === stream)
    .map((event) => event.data.text)
    .join('')

const base = () => `http://127.0.0.1:${upstream.port}`

async function until(condition: () => boolean): Promise<void> {
  await expect.poll(condition, { timeout: 10_000 }).toBe(true)
}

describe('executions as server-sent events', () => {
  it('streams output while the guest runs, then the final record; the chunks add up to its output', async () => {
    const stream = await openStream('/v1/agents/streamy/executions', {
      method: 'POST',
      body: {
        language: 'javascript',
        code: `export default async ({ base }) => {
          console.log('before')
          console.error('warned')
          await fetch(base + '/hold/live')
          console.log('after')
          return 42
        }`,
        input: { base: base() },
      },
    })
    expect(stream.response.status).toBe(200)
    expect(stream.response.headers.get('content-type')).toContain('text/event-stream')
    const started = await stream.next()
    expect(started).toMatchObject({
      id: '1',
      event: 'started',
      data: { agent: 'streamy', engine: 'quickjs' },
    })
    // The first output arrives while the guest still waits on the held request.
    const first = await stream.next()
    expect(first?.event).toMatch(/^std(out|err)$/)
    await until(() => holds.has('/hold/live'))
    expect(stream.events.some((event) => event.event === 'end')).toBe(false)
    holds.get('/hold/live')?.()
    const rest = await stream.rest()
    const end = rest.at(-1)
    expect(end).toMatchObject({ event: 'end', data: { status: 'ok', result: 42 } })
    expect(output(stream.events, 'stdout')).toBe(end?.data.stdout)
    expect(output(stream.events, 'stderr')).toBe(end?.data.stderr)
    expect(end?.data.stdout).toBe('before\nafter\n')
    // Ids count up from 1 with no gap.
    expect(stream.events.map((event) => Number(event.id))).toEqual(stream.events.map((_, i) => i + 1))
    expect((await t.request('GET', `/v1/executions/${started?.data.id}`)).body).toEqual(end?.data)
  })

  it('a client that goes away does not stop the execution; it reattaches with Last-Event-ID and misses nothing', async () => {
    const stream = await openStream('/v1/agents/streamy/executions', {
      method: 'POST',
      body: {
        language: 'javascript',
        code: `export default async ({ base }) => {
          console.log('one')
          await fetch(base + '/hold/away')
          console.log('two')
          await kv.set('finished', true)
          return 'done'
        }`,
        input: { base: base() },
      },
    })
    const started = await stream.next()
    const id = started?.data.id as string
    const one = await stream.next()
    expect(one).toMatchObject({ event: 'stdout', data: { text: 'one\n' } })
    stream.close()
    await until(() => holds.has('/hold/away'))
    holds.get('/hold/away')?.()
    const back = await openStream(`/v1/executions/${id}/events`, {
      headers: { 'last-event-id': one?.id ?? '' },
    })
    const rest = await back.rest()
    expect(rest[0]?.id).toBe(String(Number(one?.id) + 1))
    expect(rest.at(-1)).toMatchObject({ event: 'end', data: { id, status: 'ok', result: 'done' } })
    expect(`one\n${output(rest, 'stdout')}`).toBe('one\ntwo\n')
    // It ran to its end: its last write is there.
    const check = await t.execute(`export default await kv.get('finished')`, {}, 'streamy')
    expect(check.body.result).toBe(true)
    // From the start, the whole stream again.
    const again = await openStream(`/v1/executions/${id}/events`)
    expect((await again.rest()).map((event) => event.event)).toEqual(['started', 'stdout', 'stdout', 'end'])
  })

  it('answers an ended execution whose stream is gone from its record', async () => {
    const plain = await t.execute(`console.log('kept'); export default 1`, {}, 'streamy')
    const stream = await openStream(`/v1/executions/${plain.body.id}/events`)
    const events = await stream.rest()
    expect(events.map((event) => event.event)).toEqual(['started', 'stdout', 'end'])
    expect(events.at(-1)?.data).toEqual(plain.body)
    const late = await openStream(`/v1/executions/${plain.body.id}/events`, {
      headers: { 'last-event-id': '7' },
    })
    expect(await late.rest()).toEqual([{ id: '8', event: 'end', data: plain.body }])
  })

  it('streams a tool call the same way', async () => {
    const stream = await openStream('/v1/agents/streamy/tools/shout', {
      method: 'POST',
      body: { input: { word: 'hey' } },
    })
    const events = await stream.rest()
    expect(events.map((event) => event.event)).toEqual(['started', 'stdout', 'end'])
    expect(events.at(-1)?.data).toMatchObject({ status: 'ok', result: 3, stdout: 'HEY\n' })
  })

  it('refuses before it runs with an ordinary JSON error, and checks what a reattaching client sends', async () => {
    const missing = await openStream('/v1/agents/nobody/executions', {
      method: 'POST',
      body: { language: 'javascript', code: '1' },
    })
    expect(missing.response.status).toBe(404)
    expect(await missing.response.json()).toMatchObject({ error: { code: 'AGENT_NOT_FOUND' } })
    const invalid = await openStream('/v1/agents/streamy/tools/shout', {
      method: 'POST',
      body: { input: {} },
    })
    expect(invalid.response.status).toBe(422)
    const unknown = await t.request('GET', '/v1/executions/ex_nope/events')
    expect(unknown.status).toBe(404)
    const plain = await t.execute('export default 1', {}, 'streamy')
    const bad = await t.request('GET', `/v1/executions/${plain.body.id}/events`, {
      headers: { 'last-event-id': 'x; DROP' },
    })
    expect(bad.status).toBe(400)
    expect(bad.body.error.code).toBe('BAD_REQUEST')
  })

  // Whatever the cut, the redaction holds across pieces: see the stream redactor's own tests.
  it('attack: a secret value written in two halves appears in no chunk and not in the whole stream', async () => {
    const stream = await openStream('/v1/agents/streamy/executions', {
      method: 'POST',
      body: {
        language: 'javascript',
        code: `export default async ({ echo }) => {
          console.log('whole=' + (await (await fetch(echo, { headers: { 'X-Api-Key': secrets.TOKEN } })).text()).split('').reverse().join(''))
          // The echo gives the value back reversed: the guest rebuilds it and writes it in two halves,
          // with a binding call between them so that each half leaves the worker on its own.
          const echoed = await (await fetch(echo, { headers: { 'X-Api-Key': secrets.TOKEN } })).text()
          const value = echoed.split('').reverse().join('')
          const half = Math.floor(value.length / 2)
          console.log('key=' + value.slice(0, half))
          await kv.get('nothing')
          console.log(value.slice(half) + ' end')
          return 'written'
        }`,
        input: { echo: `${echoServer.origin()}/echo` },
      },
    })
    const events = await stream.rest()
    for (const event of events) expect(JSON.stringify(event)).not.toContain(VALUE)
    expect(events.at(-1)).toMatchObject({ event: 'end', data: { status: 'ok', result: 'written' } })
    const end = events.at(-1)?.data
    expect(output(events, 'stdout')).toBe(end.stdout)
    expect(end.stdout).toMatch(/^whole=\[REDACTED:TOKEN\]\nkey=.+\n.+ end\n$/)
  })

  it(`refuses a seventeenth stream attached to one execution (TOO_MANY_STREAMS)`, async () => {
    const first = await openStream('/v1/agents/streamy/executions', {
      method: 'POST',
      body: {
        language: 'javascript',
        code: `export default async ({ base }) => (await fetch(base + '/hold/many')).text()`,
        input: { base: base() },
      },
    })
    const id = (await first.next())?.data.id as string
    const others = await Promise.all(
      Array.from({ length: 15 }, () => openStream(`/v1/executions/${id}/events`)),
    )
    for (const other of others) expect(other.response.status).toBe(200)
    await Promise.all(others.map((other) => other.next()))
    const refused = await t.request('GET', `/v1/executions/${id}/events`)
    expect(refused.status).toBe(429)
    expect(refused.body.error.code).toBe('TOO_MANY_STREAMS')
    await until(() => holds.has('/hold/many'))
    holds.get('/hold/many')?.()
    for (const stream of [first, ...others]) {
      expect((await stream.rest()).at(-1)).toMatchObject({ event: 'end', data: { result: 'released' } })
    }
  })

  it('tells a client that has the whole of an ended stream to stop reconnecting (204)', async () => {
    const stream = await openStream('/v1/agents/streamy/executions', {
      method: 'POST',
      body: { language: 'javascript', code: `console.log('x'); export default 1` },
    })
    const events = await stream.rest()
    const end = events.at(-1) as SSEvent
    expect(end.event).toBe('end')
    const again = await fetch(`${t.server.url}/v1/executions/${end.data.id}/events`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}`, 'last-event-id': end.id },
    })
    expect(again.status).toBe(204)
    const ahead = await t.request('GET', `/v1/executions/${end.data.id}/events`, {
      headers: { 'last-event-id': String(Number(end.id) + 5) },
    })
    expect(ahead.status).toBe(204)
  })

  it('attack: a guest switching between stdout and stderr on every write cannot flood the stream with events', async () => {
    const stream = await openStream('/v1/agents/streamy/executions', {
      method: 'POST',
      body: {
        language: 'javascript',
        code: `for (let i = 0; i < 5000; i++) { console.log('o' + i); console.error('e' + i) } export default 'flooded'`,
      },
    })
    const events = await stream.rest()
    const end = events.at(-1) as SSEvent
    expect(end.data).toMatchObject({ status: 'ok', result: 'flooded' })
    // Batches of 20 ms, each stream's part in one event: far fewer events than the 10 000 writes.
    expect(events.length).toBeLessThan(500)
    expect(output(events, 'stdout')).toBe(end.data.stdout)
    expect(output(events, 'stderr')).toBe(end.data.stderr)
    expect(end.data.stdout.split('\n')).toHaveLength(5001)
  })

  it('a cancelled execution keeps in its record what it wrote before, as its stream showed it', async () => {
    const stream = await openStream('/v1/agents/streamy/executions', {
      method: 'POST',
      body: {
        language: 'javascript',
        code: `export default async ({ base }) => {
          console.log('printed before')
          await fetch(base + '/hold/cancelled')
          console.log('never')
        }`,
        input: { base: base() },
      },
    })
    const id = (await stream.next())?.data.id as string
    expect(await stream.next()).toMatchObject({ event: 'stdout', data: { text: 'printed before\n' } })
    await until(() => holds.has('/hold/cancelled'))
    expect((await t.request('POST', `/v1/executions/${id}/cancel`)).status).toBe(200)
    const end = (await stream.rest()).at(-1)
    expect(end).toMatchObject({ event: 'end', data: { status: 'killed', stdout: 'printed before\n' } })
    holds.get('/hold/cancelled')?.()
  })
})
