import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { isIP } from 'node:net'
import { rootCertificates } from 'node:tls'
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib'
import type { BodyResult, EgressTransport, Hop, HopFailure, HopResponse } from './transport.ts'

/**
 * Node's transport: every hop connects to the address the binding checked, never to a name (see
 * {@link sendHop}), and reads the body itself, decompressing within the cap (see {@link readBody}).
 */
export const nodeTransport: EgressTransport = {
  pinsAddress: true,
  async send(hop) {
    const response = await sendHop(hop)
    if ('failed' in response) return response
    const { message } = response
    return {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
      read: async (maxBytes, deadline, signal) => {
        const body = await readBody(response, maxBytes, deadline, signal)
        message.resume()
        return body
      },
      discard: () => message.destroy(),
    }
  },
}

interface NodeResponse extends Omit<HopResponse, 'read' | 'discard'> {
  message: IncomingMessage
}

/**
 * Sends one request to `hop.address` (never a name: nothing is resolved here, so a DNS answer that
 * changes after the check cannot redirect the connection). TLS verifies the certificate against the
 * request's host name (SNI and identity check), or against the IP literal the URL named. Resolves
 * with the response head; the body is read by {@link readBody}.
 */
function sendHop(hop: Hop): Promise<NodeResponse | HopFailure> {
  const url = new URL(hop.target.url)
  const https = hop.target.scheme === 'https'
  const hostname = hop.target.host.replace(/^\[|\]$/g, '')
  const headers: Record<string, string | string[]> = {}
  for (const [name, value] of hop.headers) {
    const existing = headers[name]
    headers[name] =
      existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value]
  }
  headers.host = url.host
  if (hop.body !== null) headers['content-length'] = String(hop.body.length)
  const address = hop.address
  if (address === null)
    return Promise.resolve({ failed: 'network', message: 'no checked address to connect to' })
  const options = {
    host: address,
    family: isIP(address),
    port: hop.target.port,
    method: hop.method,
    path: `${url.pathname}${hop.search}`,
    headers,
    agent: false as const,
    setHost: false,
    ...(https
      ? {
          // SNI and the certificate check use the URL's host name, never the address connected to;
          // for an IP-literal URL there is no SNI and the certificate must name that address.
          servername: isIP(hostname) === 0 ? hostname : undefined,
          ca: hop.ca === null ? undefined : [...rootCertificates, ...hop.ca],
          ALPNProtocols: ['http/1.1'],
        }
      : {}),
  }
  return new Promise((resolve) => {
    let settled = false
    const finish = (value: NodeResponse | HopFailure) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      hop.signal.removeEventListener('abort', onAbort)
      resolve(value)
    }
    const request = (https ? httpsRequest : httpRequest)(options, (message) => {
      const pairs: [string, string][] = []
      const raw = message.rawHeaders
      for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([(raw[i] ?? '').toLowerCase(), raw[i + 1] ?? ''])
      finish({
        status: message.statusCode ?? 0,
        statusText: message.statusMessage ?? '',
        headers: pairs,
        message,
      })
    })
    const timer = setTimeout(() => {
      request.destroy()
      finish({ failed: 'timeout', message: `no response headers within ${hop.headersTimeoutMs} ms` })
    }, hop.headersTimeoutMs)
    const onAbort = () => {
      request.destroy()
      finish({ failed: 'aborted', message: 'the execution ended' })
    }
    hop.signal.addEventListener('abort', onAbort, { once: true })
    request.on('error', (error) => finish({ failed: 'network', message: describeError(error) }))
    request.end(hop.body ?? undefined)
  })
}

/**
 * Reads a response body, decompressing gzip, deflate and br, and stops (destroying the connection)
 * as soon as the decompressed size passes `maxBytes`: a compression bomb costs what fits, no more.
 */
function readBody(
  response: NodeResponse,
  maxBytes: number,
  deadline: number,
  signal: AbortSignal,
): Promise<BodyResult> {
  const { message } = response
  const encoding = (response.headers.find(([name]) => name === 'content-encoding')?.[1] ?? '')
    .trim()
    .toLowerCase()
  const decoder =
    encoding === 'gzip' || encoding === 'x-gzip'
      ? createGunzip()
      : encoding === 'deflate'
        ? createInflate()
        : encoding === 'br'
          ? createBrotliDecompress()
          : null
  const stream = decoder === null ? message : message.pipe(decoder)
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    let size = 0
    let settled = false
    const finish = (value: BodyResult) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      signal.removeEventListener('abort', onAbort)
      if (!('body' in value)) {
        message.destroy()
        decoder?.destroy()
      }
      resolve(value)
    }
    const timer = setTimeout(
      () => finish({ failed: 'timeout', message: 'the response body did not finish in time' }),
      Math.max(0, deadline - performance.now()),
    )
    const onAbort = () => finish({ failed: 'aborted', message: 'the execution ended' })
    signal.addEventListener('abort', onAbort, { once: true })
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > maxBytes) finish({ tooLarge: true })
      else chunks.push(chunk)
    })
    stream.on('end', () => finish({ body: Buffer.concat(chunks) }))
    stream.on('error', (error) => finish({ failed: 'network', message: describeError(error) }))
    message.on('error', (error) => finish({ failed: 'network', message: describeError(error) }))
    message.on('aborted', () => finish({ failed: 'network', message: 'the connection closed early' }))
  })
}

/** A short, host-free description of a network error (codes only: no addresses or stack). */
function describeError(error: unknown): string {
  const code = error !== null && typeof error === 'object' && 'code' in error ? String(error.code) : ''
  if (/^(CERT_|ERR_TLS|UNABLE_TO|DEPTH_ZERO|SELF_SIGNED|ERR_SSL)/.test(code)) return `TLS failed (${code})`
  if (code === 'ECONNREFUSED') return 'connection refused'
  if (code === 'ECONNRESET') return 'connection reset'
  if (code === 'ERR_INVALID_CHAR' || code === 'ERR_INVALID_HTTP_TOKEN') return 'invalid request header'
  if (code.startsWith('HPE_')) return `malformed response (${code})`
  return code === '' ? 'network error' : `network error (${code})`
}
