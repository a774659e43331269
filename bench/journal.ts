// `npm run bench:journal` (and the last part of `npm run bench`): what the execution journal costs.
// Two harnesses on one supervisor (two worker processes), each with its own SQLite file in a temp dir
// (WAL, synchronous=NORMAL, as the service runs): one journals, one does not (`journal: false`, which
// exists for this measurement only). Both run the same executions, alternating round by round so
// that the machine's drift hits both alike:
//   - an execution making 10 kv writes (each a kv.set of a small value), with and without the journal;
//   - an execution making no binding call, with and without (the journal's fixed cost: the request kept
//     with the running record, and the journal dropped with the final one).
// Each figure is the median over BENCH_JOURNAL_ROUNDS rounds (default 7) of the mean of 40 executions.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Supervisor } from '@cordon/executor'
import { Harness } from '@cordon/harness'
import { SqliteStore } from '@cordon/harness/node'

const ROUNDS = Number(process.env.BENCH_JOURNAL_ROUNDS ?? 7)
const EXECUTIONS = 40
const WRITES = 10
const TENANT = 'bench'

const dir = mkdtempSync(join(tmpdir(), 'cordon-bench-journal-'))
const supervisor = new Supervisor({ workers: 2 })
await supervisor.start()
const stores: SqliteStore[] = []

function harness(journal: boolean): Harness {
  const store = new SqliteStore(join(dir, `${journal ? 'journal' : 'none'}.sqlite`))
  stores.push(store)
  const made = new Harness({ store, supervisor, builtinProfiles: new Map(), engines: ['quickjs'], journal })
  made.putProfile(
    TENANT,
    'bench',
    JSON.stringify({
      engines: ['quickjs'],
      languages: ['javascript'],
      limits: { cpuMs: 5000, wallMs: 20000, memoryMb: 64, outputBytes: 65536, bindingCalls: 1000 },
      kv: { access: 'read-write', quotaBytes: 1_048_576 },
    }),
    'json',
  )
  made.putAgent(TENANT, 'bench', JSON.stringify({ sandbox: 'bench' }), 'json')
  return made
}

const journaled = harness(true)
const plain = harness(false)

/** The mean wall time (ms) of one execution of `code` over EXECUTIONS sequential executions. */
async function perExecution(target: Harness, code: string): Promise<number> {
  const start = performance.now()
  for (let i = 0; i < EXECUTIONS; i++) {
    const record = await target.execute(TENANT, 'bench', { language: 'javascript', code, input: { i } })
    if (record.status !== 'ok') throw new Error(`bench execution failed: ${JSON.stringify(record.error)}`)
  }
  return (performance.now() - start) / EXECUTIONS
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

const WRITING = `export default async ({ i }) => {
  for (let n = 0; n < ${WRITES}; n++) await kv.set('key-' + n, { i, n })
  return i
}`
const EMPTY = 'export default ({ i }) => i'

try {
  // Warm both (workers, statements, pages) before measuring.
  for (const target of [journaled, plain]) {
    await perExecution(target, WRITING)
    await perExecution(target, EMPTY)
  }
  const figures = {
    writesOn: [] as number[],
    writesOff: [] as number[],
    emptyOn: [] as number[],
    emptyOff: [] as number[],
  }
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which goes first, so that neither always runs on a machine just warmed by the other.
    const order: [Harness, boolean][] =
      round % 2 === 0
        ? [
            [journaled, true],
            [plain, false],
          ]
        : [
            [plain, false],
            [journaled, true],
          ]
    for (const [target, on] of order) {
      ;(on ? figures.writesOn : figures.writesOff).push(await perExecution(target, WRITING))
      ;(on ? figures.emptyOn : figures.emptyOff).push(await perExecution(target, EMPTY))
    }
  }
  const writesOn = median(figures.writesOn)
  const writesOff = median(figures.writesOff)
  const emptyOn = median(figures.emptyOn)
  const emptyOff = median(figures.emptyOff)
  const perWrite = ((writesOn - emptyOn - (writesOff - emptyOff)) / WRITES) * 1000
  console.log(
    `journal bench: ${ROUNDS} rounds x ${EXECUTIONS} executions, QuickJS, 2 workers, SQLite on disk; medians\n`,
  )
  console.log(`${'what'.padEnd(52)} ${'no journal'.padStart(11)} ${'journal'.padStart(9)}  ratio`)
  const row = (what: string, off: number, on: number) =>
    console.log(
      `${what.padEnd(52)} ${`${off.toFixed(3)} ms`.padStart(11)} ${`${on.toFixed(3)} ms`.padStart(9)}  ${(on / off).toFixed(2)}x`,
    )
  row(`execution with ${WRITES} kv writes`, writesOff, writesOn)
  row('execution with no binding call', emptyOff, emptyOn)
  console.log(
    `\nthe journal's cost per kv write: ${perWrite.toFixed(1)} µs (its entry shares the write's transaction)`,
  )
} finally {
  await supervisor.stop()
  for (const store of stores) store.close()
  rmSync(dir, { recursive: true, force: true })
}
