import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gzipSync } from 'node:zlib'
import type { CheckedEgress } from '@cordon/policy'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fetchTransport } from './fetch-transport.ts'
import type { Hop, HopResponse } from './transport.ts'

// The Worker's transport (the runtime's fetch), run here on Node's fetch against a local server: the
// behaviour the fetch binding relies on (redirects handed back, bodies capped and timed) is the same.

let server: Server
let origin: string
/** Bytes the trickling route managed to write before the client went away. */
let written = 0

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname === '/redirect') {
      res.writeHead(302, { location: 'https://elsewhere.example/' }).end()
    } else if (url.pathname === '/gzip') {
      res.writeHead(200, { 'content-encoding': 'gzip' }).end(gzipSync('z'.repeat(1000)))
    } else if (url.pathname === '/bomb') {
      // 64 MiB of zeros in a few hundred KiB: decompressing it all would be the attack.
      res.writeHead(200, { 'content-encoding': 'gzip' }).end(gzipSync(Buffer.alloc(64 * 1024 * 1024)))
    } else if (url.pathname === '/slow-body') {
      res.writeHead(200).flushHeaders()
      setTimeout(() => res.end('late but whole'), 300)
    } else if (url.pathname === '/silent') {
      // Never answers.
    } else if (url.pathname === '/trickle') {
      res.writeHead(200)
      const timer = setInterval(() => {
        written += res.write('.') ? 1 : 0
      }, 20)
      res.on('close', () => clearInterval(timer))
    } else {
      res
        .writeHead(200, { 'x-seen-auth': req.headers.authorization ?? '' })
        .end(`${req.method} ${url.pathname}${url.search}`)
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise((resolve) => server.close(resolve))
})

function hop(path: string, extra: Partial<Hop> = {}): Hop {
  const url = new URL(path, origin)
  const target = {
    url: url.href,
    scheme: 'http',
    host: url.hostname,
    port: Number(url.port),
    method: 'GET',
    path: url.pathname,
    address: null,
    privateAllowed: true,
    rule: 'test',
  } as unknown as CheckedEgress
  return {
    target,
    address: null,
    method: 'GET',
    headers: [],
    body: null,
    search: url.search,
    ca: null,
    headersTimeoutMs: 2000,
    signal: new AbortController().signal,
    ...extra,
  }
}

async function send(h: Hop): Promise<HopResponse> {
  const response = await fetchTransport.send(h)
  if ('failed' in response) throw new Error(`failed: ${response.message}`)
  return response
}

const never = new AbortController().signal

describe('the fetch transport', () => {
  it('sends the decided request, headers and query as given, and reads the answer', async () => {
    const response = await send(hop('/echo?page=2', { headers: [['authorization', 'Bearer t']] }))
    expect(response.status).toBe(200)
    expect(response.headers).toContainEqual(['x-seen-auth', 'Bearer t'])
    const body = await response.read(1024, performance.now() + 2000, never)
    expect('body' in body && body.body.toString()).toBe('GET /echo?page=2')
  })

  it('hands a redirect back to the binding instead of following it', async () => {
    const response = await send(hop('/redirect'))
    expect(response.status).toBe(302)
    expect(response.headers).toContainEqual(['location', 'https://elsewhere.example/'])
    response.discard()
  })

  it('decompresses a body and counts the cap on what it decompressed', async () => {
    const response = await send(hop('/gzip'))
    const body = await response.read(1000, performance.now() + 2000, never)
    expect('body' in body && body.body.length).toBe(1000)
    expect(await (await send(hop('/gzip'))).read(999, performance.now() + 2000, never)).toEqual({
      tooLarge: true,
    })
  })

  it('attack: a compression bomb stops at the cap', async () => {
    const response = await send(hop('/bomb'))
    expect(await response.read(2 * 1024 * 1024, performance.now() + 5000, never)).toEqual({ tooLarge: true })
  })

  it('attack: a server that never answers ends at the headers timeout', async () => {
    expect(await fetchTransport.send(hop('/silent', { headersTimeoutMs: 200 }))).toMatchObject({
      failed: 'timeout',
    })
  })

  it('gives the body the call’s deadline, not the headers timeout', async () => {
    const response = await send(hop('/slow-body', { headersTimeoutMs: 100 }))
    const body = await response.read(1024, performance.now() + 2000, never)
    expect('body' in body && body.body.toString()).toBe('late but whole')
  })

  it('attack: a body that trickles forever ends at the deadline, and the connection is dropped', async () => {
    const response = await send(hop('/trickle'))
    expect(await response.read(1024 * 1024, performance.now() + 300, never)).toMatchObject({
      failed: 'timeout',
    })
    const after = written
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(written - after).toBeLessThanOrEqual(2)
  })

  it('stops when the execution ends', async () => {
    const ended = new AbortController()
    const pending = fetchTransport.send(hop('/silent', { signal: ended.signal }))
    ended.abort()
    expect(await pending).toMatchObject({ failed: 'aborted' })
    const response = await send(hop('/trickle'))
    const reading = response.read(1024 * 1024, performance.now() + 5000, ended.signal)
    expect(await reading).toMatchObject({ failed: 'aborted' })
  })
})
