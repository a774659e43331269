// The subset of autocannon@8's untyped API that the bench uses (see its README, "API").
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'

  namespace autocannon {
    interface Options {
      url: string
      connections?: number
      /** Seconds. */
      duration?: number
      /** Seconds before a request counts as a timeout. */
      timeout?: number
      pipelining?: number
      method?: 'GET' | 'POST' | 'PUT' | 'DELETE'
      headers?: Record<string, string>
      body?: string
      /** Called with every response body; a falsy answer counts the response in `mismatches`. */
      verifyBody?: (body: string) => boolean
      title?: string
    }

    interface Histogram {
      average: number
      mean: number
      stddev: number
      min: number
      max: number
      total?: number
      p50: number
      p99: number
    }

    interface Result {
      title?: string
      url: string
      /** Seconds, to 10 ms. */
      duration: number
      errors: number
      timeouts: number
      mismatches: number
      non2xx: number
      statusCodeStats: Record<string, { count: number }>
      latency: Histogram
      requests: Histogram & { sent: number }
      throughput: Histogram
    }

    interface Client extends EventEmitter {}

    interface Instance extends EventEmitter {
      stop(): void
      on(
        event: 'response',
        listener: (client: Client, status: number, bytes: number, ms: number) => void,
      ): this
      on(event: 'reqError', listener: (error: Error) => void): this
      on(event: string, listener: (...args: unknown[]) => void): this
    }
  }

  function autocannon(
    options: autocannon.Options,
    callback: (error: Error | null, result: autocannon.Result) => void,
  ): autocannon.Instance

  export = autocannon
}
