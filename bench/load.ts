import autocannon from 'autocannon'
import { clip, type Target } from './targets.ts'

export interface LoadOptions {
  connections: number
  durationSeconds: number
  /** Stops the run early; the promise then rejects with the signal's reason. */
  signal: AbortSignal
}

/** What one autocannon run measured. Latencies are client-side, in ms, from every response. */
export interface LoadResult {
  requests: number
  durationSeconds: number
  requestsPerSecond: number
  latencyMs: { p50: number; p90: number; p99: number; max: number; mean: number }
  non2xx: number
  errors: number
  timeouts: number
  mismatches: number
  statusCodes: Record<string, number>
  /** The first response body that failed the target's check, clipped. */
  firstMismatch: string | null
  /** The first connection error or timeout message. */
  firstError: string | null
}

/**
 * Drives `target` with `connections` keep-alive connections (no pipelining) for `durationSeconds`.
 * Every response body goes through `target.verify`. Percentiles come from the raw per-response
 * times rather than autocannon's histogram, which rounds to whole milliseconds.
 */
export function runLoad(target: Target, options: LoadOptions): Promise<LoadResult> {
  options.signal.throwIfAborted()
  const latencies = new Samples()
  let firstMismatch: string | null = null
  let firstError: string | null = null
  return new Promise<LoadResult>((resolve, reject) => {
    const instance = autocannon(
      {
        url: target.url,
        connections: options.connections,
        duration: options.durationSeconds,
        timeout: 10,
        pipelining: 1,
        method: target.method,
        headers: target.headers,
        body: target.body,
        verifyBody: target.verify,
      },
      (error, result) => {
        options.signal.removeEventListener('abort', stop)
        if (options.signal.aborted) return reject(options.signal.reason)
        if (error !== null) return reject(error)
        const requests = result.requests.total ?? 0
        resolve({
          requests,
          durationSeconds: result.duration,
          requestsPerSecond: result.duration > 0 ? requests / result.duration : 0,
          latencyMs: {
            p50: latencies.percentile(50),
            p90: latencies.percentile(90),
            p99: latencies.percentile(99),
            max: latencies.percentile(100),
            mean: latencies.mean(),
          },
          non2xx: result.non2xx,
          errors: result.errors,
          timeouts: result.timeouts,
          mismatches: result.mismatches,
          statusCodes: Object.fromEntries(
            Object.entries(result.statusCodeStats).map(([code, { count }]) => [code, count]),
          ),
          firstMismatch,
          firstError,
        })
      },
    )
    const stop = () => instance.stop()
    options.signal.addEventListener('abort', stop, { once: true })
    instance.on('response', (_client, _status, _bytes, ms) => latencies.add(ms))
    instance.on('reqMismatch', (body) => {
      firstMismatch ??= clip(String(body))
    })
    instance.on('reqError', (error) => {
      firstError ??= error.message
    })
  })
}

/** Throws with the details when a run saw anything but verified 2xx answers. */
export function assertClean(target: Target, phase: string, result: LoadResult): void {
  const { non2xx, errors, timeouts, mismatches } = result
  if (non2xx + errors + timeouts + mismatches === 0 && result.requests > 0) return
  const lines = [
    `${target.label}, ${phase}: ${result.requests} responses, ${non2xx} non-2xx, ${errors} errors ` +
      `(${timeouts} timeouts), ${mismatches} failed the body check`,
    `  status codes: ${JSON.stringify(result.statusCodes)}`,
  ]
  if (result.firstMismatch !== null) lines.push(`  first bad body: ${result.firstMismatch}`)
  if (result.firstError !== null) lines.push(`  first error: ${result.firstError}`)
  throw new Error(lines.join('\n'))
}

/** A growable list of latency samples with nearest-rank percentiles. */
class Samples {
  #values = new Float64Array(1 << 16)
  #count = 0
  #sorted: Float64Array | null = null

  add(value: number): void {
    if (this.#count === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2)
      grown.set(this.#values)
      this.#values = grown
    }
    this.#values[this.#count++] = value
    this.#sorted = null
  }

  percentile(p: number): number {
    if (this.#count === 0) return Number.NaN
    this.#sorted ??= this.#values.slice(0, this.#count).sort()
    const rank = Math.max(1, Math.ceil((p / 100) * this.#count))
    return this.#sorted[rank - 1] ?? Number.NaN
  }

  mean(): number {
    let sum = 0
    for (let i = 0; i < this.#count; i++) sum += this.#values[i] ?? 0
    return this.#count === 0 ? Number.NaN : sum / this.#count
  }
}
