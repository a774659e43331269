import type { BodyResult, EgressTransport, HopFailure } from './transport.ts'

/**
 * The runtime's own `fetch` as the transport: for a Worker, where sockets are the platform's and a
 * request goes out by name through Cloudflare's network (which refuses private and internal
 * destinations itself). The binding has decided every hop before it gets here; redirects come back
 * as responses (`redirect: 'manual'`) for the binding to decide afresh. The runtime decompresses
 * bodies; the cap is counted on what it hands over, and reading stops as soon as it is passed.
 */
export const fetchTransport: EgressTransport = {
  pinsAddress: false,
  async send(hop) {
    const url = new URL(hop.target.url)
    if (hop.body !== null && hop.body.length > 0 && (hop.method === 'GET' || hop.method === 'HEAD')) {
      return { failed: 'network', message: `a ${hop.method} request cannot carry a body on this runtime` }
    }
    const headers = new Headers()
    for (const [name, value] of hop.headers) headers.append(name, value)
    // One controller for the whole exchange: the execution's end aborts it at any point, the headers
    // timeout only until the head has arrived (the body has the call's deadline, in `read`).
    const controller = new AbortController()
    const abort = () => controller.abort()
    if (hop.signal.aborted) abort()
    else hop.signal.addEventListener('abort', abort, { once: true })
    const done = () => hop.signal.removeEventListener('abort', abort)
    let late = false
    const timer = setTimeout(() => {
      late = true
      abort()
    }, hop.headersTimeoutMs)
    let response: Response
    try {
      response = await fetch(`${url.origin}${url.pathname}${hop.search}`, {
        method: hop.method,
        headers,
        body: hop.body === null || hop.body.length === 0 ? null : new Uint8Array(hop.body),
        redirect: 'manual',
        signal: controller.signal,
      })
    } catch (error) {
      done()
      if (hop.signal.aborted) return { failed: 'aborted', message: 'the execution ended' }
      if (late) return { failed: 'timeout', message: `no response headers within ${hop.headersTimeoutMs} ms` }
      return { failed: 'network', message: describeError(error) }
    } finally {
      clearTimeout(timer)
    }
    const pairs: [string, string][] = []
    response.headers.forEach((value, name) => {
      pairs.push([name.toLowerCase(), value])
    })
    return {
      status: response.status,
      statusText: response.statusText,
      headers: pairs,
      read: async (maxBytes, deadline, signal) => {
        const body = await readCapped(response, maxBytes, deadline, signal)
        // Anything but the whole body drops the connection.
        if (!('body' in body)) abort()
        done()
        return body
      },
      discard: () => {
        abort()
        done()
      },
    }
  },
}

async function readCapped(
  response: Response,
  maxBytes: number,
  deadline: number,
  signal: AbortSignal,
): Promise<BodyResult> {
  const body = response.body
  if (body === null) return { body: Buffer.alloc(0) }
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  let onAbort = () => {}
  const stopped = new Promise<HopFailure>((resolve) => {
    onAbort = () => resolve({ failed: 'aborted', message: 'the execution ended' })
    if (signal.aborted) onAbort()
    timer = setTimeout(
      () => resolve({ failed: 'timeout', message: 'the response body did not finish in time' }),
      Math.max(0, deadline - performance.now()),
    )
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    for (;;) {
      const next = await Promise.race([reader.read(), stopped])
      if ('failed' in next) {
        void reader.cancel().catch(() => {})
        return next
      }
      if (next.done) return { body: Buffer.concat(chunks) }
      size += next.value.byteLength
      if (size > maxBytes) {
        void reader.cancel().catch(() => {})
        return { tooLarge: true }
      }
      chunks.push(next.value)
    }
  } catch {
    return { failed: 'network', message: 'the connection closed early' }
  } finally {
    clearTimeout(timer)
    signal.removeEventListener('abort', onAbort)
  }
}

/** The kind of a network error, never its message (it may name addresses). */
function describeError(error: unknown): string {
  const name = error instanceof Error ? error.name : ''
  return name === 'TypeError' || name === '' ? 'network error' : `network error (${name})`
}
