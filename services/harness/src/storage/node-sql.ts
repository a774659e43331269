import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import type { SqlDatabase, SqlStatement } from './sql.ts'

/**
 * The Node backend of `SqlDatabase`: one SQLite file through better-sqlite3, in WAL mode with
 * synchronous=NORMAL (a commit reaches the operating system, and the disk at the next checkpoint),
 * foreign keys on, and a busy timeout for the checkpointer thread's connection.
 */
export class NodeSqlDatabase implements SqlDatabase {
  readonly raw: Database.Database

  constructor(file: string) {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true })
    this.raw = new Database(file)
    this.raw.pragma('journal_mode = WAL')
    this.raw.pragma('synchronous = NORMAL')
    this.raw.pragma('foreign_keys = ON')
    this.raw.pragma('busy_timeout = 5000')
  }

  // biome-ignore lint/complexity/noBannedTypes: see `SqlDatabase.prepare`
  prepare<Params extends unknown[] | {} = unknown[], Row = unknown>(sql: string): SqlStatement<Params, Row> {
    return this.raw.prepare<Params, Row>(sql) as unknown as SqlStatement<Params, Row>
  }

  transaction<Args extends unknown[], T>(fn: (...args: Args) => T): (...args: Args) => T {
    return this.raw.transaction(fn)
  }

  exec(sql: string): void {
    this.raw.exec(sql)
  }

  get inTransaction(): boolean {
    return this.raw.inTransaction
  }

  schemaVersion(): number {
    return this.raw.pragma('user_version', { simple: true }) as number
  }

  setSchemaVersion(version: number): void {
    this.raw.pragma(`user_version = ${Math.trunc(version)}`)
  }

  durably<T>(fn: () => T): T {
    this.raw.pragma('synchronous = FULL')
    try {
      return fn()
    } finally {
      this.raw.pragma('synchronous = NORMAL')
    }
  }

  close(): void {
    this.raw.close()
  }
}
