// `@cordon/harness/store`: the store without its Node backend, for runtimes without better-sqlite3
// (a Durable Object on Cloudflare): `SqlStore` on a Durable Object's SQLite storage.
export { DurableObjectSqlDatabase, type DurableObjectStorageLike } from './durable-object-sql.ts'
export type { SqlDatabase, SqlStatement } from './sql.ts'
export { SqlStore } from './sql-store.ts'
export type { Store } from './store.ts'
