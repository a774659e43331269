/**
 * The one small storage interface both backends implement: better-sqlite3 on Node
 * (`node-sql.ts`), Durable Object SQLite on Cloudflare. Every store is written against it, with one
 * schema and the same statements (`@name` and `?` parameters; a backend without named parameters
 * rewrites them). Everything is synchronous: a transaction never spans an `await`, on either backend.
 */
export interface SqlDatabase {
  /**
   * Prepares a statement (once; run it many times). `Params` is a tuple of positional parameters,
   * or one object of named ones.
   */
  // biome-ignore lint/complexity/noBannedTypes: `{}` is how named parameters are typed (as better-sqlite3 does)
  prepare<Params extends unknown[] | {} = unknown[], Row = unknown>(sql: string): SqlStatement<Params, Row>
  /**
   * Wraps `fn` in a transaction: committed when it returns, rolled back when it throws. Called inside
   * another transaction, it is a savepoint of that one.
   */
  transaction<Args extends unknown[], T>(fn: (...args: Args) => T): (...args: Args) => T
  /** Runs statements that take no parameters (a migration). */
  exec(sql: string): void
  /** Whether a transaction is open (a failing statement may have rolled it back). */
  readonly inTransaction: boolean
  /** The schema version the database holds (0 when new). */
  schemaVersion(): number
  setSchemaVersion(version: number): void
  /**
   * Runs `fn` so that what it commits is on disk when it returns, even where commits otherwise only
   * reach the operating system (Node: WAL with synchronous=NORMAL).
   */
  durably<T>(fn: () => T): T
  close(): void
}

/** A prepared statement. */
// biome-ignore lint/complexity/noBannedTypes: see `SqlDatabase.prepare`
export interface SqlStatement<Params extends unknown[] | {} = unknown[], Row = unknown> {
  run(...params: ParamsOf<Params>): { changes: number }
  get(...params: ParamsOf<Params>): Row | undefined
  all(...params: ParamsOf<Params>): Row[]
  iterate(...params: ParamsOf<Params>): IterableIterator<Row>
}

// biome-ignore lint/complexity/noBannedTypes: see `SqlDatabase.prepare`
type ParamsOf<Params extends unknown[] | {}> = Params extends unknown[] ? Params : [Params]
