// `npm run bench:bindings`: what a guest binding call costs, as ratios against baselines measured in
// the same run. The real harness and supervisor (two worker processes, SQLite in a temp dir) serve
// executions of one agent; a local HTTP server answers its fetches.
//   - per kv.get: (an execution making N kv.get calls - an execution making none) / N, against the
//     cost of the execution without calls;
//   - per fetch: the same for N sequential fetches to the local server, against a host-side fetch of
//     the same URL (Node's own fetch, keep-alive, no policy, no sandbox).
// Each figure is the median of BENCH_BINDINGS_ROUNDS rounds (default 5). Prints a table; exits 0.

import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Supervisor } from '@cordon/executor'
import { Harness } from '@cordon/harness'
import { SqliteStore } from '@cordon/harness/node'

const ROUNDS = Number(process.env.BENCH_BINDINGS_ROUNDS ?? 5)
const EXECUTIONS = 40
const CALLS = 50
const TENANT = 'bench'

const upstream = createServer((_req, res) => {
  res.setHeader('content-type', 'application/json')
  res.end('{"ok":true}')
})
await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
const port = (upstream.address() as AddressInfo).port
const dir = mkdtempSync(join(tmpdir(), 'cordon-bench-bindings-'))
const store = new SqliteStore(join(dir, 'cordon.sqlite'))
const supervisor = new Supervisor({ workers: 2 })
await supervisor.start()
const harness = new Harness({
  store,
  supervisor,
  builtinProfiles: new Map(),
  engines: ['quickjs'],
  egress: { resolver: { resolve: async () => ['127.0.0.1'] } },
})
harness.putProfile(
  TENANT,
  'bench',
  JSON.stringify({
    engines: ['quickjs'],
    languages: ['javascript'],
    limits: { cpuMs: 5000, wallMs: 20000, memoryMb: 64, outputBytes: 65536, bindingCalls: 1000 },
    network: {
      allow: [{ host: 'upstream.test', schemes: ['http'], ports: [port], methods: ['GET'] }],
      allowPrivateAddresses: true,
    },
    kv: { access: 'read-write', quotaBytes: 1_048_576 },
  }),
  'json',
)
harness.putAgent(TENANT, 'bench', JSON.stringify({ sandbox: 'bench' }), 'json')

/** Median over ROUNDS of the mean wall time (ms) of one execution of `code`. */
async function perExecution(code: string): Promise<number> {
  const rounds: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const start = performance.now()
    for (let i = 0; i < EXECUTIONS; i++) {
      const record = await harness.execute(TENANT, 'bench', { language: 'javascript', code, input: null })
      if (record.status !== 'ok') throw new Error(`bench execution failed: ${JSON.stringify(record.error)}`)
    }
    rounds.push((performance.now() - start) / EXECUTIONS)
  }
  return median(rounds)
}

async function hostFetch(): Promise<number> {
  const rounds: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const start = performance.now()
    for (let i = 0; i < CALLS * 4; i++) await (await fetch(`http://127.0.0.1:${port}/`)).json()
    rounds.push((performance.now() - start) / (CALLS * 4))
  }
  return median(rounds)
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

try {
  await harness.execute(TENANT, 'bench', {
    language: 'javascript',
    code: `await kv.set('k', { v: 1 }); export default 1`,
    input: null,
  })
  const empty = await perExecution('export default 1')
  const kv = await perExecution(`for (let i = 0; i < ${CALLS}; i++) await kv.get('k'); export default 1`)
  const fetches = await perExecution(
    `for (let i = 0; i < ${CALLS}; i++) await (await fetch('http://upstream.test:${port}/')).json(); export default 1`,
  )
  const direct = await hostFetch()
  const kvCall = (kv - empty) / CALLS
  const fetchCall = (fetches - empty) / CALLS
  const rows: [string, number, string][] = [
    ['execution without binding calls (baseline)', empty, '1.00x'],
    [
      'one kv.get (round trip guest -> SQLite -> guest)',
      kvCall,
      `${(kvCall / empty).toFixed(2)}x of an execution`,
    ],
    ['host fetch of the local server (baseline)', direct, '1.00x'],
    [
      'one guest fetch of the same URL (policy, DNS check, pinned connect)',
      fetchCall,
      `${(fetchCall / direct).toFixed(2)}x of a host fetch`,
    ],
  ]
  console.log(`bindings bench: ${ROUNDS} rounds x ${EXECUTIONS} executions, ${CALLS} calls each; medians\n`)
  console.log(`${'what'.padEnd(70)} ${'ms'.padStart(8)}  ratio`)
  for (const [what, ms, ratio] of rows)
    console.log(`${what.padEnd(70)} ${ms.toFixed(3).padStart(8)}  ${ratio}`)
} finally {
  await supervisor.stop()
  store.close()
  upstream.close()
  rmSync(dir, { recursive: true, force: true })
}
