export { loadBuiltinProfiles } from './builtins.ts'
export { type ExecuteRequest, Harness, type HarnessOptions, type ProfileView } from './harness.ts'
export { SqliteStore } from './storage/sqlite-store.ts'
export type { Store, StoredDocument } from './storage/store.ts'
