import type { SqlDatabase, SqlStatement } from './sql.ts'

/** What this backend uses of a Durable Object's storage (`ctx.storage`): its SQL API and sync transactions. */
export interface DurableObjectStorageLike {
  sql: {
    exec(query: string, ...bindings: unknown[]): SqlCursor
  }
  transactionSync<T>(fn: () => T): T
}

interface SqlCursor extends Iterable<Record<string, unknown>> {
  toArray(): Record<string, unknown>[]
}

/** Where the schema version is kept (a Durable Object allows no `PRAGMA user_version`). */
const VERSION_TABLE = '_cordon_schema'

/**
 * The Cloudflare backend of `SqlDatabase`: a Durable Object's SQLite storage. Differences it hides:
 * - no named parameters: `@name` in a statement becomes `?`, bound from the object in order (so a
 *   statement must not hold `@` in a string literal);
 * - `changes` is SQLite's own count (`changes()`), not the cursor's rows written (index entries too);
 * - BLOBs travel as `ArrayBuffer`: bytes going in are copied into one, and come back as `Buffer`;
 * - a transaction is `transactionSync` (one inside another is a savepoint of it, as on Node; only
 *   `inTransaction` cannot tell that a failing statement rolled the whole transaction back);
 * - the schema version is a row of its own; every commit is durable once the object answers (its
 *   output gate), so `durably` needs nothing more.
 */
export class DurableObjectSqlDatabase implements SqlDatabase {
  readonly #storage: DurableObjectStorageLike
  #depth = 0

  constructor(storage: DurableObjectStorageLike) {
    this.#storage = storage
    storage.sql.exec(`CREATE TABLE IF NOT EXISTS ${VERSION_TABLE} (version INTEGER NOT NULL)`)
  }

  // biome-ignore lint/complexity/noBannedTypes: see `SqlDatabase.prepare`
  prepare<Params extends unknown[] | {} = unknown[], Row = unknown>(sql: string): SqlStatement<Params, Row> {
    const names: string[] = []
    const query = sql.replace(/@([A-Za-z_][A-Za-z0-9_]*)/g, (_, name: string) => {
      names.push(name)
      return '?'
    })
    const exec = (params: unknown[]): SqlCursor => {
      const bindings =
        names.length > 0 ? names.map((name) => (params[0] as Record<string, unknown>)[name]) : params
      return this.#storage.sql.exec(query, ...bindings.map(toSql))
    }
    return {
      run: (...params) => {
        exec(params).toArray()
        // Rows the statement changed, as SQLite counts them (`rowsWritten` counts index entries too).
        const [counted] = this.#storage.sql.exec('SELECT changes() AS changes').toArray()
        return { changes: Number(counted?.changes ?? 0) }
      },
      // Read to the end: a statement with effects (INSERT ... RETURNING) runs whole, whatever is read.
      get: (...params) => {
        const [row] = exec(params).toArray()
        return row === undefined ? undefined : (fromSql(row) as Row)
      },
      all: (...params) => exec(params).toArray().map(fromSql) as Row[],
      iterate: (...params) => {
        const rows = exec(params)[Symbol.iterator]()
        const iterator: IterableIterator<Row> = {
          next: () => {
            const step = rows.next()
            return step.done === true
              ? { done: true, value: undefined }
              : { done: false, value: fromSql(step.value) as Row }
          },
          [Symbol.iterator]: () => iterator,
        }
        return iterator
      },
    } as SqlStatement<Params, Row>
  }

  transaction<Args extends unknown[], T>(fn: (...args: Args) => T): (...args: Args) => T {
    return (...args) => {
      this.#depth++
      try {
        return this.#storage.transactionSync(() => fn(...args))
      } finally {
        this.#depth--
      }
    }
  }

  exec(sql: string): void {
    this.#storage.sql.exec(sql)
  }

  get inTransaction(): boolean {
    return this.#depth > 0
  }

  schemaVersion(): number {
    const rows = this.#storage.sql.exec(`SELECT version FROM ${VERSION_TABLE}`).toArray()
    return Number(rows[0]?.version ?? 0)
  }

  setSchemaVersion(version: number): void {
    this.#storage.sql.exec(`DELETE FROM ${VERSION_TABLE}`)
    this.#storage.sql.exec(`INSERT INTO ${VERSION_TABLE} (version) VALUES (?)`, Math.trunc(version))
  }

  durably<T>(fn: () => T): T {
    return fn()
  }

  close(): void {}
}

/** A value as the Durable Object's SQL API takes it. */
function toSql(value: unknown): unknown {
  if (value instanceof Uint8Array) {
    return value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength)
  }
  if (typeof value === 'boolean') return value ? 1 : 0
  return value === undefined ? null : value
}

/** A row as the stores read it: BLOBs as `Buffer`s, as better-sqlite3 gives them. */
function fromSql(row: Record<string, unknown>): Record<string, unknown> {
  for (const [key, value] of Object.entries(row)) {
    if (value instanceof ArrayBuffer) row[key] = Buffer.from(value)
  }
  return row
}
