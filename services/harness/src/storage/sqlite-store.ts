import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import type Database from 'better-sqlite3'
import { NodeSqlDatabase } from './node-sql.ts'
import { SqlStore } from './sql-store.ts'

const CHECKPOINTER_ENTRY = fileURLToPath(new URL('./checkpointer.ts', import.meta.url))
/** How often the checkpointer thread copies the log into the database file. */
const CHECKPOINT_INTERVAL_MS = 50
/** Log pages after which this connection checkpoints by itself (the checkpointer fell behind or died). */
const FALLBACK_CHECKPOINT_PAGES = 10_000

/**
 * Moves WAL checkpoints off this thread. SQLite otherwise checkpoints inside the commit that crosses
 * 1000 log pages: under load that is several times a second, each a stall of milliseconds (copying
 * pages and two fsyncs) for every request behind it (measured: removing them raised throughput by
 * about a sixth and cut the p99 by half). A thread with its own connection checkpoints every 50 ms
 * instead; this connection keeps a far threshold as a safety net.
 */
function startCheckpointer(file: string, db: Database.Database): Worker | null {
  if (file === ':memory:') return null
  db.pragma(`wal_autocheckpoint = ${FALLBACK_CHECKPOINT_PAGES}`)
  const worker = new Worker(CHECKPOINTER_ENTRY, { workerData: { file, intervalMs: CHECKPOINT_INTERVAL_MS } })
  worker.unref()
  // Should it die, the safety net checkpoints and nothing is lost; say so once. (It also ends, without
  // a word, when the store was closed and its file removed before the thread could open it.)
  worker.on('error', (error) => {
    if (!(error instanceof Error && 'code' in error && error.code === 'SQLITE_CANTOPEN')) {
      console.error(
        `cordon: the SQLite checkpointer thread stopped (${error.message}); checkpoints continue every ${FALLBACK_CHECKPOINT_PAGES} pages`,
      )
    }
  })
  return worker
}

/**
 * The embedded store of the Node service: one SQLite file (WAL, synchronous=NORMAL) under the data
 * directory, with its checkpoints on a thread of their own (see `SqlStore` for everything else).
 */
export class SqliteStore extends SqlStore {
  readonly #checkpointer: Worker | null

  /**
   * `auditKey` keys the audit log's hash chain (the service keeps it in a file of its own, beside the
   * database, so that whoever can write the database alone cannot forge a valid chain); without one,
   * a key stored in the database is used.
   */
  constructor(file: string, options: { auditKey?: Buffer } = {}) {
    const db = new NodeSqlDatabase(file)
    super(db, options)
    this.#checkpointer = startCheckpointer(file, db.raw)
  }

  override close(): void {
    this.#checkpointer?.postMessage('stop')
    super.close()
  }
}
