// `@cordon/harness/node`: what only the Node service uses: the store on a SQLite file (better-sqlite3,
// a checkpointer thread) and the built-in profiles read from `sandbox-profiles/`.
export { loadBuiltinProfiles } from './builtins-node.ts'
export { SqliteStore } from './storage/sqlite-store.ts'
