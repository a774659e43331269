import type Database from 'better-sqlite3'
import type { AuditEntry, AuditFilter, AuditRecord, AuditStore } from './store.ts'

interface AuditRow {
  seq: number
  at: string
  kind: string
  agent: string | null
  execution: string | null
  decision: AuditRecord['decision']
  code: string
  rule: string | null
  detail: string
}

/**
 * The audit log in the `audit` table: rows are only ever inserted. Appends are group-committed: the
 * rows of one turn of the event loop go in one transaction at its end (measured with
 * `npm run bench:bindings`: a commit per row made a guest `kv.get` cost about twice as much). Every
 * read commits what is pending first, and so does `flush` (called when the store closes).
 */
export class SqliteAudit implements AuditStore {
  readonly #insert
  readonly #list
  readonly #insertMany: (rows: Record<string, string | null>[]) => void
  #pending: Record<string, string | null>[] = []
  #scheduled = false

  constructor(db: Database.Database) {
    this.#insert = db.prepare(
      `INSERT INTO audit (tenant, at, kind, agent, execution, decision, code, rule, detail)
       VALUES (@tenant, @at, @kind, @agent, @execution, @decision, @code, @rule, @detail)`,
    )
    this.#list = db.prepare<Record<string, string | number | null>, AuditRow>(
      `SELECT seq, at, kind, agent, execution, decision, code, rule, detail FROM audit
       WHERE tenant = @tenant AND seq > @after
         AND (@agent IS NULL OR agent = @agent) AND (@execution IS NULL OR execution = @execution)
         AND (@kind IS NULL OR kind = @kind OR kind LIKE @kindPrefix ESCAPE '\\')
         AND (@since IS NULL OR at >= @since)
       ORDER BY seq LIMIT @limit`,
    )
    this.#insertMany = db.transaction((rows: Record<string, string | null>[]) => {
      for (const row of rows) this.#insert.run(row)
    })
  }

  /** Commits every pending record. */
  flush(): void {
    this.#scheduled = false
    if (this.#pending.length === 0) return
    const rows = this.#pending
    this.#pending = []
    this.#insertMany(rows)
  }

  append(tenant: string, entry: AuditEntry): void {
    this.#pending.push({
      tenant,
      at: new Date().toISOString(),
      kind: entry.kind,
      agent: entry.agent,
      execution: entry.execution,
      decision: entry.decision,
      code: entry.code,
      rule: entry.rule,
      detail: JSON.stringify(entry.detail),
    })
    if (!this.#scheduled) {
      this.#scheduled = true
      setImmediate(() => this.flush())
    }
  }

  list(tenant: string, filter: AuditFilter): AuditRecord[] {
    this.flush()
    const kind = filter.kind ?? null
    return this.#list
      .all({
        tenant,
        after: filter.after ?? 0,
        agent: filter.agent ?? null,
        execution: filter.execution ?? null,
        kind,
        // `kind=binding` also matches `binding.fetch`, `binding.kv.set`...
        kindPrefix: kind === null ? null : `${kind.replace(/[\\%_]/g, (c) => `\\${c}`)}.%`,
        since: filter.since ?? null,
        limit: filter.limit,
      })
      .map((row) => ({ ...row, detail: JSON.parse(row.detail) as AuditRecord['detail'] }))
  }
}
