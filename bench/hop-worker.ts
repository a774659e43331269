// The child side of the process-hop floor (bench/hop-server.ts): answers every request at once with
// the trivial execution's result, without looking at the body. No engine, no policy, no store.

/** Parent to worker: one forwarded request body. */
export interface HopRequest {
  type: 'run'
  id: number
  body: unknown
}

/** Worker to parent: `ready` once, then one `done` per request, with the same id. */
export type HopReply = { type: 'ready' } | { type: 'done'; id: number; outcome: HopOutcome }

export interface HopOutcome {
  status: 'ok'
  result: 2
}

if (typeof process.send !== 'function') {
  console.error('hop worker: must be started by bench/hop-server.ts (no IPC channel)')
  process.exit(2)
}
const send = (message: HopReply) => process.send?.(message)

process.on('message', (message: HopRequest) => {
  if (message?.type !== 'run') return
  send({ type: 'done', id: message.id, outcome: { status: 'ok', result: 2 } })
})
// Exits with the server, even if the server was killed without stopping it.
process.on('disconnect', () => process.exit(0))

send({ type: 'ready' })
