import type { SqlDatabase } from './sql.ts'
import type { JournalEntry, JournalScope, JournalStore } from './store.ts'

/** How the journal shares the store's group commit. */
export interface CommitQueue {
  /** Queues a statement for the next group commit (at the latest, the end of this turn). */
  queue(run: () => void): void
  /** Commits every queued write now. */
  flush(): void
}

/**
 * The execution journal in the `journal` table. An intent is its own commit, after everything queued
 * before it (so the execution's running record, with its request, is durable before any of its
 * calls can have an effect); replies ride on the store's group commit; a local write and its reply
 * share one transaction.
 */
export class SqliteJournal implements JournalStore {
  readonly #db: SqlDatabase
  readonly #commits: CommitQueue
  readonly #entries
  readonly #put
  readonly #drop
  readonly #sweep

  constructor(db: SqlDatabase, commits: CommitQueue) {
    this.#db = db
    this.#commits = commits
    this.#entries = db.prepare<[string, string], JournalEntry>(
      'SELECT seq, call, fingerprint, reply FROM journal WHERE tenant = ? AND execution = ? ORDER BY seq',
    )
    this.#put = db.prepare(
      `INSERT INTO journal (tenant, execution, seq, call, fingerprint, reply)
       VALUES (@tenant, @execution, @seq, @call, @fingerprint, @reply)
       ON CONFLICT (tenant, execution, seq) DO UPDATE SET call = excluded.call,
         fingerprint = excluded.fingerprint, reply = excluded.reply`,
    )
    // The root's entries and its tools' (`<root>.<seq>`, between "<root>." and "<root>/").
    this.#sweep = db.prepare(
      `DELETE FROM journal WHERE NOT EXISTS (
         SELECT 1 FROM executions e WHERE e.tenant = journal.tenant AND e.status = 'running'
           AND (journal.execution = e.id OR substr(journal.execution, 1, length(e.id) + 1) = e.id || '.'))`,
    )
    this.#drop = db.prepare<[string, string, string, string]>(
      'DELETE FROM journal WHERE tenant = ? AND (execution = ? OR (execution > ? AND execution < ?))',
    )
  }

  entries(tenant: string, execution: string): Map<number, JournalEntry> {
    this.#commits.flush()
    return new Map(this.#entries.all(tenant, execution).map((entry) => [entry.seq, entry]))
  }

  intend(scope: JournalScope, entry: Omit<JournalEntry, 'reply'>): void {
    this.#commits.flush()
    // This one commit is on disk when it returns (the store otherwise leaves that to its checkpoints):
    // the call it announces is about to leave the machine, and a power loss must not forget it.
    this.#db.durably(() =>
      this.#put.run({ tenant: scope.tenant, execution: scope.execution, ...entry, reply: null }),
    )
  }

  record(scope: JournalScope, entry: JournalEntry): void {
    const row = { tenant: scope.tenant, execution: scope.execution, ...entry }
    this.#commits.queue(() => this.#put.run(row))
  }

  atomically<T>(
    scope: JournalScope,
    entry: Omit<JournalEntry, 'reply'>,
    apply: () => { value: T; reply: string },
  ): T {
    this.#commits.flush()
    return this.#db.transaction(() => {
      const { value, reply } = apply()
      this.#put.run({ tenant: scope.tenant, execution: scope.execution, ...entry, reply })
      return value
    })()
  }

  sweep(): number {
    this.#commits.flush()
    return this.#sweep.run().changes
  }

  drop(tenant: string, root: string): void {
    this.#commits.queue(() => this.#drop.run(tenant, root, `${root}.`, `${root}/`))
  }
}
