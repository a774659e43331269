import { createHash, createHmac } from 'node:crypto'
import type { SqlDatabase } from './sql.ts'
import type { AuditEntry, AuditFilter, AuditRecord, AuditStore, AuditVerification } from './store.ts'

interface AuditRow {
  seq: number
  tenant?: string
  prev?: string | null
  hash?: string | null
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
  #closed = false
  readonly #insert
  readonly #list
  readonly #head
  readonly #setHead: { run(tenant: string, seq: number, hash: string): unknown }
  readonly #chainOf
  readonly #key: Buffer
  readonly #insertMany: (rows: Record<string, string | null>[]) => void
  /** Each tenant's newest hash, as committed (loaded on first use). */
  readonly #heads = new Map<string, string>()
  #pending: Record<string, string | null>[] = []
  #scheduled = false

  /** `keyExistingHeads`: the database was just migrated to keyed heads; key the heads it has, once. */
  /**
   * `upgrade` says what the schema migrations of this start did: records written before the log was
   * chained are chained once (`chainExisting`), heads stored before they were keyed are keyed once
   * (`keyExistingHeads`). Later starts never do either: a record or head without its link is broken.
   */
  constructor(db: SqlDatabase, upgrade: { chainExisting: boolean; keyExistingHeads: boolean }, key: Buffer) {
    const keyExistingHeads = upgrade.keyExistingHeads
    this.#key = key
    this.#insert = db.prepare<Record<string, string | null>, { seq: number }>(
      `INSERT INTO audit (tenant, at, kind, agent, execution, decision, code, rule, detail, prev, hash)
       VALUES (@tenant, @at, @kind, @agent, @execution, @decision, @code, @rule, @detail, @prev, @hash)
       RETURNING seq`,
    )
    this.#head = db.prepare<[string], { seq: number; hash: string; mac: string | null }>(
      'SELECT seq, hash, mac FROM audit_heads WHERE tenant = ?',
    )
    const setHead = db.prepare(
      `INSERT INTO audit_heads (tenant, seq, hash, mac) VALUES (?, ?, ?, ?)
       ON CONFLICT (tenant) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, mac = excluded.mac`,
    )
    this.#setHead = {
      run: (tenant: string, seq: number, hash: string) =>
        setHead.run(tenant, seq, hash, this.#headMac(tenant, seq, hash)),
    }
    this.#chainOf = db.prepare<[string, number], AuditRow>(
      `SELECT seq, at, kind, agent, execution, decision, code, rule, detail, prev, hash FROM audit
       WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT 1000`,
    )
    this.#list = db.prepare<Record<string, string | number | null>, AuditRow>(
      `SELECT seq, at, kind, agent, execution, decision, code, rule, detail, prev, hash FROM audit
       WHERE tenant = @tenant AND seq > @after
         AND (@agent IS NULL OR agent = @agent) AND (@execution IS NULL OR execution = @execution)
         AND (@kind IS NULL OR kind = @kind OR kind LIKE @kindPrefix ESCAPE '\\')
         AND (@since IS NULL OR at >= @since)
       ORDER BY seq LIMIT @limit`,
    )
    const insertMany = db.transaction((rows: Record<string, string | null>[]) => {
      const touched = new Map<string, { seq: number; hash: string }>()
      for (const row of rows) {
        const tenant = row.tenant as string
        const prev = this.#headOf(tenant)
        const hash = this.#link(prev, row)
        const inserted = this.#insert.get({ ...row, prev, hash })
        if (inserted === undefined) throw new Error('the audit record was not stored')
        this.#heads.set(tenant, hash)
        touched.set(tenant, { seq: inserted.seq, hash })
      }
      for (const [tenant, head] of touched) this.#setHead.run(tenant, head.seq, head.hash)
    })
    this.#insertMany = (rows) => {
      try {
        insertMany(rows)
      } catch (error) {
        // Rolled back: the heads in memory may be ahead of the database's.
        this.#heads.clear()
        throw error
      }
    }
    this.#checkKey(db)
    if (upgrade.chainExisting) this.#chainUnchained(db)
    if (keyExistingHeads) {
      const heads = db
        .prepare<[], { tenant: string; seq: number; hash: string }>(
          'SELECT tenant, seq, hash FROM audit_heads',
        )
        .all()
      db.transaction(() => {
        for (const head of heads) this.#setHead.run(head.tenant, head.seq, head.hash)
      })()
    }
  }

  /**
   * Records of a tenant in order, each checked against the chain: its link is the keyed hash
   * (HMAC-SHA256) of the previous record's link and its own content. The first record whose content,
   * link or predecessor does not match is reported, and so is a chain that ends before the newest
   * link the store kept apart (records removed from the end). Read in pages, never whole.
   */
  verify(tenant: string): AuditVerification {
    this.flush()
    let prev = ''
    let last: { seq: number; hash: string } | null = null
    let count = 0
    for (let after = 0; ; ) {
      const rows = this.#chainOf.all(tenant, after)
      if (rows.length === 0) break
      for (const row of rows) {
        if ((row.prev ?? '') !== prev) {
          return broken(count, row.seq, 'the record before this one was removed or changed')
        }
        if (row.hash !== this.#link(prev, { tenant, ...row })) {
          return broken(count, row.seq, 'this record was changed')
        }
        prev = row.hash
        last = { seq: row.seq, hash: row.hash }
        count += 1
      }
      after = (rows.at(-1) as AuditRow).seq
    }
    const head = this.#head.get(tenant)
    const headForged = head !== undefined && head.mac !== this.#headMac(tenant, head.seq, head.hash)
    if (
      headForged ||
      (head?.hash ?? null) !== (last?.hash ?? null) ||
      (head?.seq ?? null) !== (last?.seq ?? null)
    ) {
      return broken(count, last === null ? 0 : last.seq + 1, 'records after this point were removed')
    }
    return { ok: true, records: count, head: last }
  }

  /**
   * Refuses a key other than the one the log was chained with (a lost or replaced key file): every
   * record would then look changed, and records chained from now on would prove nothing about the
   * old ones. The key's own identity (a hash of it, never the key) is kept in the database.
   */
  #checkKey(db: SqlDatabase): void {
    const id = createHash('sha256').update('cordon audit key\n').update(this.#key).digest('hex').slice(0, 32)
    const stored = db
      .prepare<[], { value: Buffer | string }>(`SELECT value FROM meta WHERE name = 'audit-key-id'`)
      .get()
    if (stored === undefined) {
      db.prepare(`INSERT INTO meta (name, value) VALUES ('audit-key-id', ?)`).run(id)
      return
    }
    if (String(stored.value) !== id) {
      throw new Error(
        "the audit key is not the one this database's audit log was chained with: restore its audit-key file (or start on a fresh data dir)",
      )
    }
  }

  /** The keyed MAC of a tenant's newest link: rewriting the head after removing records shows. */
  #headMac(tenant: string, seq: number, hash: string): string {
    return createHmac('sha256', this.#key).update(`head\n${tenant}\n${seq}\n${hash}`).digest('hex')
  }

  #headOf(tenant: string): string {
    let head = this.#heads.get(tenant)
    if (head === undefined) {
      head = this.#head.get(tenant)?.hash ?? ''
      this.#heads.set(tenant, head)
    }
    return head
  }

  /** The keyed link of one record: HMAC-SHA256 over the previous link and the record's fields. */
  #link(prev: string, row: { readonly [field: string]: unknown } | AuditRow): string {
    const fields = [
      row.tenant,
      row.at,
      row.kind,
      row.agent,
      row.execution,
      row.decision,
      row.code,
      row.rule,
      row.detail,
    ]
    return createHmac('sha256', this.#key)
      .update(`${prev}\n${JSON.stringify(fields)}`)
      .digest('hex')
  }

  /** Chains records written before the log was chained (an older database), in order, once. */
  #chainUnchained(db: SqlDatabase): void {
    const rows = db
      .prepare<[], AuditRow & { tenant: string }>(
        `SELECT seq, tenant, at, kind, agent, execution, decision, code, rule, detail FROM audit
         WHERE hash IS NULL ORDER BY seq`,
      )
      .all()
    if (rows.length === 0) return
    const update = db.prepare('UPDATE audit SET prev = ?, hash = ? WHERE seq = ?')
    db.transaction(() => {
      const touched = new Map<string, { seq: number; hash: string }>()
      for (const row of rows) {
        const prev = this.#headOf(row.tenant)
        const hash = this.#link(prev, row)
        update.run(prev, hash, row.seq)
        this.#heads.set(row.tenant, hash)
        touched.set(row.tenant, { seq: row.seq, hash })
      }
      for (const [tenant, head] of touched) this.#setHead.run(tenant, head.seq, head.hash)
    })()
  }

  /** Commits what is pending and takes nothing more (the store is closing). */
  close(): void {
    this.flush()
    this.#closed = true
  }

  /** Commits every pending record. */
  flush(): void {
    if (this.#closed) return
    this.#scheduled = false
    if (this.#pending.length === 0) return
    const rows = this.#pending
    this.#pending = []
    this.#insertMany(rows)
  }

  append(tenant: string, entry: AuditEntry): void {
    // After the store closed (a call still ending as the service stops), nothing can be stored.
    if (this.#closed) return
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

function broken(records: number, seq: number, reason: string): AuditVerification {
  return { ok: false, records, brokenAt: { seq, reason } }
}
