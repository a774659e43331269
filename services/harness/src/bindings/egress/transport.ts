import type { CheckedEgress } from '@cordon/policy'

/** One HTTP exchange with a checked target. */
export interface Hop {
  target: CheckedEgress
  /**
   * The address that passed the policy, where the transport pins its connection (it connects here
   * and nowhere else); null for a transport that connects by name (`pinsAddress` false).
   */
  address: string | null
  method: string
  headers: [string, string][]
  body: Buffer | null
  /** The query to send (the checked URL's, with granted secrets put in). */
  search: string
  /** Extra trusted CAs (PEM), or null for the runtime's roots only. */
  ca: readonly string[] | null
  headersTimeoutMs: number
  signal: AbortSignal
}

export type HopFailure = { failed: 'timeout' | 'network' | 'aborted'; message: string }

export type BodyResult = { body: Buffer } | { tooLarge: true } | HopFailure

/** A hop's response head; its body is read once with `read`, or dropped with `discard`. */
export interface HopResponse {
  status: number
  statusText: string
  /** Lowercase names, in the order received. */
  headers: [string, string][]
  /**
   * The body, decompressed, read only while it stays within `maxBytes` (past that the connection is
   * dropped: a compression bomb costs what fits, no more) and before `deadline` (`performance.now()`).
   */
  read(maxBytes: number, deadline: number, signal: AbortSignal): Promise<BodyResult>
  discard(): void
}

/** How the fetch binding reaches the network, once the policy has decided a hop. */
export interface EgressTransport {
  /**
   * True when a hop connects to the address the binding resolved and checked (Node: a DNS answer
   * that changes after the check cannot move the connection). False for a runtime that connects by
   * name itself (a Worker's `fetch`): names are then not resolved here, IP literals are still checked,
   * and the runtime's network must refuse private destinations (Cloudflare's does).
   */
  readonly pinsAddress: boolean
  send(hop: Hop): Promise<HopResponse | HopFailure>
}
