import { lookup } from 'node:dns/promises'
import type { EgressTransport } from './transport.ts'

/**
 * Resolves a hostname to every address it has (IPv4 and IPv6, as text). The egress binding calls it
 * once per request hop and connects only to an address it returned that passed the policy.
 */
export interface Resolver {
  resolve(hostname: string, signal: AbortSignal): Promise<string[]>
}

/** The system resolver (`getaddrinfo` through Node's `dns.lookup`, every answer, in its order). */
export const systemResolver: Resolver = {
  async resolve(hostname, signal) {
    signal.throwIfAborted()
    const answers = await lookup(hostname, { all: true, verbatim: true })
    return answers.map((answer) => answer.address)
  },
}

/** Bounds of one guest `fetch`. Every one is enforced; none can be switched off. */
export interface EgressLimits {
  /** Request body bytes (default 1 MiB). */
  maxRequestBytes: number
  /** Response body bytes after decompression (default 2 MiB). */
  maxResponseBytes: number
  /** Time from sending a hop's request to its response headers (default 10 s). */
  headersTimeoutMs: number
  /** Time for the whole call, redirects and body included (default 30 s; never past the execution's wall time). */
  totalTimeoutMs: number
  /** Redirects followed before the call fails with TOO_MANY_REDIRECTS (default 5). */
  maxRedirects: number
}

export const DEFAULT_EGRESS_LIMITS: EgressLimits = Object.freeze({
  maxRequestBytes: 1024 * 1024,
  maxResponseBytes: 2 * 1024 * 1024,
  headersTimeoutMs: 10_000,
  totalTimeoutMs: 30_000,
  maxRedirects: 5,
})

/** How the service reaches the network for guests. */
export interface EgressOptions {
  /** How hops reach the network (default: Node's sockets, pinned to the checked address). */
  transport?: EgressTransport
  /** Default: the system resolver. Tests map their own names to local addresses. */
  resolver?: Resolver
  /** Extra CA certificates (PEM) trusted for https, on top of Node's bundled roots. */
  ca?: readonly string[]
  limits?: Partial<EgressLimits>
}
