import type { SqlDatabase } from './sql.ts'
import type { SecretInfo, SecretStore } from './store.ts'

/** Tenants' secrets in the `secrets` table. Values are read only by the egress binding. */
export class SqliteSecrets implements SecretStore {
  readonly #upsert
  readonly #info
  readonly #value
  readonly #list
  readonly #delete

  constructor(db: SqlDatabase) {
    this.#upsert = db.prepare(
      `INSERT INTO secrets (tenant, name, value, created_at, updated_at) VALUES (@tenant, @name, @value, @now, @now)
       ON CONFLICT (tenant, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    )
    this.#info = db.prepare<[string, string], { name: string; created_at: string; updated_at: string }>(
      'SELECT name, created_at, updated_at FROM secrets WHERE tenant = ? AND name = ?',
    )
    this.#value = db.prepare<[string, string], { value: string }>(
      'SELECT value FROM secrets WHERE tenant = ? AND name = ?',
    )
    this.#list = db.prepare<[string], { name: string; created_at: string; updated_at: string }>(
      'SELECT name, created_at, updated_at FROM secrets WHERE tenant = ? ORDER BY name',
    )
    this.#delete = db.prepare('DELETE FROM secrets WHERE tenant = ? AND name = ?')
  }

  put(tenant: string, name: string, value: string): SecretInfo {
    this.#upsert.run({ tenant, name, value, now: new Date().toISOString() })
    return info(this.#info.get(tenant, name))
  }

  value(tenant: string, name: string): string | null {
    return this.#value.get(tenant, name)?.value ?? null
  }

  list(tenant: string): SecretInfo[] {
    return this.#list.all(tenant).map(info)
  }

  delete(tenant: string, name: string): boolean {
    return this.#delete.run(tenant, name).changes > 0
  }
}

function info(row: { name: string; created_at: string; updated_at: string } | undefined): SecretInfo {
  if (row === undefined) throw new Error('secret row vanished')
  return { name: row.name, createdAt: row.created_at, updatedAt: row.updated_at }
}
