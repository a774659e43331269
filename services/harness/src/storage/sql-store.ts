import { randomBytes } from 'node:crypto'
import { type ExecutionRecord, GuestErrorCode, type RunOutcome } from '@cordon/contracts'
import type { SqlDatabase } from './sql.ts'
import { SqliteAudit } from './sqlite-audit.ts'
import { SqliteFiles } from './sqlite-files.ts'
import { SqliteJournal } from './sqlite-journal.ts'
import { SqliteKv } from './sqlite-kv.ts'
import { SqliteRuns } from './sqlite-runs.ts'
import { SqliteSecrets } from './sqlite-secrets.ts'
import type { InterruptedExecution, Store, StoredDocument } from './store.ts'

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE profiles (
     tenant TEXT NOT NULL, name TEXT NOT NULL, document TEXT NOT NULL, source TEXT NOT NULL,
     format TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
     PRIMARY KEY (tenant, name)) WITHOUT ROWID;
   CREATE TABLE agents (
     tenant TEXT NOT NULL, name TEXT NOT NULL, document TEXT NOT NULL, source TEXT NOT NULL,
     format TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
     PRIMARY KEY (tenant, name)) WITHOUT ROWID;
   CREATE TABLE executions (
     id TEXT PRIMARY KEY, tenant TEXT NOT NULL, agent TEXT NOT NULL, engine TEXT NOT NULL,
     language TEXT NOT NULL, status TEXT NOT NULL, outcome TEXT, created_at TEXT NOT NULL,
     finished_at TEXT);
   CREATE INDEX executions_by_agent ON executions (tenant, agent, created_at);`,
  `CREATE TABLE kv (
     tenant TEXT NOT NULL, agent TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
     size INTEGER NOT NULL, PRIMARY KEY (tenant, agent, key)) WITHOUT ROWID;
   CREATE TABLE files (
     tenant TEXT NOT NULL, space TEXT NOT NULL, path TEXT NOT NULL,
     kind TEXT NOT NULL CHECK (kind IN ('file', 'dir')), size INTEGER NOT NULL, mtime TEXT NOT NULL,
     data BLOB, PRIMARY KEY (tenant, space, path)) WITHOUT ROWID;
   CREATE TABLE file_spaces (
     tenant TEXT NOT NULL, space TEXT NOT NULL, bytes INTEGER NOT NULL, entries INTEGER NOT NULL,
     PRIMARY KEY (tenant, space)) WITHOUT ROWID;
   CREATE TABLE audit (
     seq INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, at TEXT NOT NULL, kind TEXT NOT NULL,
     agent TEXT, execution TEXT, decision TEXT NOT NULL, code TEXT NOT NULL, rule TEXT,
     detail TEXT NOT NULL);
   CREATE INDEX audit_by_tenant ON audit (tenant, seq);
   CREATE TABLE secrets (
     tenant TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL, PRIMARY KEY (tenant, name)) WITHOUT ROWID;`,
  // Each agent row gets an incarnation: a re-created agent is a new one, with keys and files of its own.
  `ALTER TABLE agents ADD COLUMN incarnation TEXT NOT NULL DEFAULT '';
   UPDATE agents SET incarnation = lower(hex(randomblob(8)));`,
  // The audit log becomes a keyed hash chain per tenant (records written before are chained when the
  // store opens); each tenant's newest link is kept apart, so removing records from the end shows.
  `ALTER TABLE audit ADD COLUMN prev TEXT;
   ALTER TABLE audit ADD COLUMN hash TEXT;
   CREATE TABLE audit_heads (tenant TEXT PRIMARY KEY, seq INTEGER NOT NULL, hash TEXT NOT NULL) WITHOUT ROWID;
   CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
   INSERT INTO meta (name, value) VALUES ('audit-key', randomblob(32));`,
  // Idempotency keys of execution requests: the first request's fingerprint and execution.
  `CREATE TABLE idempotency (
     tenant TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, execution TEXT NOT NULL,
     created_at TEXT NOT NULL, PRIMARY KEY (tenant, key)) WITHOUT ROWID;`,
  // Each tenant's newest link is keyed too, so that it cannot be rewritten after records are removed.
  `ALTER TABLE audit_heads ADD COLUMN mac TEXT;`,
  // The execution journal: what resuming a running execution needs, and the binding calls it made.
  `ALTER TABLE executions ADD COLUMN resume TEXT;
   ALTER TABLE executions ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
   CREATE INDEX executions_running ON executions (created_at) WHERE status = 'running';
   -- One B-tree (a tool's execution, <root>.<seq>, sorts right after its root's): each entry is a
   -- single page write, committed with the kv or fs write it journals.
   CREATE TABLE journal (
     tenant TEXT NOT NULL, execution TEXT NOT NULL, seq INTEGER NOT NULL,
     call TEXT NOT NULL, fingerprint TEXT NOT NULL, reply TEXT,
     PRIMARY KEY (tenant, execution, seq)) WITHOUT ROWID;`,
  // Idempotency keys expire: found by age.
  `CREATE INDEX idempotency_by_age ON idempotency (created_at);`,
  // Agent runs: the record (JSON, without steps) and the step journal, one row per completed step.
  `CREATE TABLE runs (
     id TEXT PRIMARY KEY, tenant TEXT NOT NULL, agent TEXT NOT NULL, conversation TEXT NOT NULL,
     status TEXT NOT NULL, record TEXT NOT NULL, resume TEXT, attempts INTEGER NOT NULL DEFAULT 0,
     created_at TEXT NOT NULL, finished_at TEXT);
   CREATE INDEX runs_by_conversation ON runs (tenant, conversation, created_at);
   CREATE INDEX runs_running ON runs (created_at) WHERE status = 'running';
   CREATE TABLE run_steps (
     tenant TEXT NOT NULL, run TEXT NOT NULL, seq INTEGER NOT NULL, step TEXT NOT NULL,
     messages TEXT NOT NULL, PRIMARY KEY (tenant, run, seq)) WITHOUT ROWID;`,
]

/** The schema version from which the audit log is a hash chain. */
const CHAINED_AUDIT_VERSION = 4
/** The schema version from which audit heads carry their own keyed MAC. */
const KEYED_HEADS_VERSION = 6

/** How long an idempotency key holds: a retry later than this runs as a new request. */
export const IDEMPOTENCY_KEY_TTL_MS = 24 * 60 * 60 * 1000
/** How often expired idempotency keys are removed (on a claim, at most this often). */
const KEY_SWEEP_MS = 60_000

/** How long a running record may wait for other writes to share its commit. */
const BEGIN_COMMIT_MS = 2

/** A queued write; `key` is the execution's tenant and id (journal writes have none). */
interface PendingWrite {
  kind: 'begin' | 'finish' | 'journal'
  key: string
  run: () => void
}

const skip = () => {}

interface DocumentRow {
  name: string
  document: string
  source: string
  format: StoredDocument['format']
  created_at: string
  updated_at: string
}

interface ExecutionRow {
  id: string
  agent: string
  engine: ExecutionRecord['engine']
  language: ExecutionRecord['language']
  status: string
  outcome: string | null
  created_at: string
  finished_at: string | null
}

interface InterruptedRow extends ExecutionRow {
  tenant: string
  resume: string | null
  attempts: number
}

/**
 * The store on SQL (`SqlDatabase`): the same schema and statements on both backends (Node's SQLite
 * file, `SqliteStore`; a Durable Object's SQLite on Cloudflare).
 * Statements are prepared once; the schema is versioned (`schemaVersion`). Execution writes are
 * group-committed: final records at the end of the event-loop turn that issued them, running records
 * within 2 ms or with the next final record, whichever comes first (measured: two single-statement
 * commits per execution cost about 75 µs of CPU; grouped, a fraction of that). Every read flushes
 * pending writes first, so a reader never misses a write that was issued before it.
 */
export class SqlStore implements Store {
  readonly #db: SqlDatabase
  readonly #sql
  #pending: PendingWrite[] = []
  #waiters: { resolve: () => void; reject: (error: unknown) => void }[] = []
  #flushScheduled = false
  #beginTimer: NodeJS.Timeout | null = null
  #keysSweptAt = 0
  #closed = false
  readonly #commitBatch: (statements: (() => void)[], failures: Map<number, unknown>) => void
  readonly kv: SqliteKv
  readonly files: SqliteFiles
  readonly audit: SqliteAudit
  readonly secrets: SqliteSecrets
  readonly journal: SqliteJournal
  readonly runs: SqliteRuns

  /**
   * `auditKey` keys the audit log's hash chain (the service keeps it in a file of its own, beside the
   * database, so that whoever can write the database alone cannot forge a valid chain); without one,
   * a key stored in the database is used.
   */
  constructor(db: SqlDatabase, options: { auditKey?: Buffer; maxFileBytes?: number } = {}) {
    this.#db = db
    let audit: SqliteAudit
    try {
      const versionBefore = this.#migrate()
      audit = new SqliteAudit(
        db,
        {
          chainExisting: versionBefore < CHAINED_AUDIT_VERSION,
          keyExistingHeads: versionBefore < KEYED_HEADS_VERSION,
        },
        options.auditKey ??
          (db.prepare(`SELECT value FROM meta WHERE name = 'audit-key'`).get() as { value: Buffer }).value,
      )
    } catch (error) {
      // A schema this build does not know, or an audit key the log was not chained with: nothing opens.
      db.close()
      throw error
    }
    this.audit = audit
    this.kv = new SqliteKv(db)
    this.files = new SqliteFiles(db, options.maxFileBytes)
    this.secrets = new SqliteSecrets(db)
    this.journal = new SqliteJournal(db, {
      queue: (run) => {
        this.#write({ kind: 'journal', key: '', run }).catch(() => {})
      },
      flush: () => this.#flush(),
    })
    this.runs = new SqliteRuns(db, () => this.#flush())
    // One transaction per batch. Every write is a single statement, and SQLite undoes a failing
    // statement alone (a constraint, say) without touching its neighbours; an error that rolls back
    // the whole transaction (a full disk) fails the whole batch.
    this.#commitBatch = db.transaction((statements: (() => void)[], failures: Map<number, unknown>) => {
      statements.forEach((statement, index) => {
        try {
          statement()
        } catch (error) {
          if (!db.inTransaction) throw error
          failures.set(index, error)
        }
      })
    })
    const docs = (table: 'profiles' | 'agents') => ({
      upsert: db.prepare(
        `INSERT INTO ${table} (tenant, name, document, source, format, created_at, updated_at)
         VALUES (@tenant, @name, @document, @source, @format, @now, @now)
         ON CONFLICT (tenant, name) DO UPDATE SET document = excluded.document, source = excluded.source,
           format = excluded.format, updated_at = excluded.updated_at`,
      ),
      get: db.prepare<[string, string], DocumentRow>(
        `SELECT name, document, source, format, created_at, updated_at FROM ${table} WHERE tenant = ? AND name = ?`,
      ),
      list: db.prepare<[string], DocumentRow>(
        `SELECT name, document, source, format, created_at, updated_at FROM ${table} WHERE tenant = ? ORDER BY name`,
      ),
      remove: db.prepare<[string, string]>(`DELETE FROM ${table} WHERE tenant = ? AND name = ?`),
    })
    this.#sql = {
      profiles: docs('profiles'),
      agents: docs('agents'),
      newIncarnation: db.prepare<[string, string, string]>(
        `UPDATE agents SET incarnation = ? WHERE tenant = ? AND name = ? AND incarnation = ''`,
      ),
      incarnation: db.prepare<[string, string], { incarnation: string }>(
        'SELECT incarnation FROM agents WHERE tenant = ? AND name = ?',
      ),
      beginExecution: db.prepare(
        `INSERT INTO executions (id, tenant, agent, engine, language, status, created_at, resume)
         VALUES (@id, @tenant, @agent, @engine, @language, 'running', @createdAt, @resume)
         ON CONFLICT (id) DO NOTHING`,
      ),
      finishExecution: db.prepare(
        `INSERT INTO executions (id, tenant, agent, engine, language, status, outcome, created_at, finished_at)
         VALUES (@id, @tenant, @agent, @engine, @language, @status, @outcome, @createdAt, @finishedAt)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, outcome = excluded.outcome,
           finished_at = excluded.finished_at, resume = NULL WHERE executions.tenant = excluded.tenant`,
      ),
      getExecution: db.prepare<[string, string], ExecutionRow>(
        `SELECT id, agent, engine, language, status, outcome, created_at, finished_at
         FROM executions WHERE tenant = ? AND id = ?`,
      ),
      claimKey: db.prepare(
        `INSERT INTO idempotency (tenant, key, fingerprint, execution, created_at)
         VALUES (@tenant, @key, @fingerprint, @execution, @now) ON CONFLICT (tenant, key) DO NOTHING`,
      ),
      releaseKey: db.prepare('DELETE FROM idempotency WHERE tenant = ? AND key = ? AND execution = ?'),
      expireKeys: db.prepare<[string]>('DELETE FROM idempotency WHERE created_at < ?'),
      getKey: db.prepare<[string, string], { fingerprint: string; execution: string }>(
        'SELECT fingerprint, execution FROM idempotency WHERE tenant = ? AND key = ?',
      ),
      reclaimKey: db.prepare(
        'UPDATE idempotency SET execution = @to, created_at = @now WHERE tenant = @tenant AND key = @key AND execution = @from',
      ),
      interrupted: db.prepare<[], InterruptedRow>(
        `SELECT id, tenant, agent, engine, language, status, outcome, created_at, finished_at, resume, attempts
         FROM executions WHERE status = 'running' ORDER BY created_at`,
      ),
      countAttempt: db.prepare('UPDATE executions SET attempts = attempts + 1 WHERE tenant = ? AND id = ?'),
    }
  }

  /** Brings the schema up to date; answers the version it found. */
  #migrate(): number {
    const version = this.#db.schemaVersion()
    if (version > MIGRATIONS.length) {
      throw new Error(`database schema version ${version} is newer than this build understands`)
    }
    for (let v = version; v < MIGRATIONS.length; v++) {
      this.#db.transaction(() => {
        this.#db.exec(MIGRATIONS[v] ?? '')
        this.#db.setSchemaVersion(v + 1)
      })()
    }
    return version
  }

  putProfile(tenant: string, doc: Omit<StoredDocument, 'createdAt' | 'updatedAt'>): StoredDocument {
    return this.#put('profiles', tenant, doc)
  }

  getProfile(tenant: string, name: string): StoredDocument | null {
    return fromRow(this.#sql.profiles.get.get(tenant, name))
  }

  listProfiles(tenant: string): StoredDocument[] {
    return this.#sql.profiles.list.all(tenant).map((row) => fromRow(row) as StoredDocument)
  }

  putAgent(tenant: string, doc: Omit<StoredDocument, 'createdAt' | 'updatedAt'>): StoredDocument {
    const stored = this.#put('agents', tenant, doc)
    // A new row (first stored, or stored again after a delete) starts a new incarnation.
    this.#sql.newIncarnation.run(randomBytes(8).toString('hex'), tenant, doc.name)
    return stored
  }

  agentIncarnation(tenant: string, name: string): string | null {
    return this.#sql.incarnation.get(tenant, name)?.incarnation ?? null
  }

  getAgent(tenant: string, name: string): StoredDocument | null {
    return fromRow(this.#sql.agents.get.get(tenant, name))
  }

  listAgents(tenant: string): StoredDocument[] {
    return this.#sql.agents.list.all(tenant).map((row) => fromRow(row) as StoredDocument)
  }

  deleteAgent(tenant: string, name: string): boolean {
    return this.#sql.agents.remove.run(tenant, name).changes > 0
  }

  #put(
    table: 'profiles' | 'agents',
    tenant: string,
    doc: Omit<StoredDocument, 'createdAt' | 'updatedAt'>,
  ): StoredDocument {
    const statements = this.#sql[table]
    statements.upsert.run({ tenant, ...doc, now: new Date().toISOString() })
    return fromRow(statements.get.get(tenant, doc.name)) as StoredDocument
  }

  beginExecution(tenant: string, record: ExecutionRecord, resume?: string): void {
    const { id, agent, engine, language, createdAt } = record
    // A failed begin is not fatal: it rolls back alone, and finishExecution writes the whole row.
    // A resumed execution's row is there already and stays as it is.
    const key = `${tenant}\u0000${id}`
    const row = { tenant, id, agent, engine, language, createdAt, resume: resume ?? null }
    const run = () => this.#sql.beginExecution.run(row)
    this.#write({ kind: 'begin', key, run }).catch(() => {})
  }

  finishExecution(tenant: string, record: ExecutionRecord): Promise<void> {
    const {
      id,
      agent,
      engine,
      language,
      createdAt,
      finishedAt,
      result,
      stdout,
      stderr,
      error,
      usage,
      status,
      exitCode,
      files,
    } = record
    const outcome = JSON.stringify({ status, result, stdout, stderr, error, usage, exitCode, files })
    const row = { tenant, id, agent, engine, language, status, outcome, createdAt, finishedAt }
    return this.#write({
      kind: 'finish',
      key: `${tenant}\u0000${id}`,
      run: () => this.#sql.finishExecution.run(row),
    })
  }

  /**
   * Queues a write for the next group commit; resolves when its transaction has committed. A final
   * record is committed at the end of the current turn of the event loop. A running record waits up
   * to BEGIN_COMMIT_MS for company: under load it rides along with other executions' final records,
   * and when its own final record comes first it is not written at all (the final row says it all).
   */
  #write(write: PendingWrite): Promise<void> {
    // After close (a late continuation as the service stops), nothing can be committed any more.
    if (this.#closed) return Promise.reject(new Error('the store is closed'))
    this.#pending.push(write)
    const committed = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }))
    if (write.kind !== 'begin') {
      if (!this.#flushScheduled) {
        this.#flushScheduled = true
        setImmediate(() => this.#flush())
      }
    } else if (this.#beginTimer === null && !this.#flushScheduled) {
      this.#beginTimer = setTimeout(() => this.#flush(), BEGIN_COMMIT_MS)
    }
    return committed
  }

  #flush(): void {
    if (this.#closed) return
    this.#flushScheduled = false
    if (this.#beginTimer !== null) clearTimeout(this.#beginTimer)
    this.#beginTimer = null
    if (this.#pending.length === 0) return
    const writes = this.#pending
    const waiters = this.#waiters
    this.#pending = []
    this.#waiters = []
    const finished = new Set(writes.filter((w) => w.kind === 'finish').map((w) => w.key))
    const statements = writes.map((w) => (w.kind === 'begin' && finished.has(w.key) ? skip : w.run))
    const failures = new Map<number, unknown>()
    try {
      this.#commitBatch(statements, failures)
    } catch (error) {
      for (const waiter of waiters) waiter.reject(error)
      return
    }
    waiters.forEach((waiter, index) => {
      if (failures.has(index)) waiter.reject(failures.get(index))
      else waiter.resolve()
    })
  }

  getExecution(tenant: string, id: string): ExecutionRecord | null {
    this.#flush()
    const row = this.#sql.getExecution.get(tenant, id)
    return row === undefined ? null : recordOf(row)
  }

  interruptedExecutions(): InterruptedExecution[] {
    this.#flush()
    return this.#sql.interrupted.all().map((row) => ({
      tenant: row.tenant,
      record: recordOf(row),
      resume: row.resume,
      attempts: row.attempts,
    }))
  }

  countResumeAttempt(tenant: string, id: string): void {
    this.#flush()
    this.#sql.countAttempt.run(tenant, id)
  }

  abandonExecution(
    tenant: string,
    id: string,
    reason: string,
    code: GuestErrorCode = GuestErrorCode.INTERRUPTED,
  ): Promise<void> {
    this.#flush()
    const row = this.#sql.getExecution.get(tenant, id)
    if (row === undefined) return Promise.resolve()
    this.journal.drop(tenant, id)
    return this.finishExecution(tenant, {
      ...recordOf(row),
      status: 'killed',
      error: { code, message: reason },
      finishedAt: new Date().toISOString(),
    })
  }

  claimIdempotencyKey(
    tenant: string,
    key: string,
    fingerprint: string,
    execution: string,
  ): { fingerprint: string; execution: string } | null {
    const now = Date.now()
    if (now - this.#keysSweptAt >= KEY_SWEEP_MS) {
      this.#keysSweptAt = now
      this.#sql.expireKeys.run(new Date(now - IDEMPOTENCY_KEY_TTL_MS).toISOString())
    }
    const claimed = this.#sql.claimKey.run({
      tenant,
      key,
      fingerprint,
      execution,
      now: new Date().toISOString(),
    })
    if (claimed.changes === 1) return null
    return this.#sql.getKey.get(tenant, key) ?? null
  }

  releaseIdempotencyKey(tenant: string, key: string, execution: string): void {
    this.#sql.releaseKey.run(tenant, key, execution)
  }

  reclaimIdempotencyKey(tenant: string, key: string, from: string, to: string): boolean {
    const now = new Date().toISOString()
    return this.#sql.reclaimKey.run({ tenant, key, from, to, now }).changes === 1
  }

  close(): void {
    this.#flush()
    this.audit.close()
    this.#closed = true
    this.#db.close()
  }
}

function fromRow(row: DocumentRow | undefined): StoredDocument | null {
  if (row === undefined) return null
  return {
    name: row.name,
    document: row.document,
    source: row.source,
    format: row.format,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  }
}

/** An execution row as its record. */
function recordOf(row: ExecutionRow): ExecutionRecord {
  const outcome: Partial<RunOutcome> = row.outcome === null ? {} : (JSON.parse(row.outcome) as RunOutcome)
  return {
    id: row.id,
    agent: row.agent,
    engine: row.engine,
    language: row.language,
    status: row.status as ExecutionRecord['status'],
    result: outcome.result ?? null,
    stdout: outcome.stdout ?? '',
    stderr: outcome.stderr ?? '',
    error: outcome.error ?? null,
    usage: outcome.usage ?? { cpuMs: 0, wallMs: 0, memoryBytes: 0 },
    ...(outcome.exitCode === undefined ? {} : { exitCode: outcome.exitCode }),
    ...(outcome.files === undefined ? {} : { files: outcome.files }),
    createdAt: row.created_at,
    finishedAt: row.finished_at,
  }
}
