import { parentPort, workerData } from 'node:worker_threads'
import Database from 'better-sqlite3'

// The store's checkpointer: a thread of the gateway process with its own connection that copies the
// write-ahead log into the database file every `intervalMs` (a PASSIVE checkpoint: it never blocks a
// writer). The copy and its fsyncs happen here, so the thread that serves HTTP never stalls on them.
// See `SqliteStore`.

const { file, intervalMs } = workerData as { file: string; intervalMs: number }
// Never creates the file: a store closed (and its folder removed) before this thread got here ends it.
const db = new Database(file, { fileMustExist: true })
db.pragma('busy_timeout = 1000')
const checkpoint = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)')
  } catch {
    // Busy or failing now: the next tick tries again, and the writer's own safety net remains.
  }
}
const timer = setInterval(checkpoint, intervalMs)
parentPort?.on('message', (message: unknown) => {
  if (message !== 'stop') return
  clearInterval(timer)
  db.close()
  parentPort?.close()
})
