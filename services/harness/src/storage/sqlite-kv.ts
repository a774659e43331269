import type { SqlDatabase } from './sql.ts'
import type { KvStore } from './store.ts'

/** Agents' key-value namespaces in the `kv` table; `size` is the UTF-8 bytes of key and value. */
export class SqliteKv implements KvStore {
  readonly #get
  readonly #upsert
  readonly #delete
  readonly #list
  readonly #usage
  readonly #drop
  readonly #set: (
    tenant: string,
    agent: string,
    key: string,
    value: string,
    quotaBytes: number,
  ) => { ok: true } | { ok: false; usedBytes: number }

  constructor(db: SqlDatabase) {
    this.#get = db.prepare<[string, string, string], { value: string }>(
      'SELECT value FROM kv WHERE tenant = ? AND agent = ? AND key = ?',
    )
    this.#upsert = db.prepare(
      `INSERT INTO kv (tenant, agent, key, value, size) VALUES (@tenant, @agent, @key, @value, @size)
       ON CONFLICT (tenant, agent, key) DO UPDATE SET value = excluded.value, size = excluded.size`,
    )
    this.#delete = db.prepare('DELETE FROM kv WHERE tenant = ? AND agent = ? AND key = ?')
    this.#drop = db.prepare('DELETE FROM kv WHERE tenant = ? AND agent = ?')
    // Keys compare as BLOBs: byte order, and a prefix range that LIKE's wildcards cannot widen.
    this.#list = db.prepare<[string, string, Buffer, Buffer, Buffer, number], { key: string }>(
      `SELECT key FROM kv WHERE tenant = ? AND agent = ? AND CAST(key AS BLOB) >= ? AND CAST(key AS BLOB) < ?
         AND CAST(key AS BLOB) > ?
       ORDER BY CAST(key AS BLOB) LIMIT ?`,
    )
    this.#usage = db.prepare<[string, string], { used: number }>(
      'SELECT COALESCE(SUM(size), 0) AS used FROM kv WHERE tenant = ? AND agent = ?',
    )
    const sizeOf = db.prepare<[string, string, string], { size: number }>(
      'SELECT size FROM kv WHERE tenant = ? AND agent = ? AND key = ?',
    )
    // Check and write in one transaction: two writers can never both fit in the last bytes.
    this.#set = db.transaction((tenant: string, agent: string, key: string, value: string, quota: number) => {
      const size = Buffer.byteLength(key) + Buffer.byteLength(value)
      const used = this.#usage.get(tenant, agent)?.used ?? 0
      const previous = sizeOf.get(tenant, agent, key)?.size ?? 0
      if (used - previous + size > quota) return { ok: false as const, usedBytes: used }
      this.#upsert.run({ tenant, agent, key, value, size })
      return { ok: true as const }
    })
  }

  get(tenant: string, agent: string, key: string): string | null {
    return this.#get.get(tenant, agent, key)?.value ?? null
  }

  set(tenant: string, agent: string, key: string, value: string, quotaBytes: number) {
    return this.#set(tenant, agent, key, value, quotaBytes)
  }

  delete(tenant: string, agent: string, key: string): boolean {
    return this.#delete.run(tenant, agent, key).changes > 0
  }

  list(tenant: string, agent: string, prefix: string, limit: number, after = ''): string[] {
    const low = Buffer.from(prefix, 'utf8')
    // Every key with the prefix sorts below the prefix followed by 0xff (no UTF-8 byte is 0xff).
    const high = Buffer.concat([low, Buffer.from([0xff])])
    return this.#list.all(tenant, agent, low, high, Buffer.from(after, 'utf8'), limit).map((row) => row.key)
  }

  drop(tenant: string, agent: string): number {
    return this.#drop.run(tenant, agent).changes
  }

  usage(tenant: string, agent: string): number {
    return this.#usage.get(tenant, agent)?.used ?? 0
  }
}
