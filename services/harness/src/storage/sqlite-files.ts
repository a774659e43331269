import {
  FILE_MAX_BYTES,
  FILE_NAME_MAX_BYTES,
  FILE_ROOT,
  type FileEntry,
  type FileInfo,
  type FileResult,
  type FileStore,
  SPACE_MAX_ENTRIES,
  type SpaceUsage,
} from './file-store.ts'
import type { SqlDatabase } from './sql.ts'

interface Row {
  path: string
  kind: 'file' | 'dir'
  size: number
  mtime: string
}

/** The root is no row: it exists in every space, empty or not. */
const ROOT_INFO: FileInfo = Object.freeze({ type: 'directory', size: 0, mtime: new Date(0).toISOString() })

/**
 * The virtual filesystems in the `files` table: one row per file (`kind = 'file'`, content in `data`)
 * or directory (`kind = 'dir'`). Paths are TEXT compared with the BINARY collation, which is memcmp
 * over UTF-8: the entries below a directory `D` are exactly the byte range [`D/`, `D0`) (`0` follows
 * `/`), a range that no character of a name (`%`, `_`, `*`) can widen, unlike a LIKE pattern.
 * `file_spaces` keeps each space's bytes and entries, changed in the same transaction as the rows,
 * so that a quota check costs one lookup however full the space is.
 */
export class SqliteFiles implements FileStore {
  readonly #get
  readonly #getData
  readonly #range
  readonly #rangeUsage
  readonly #usage
  readonly #count
  readonly #dropUsage
  readonly #insertDir
  readonly #putFile
  readonly #deleteOne
  readonly #deleteRange
  readonly #drop
  readonly #dropScratch
  readonly #write
  readonly #remove

  readonly maxFileBytes: number

  constructor(db: SqlDatabase, maxFileBytes = FILE_MAX_BYTES) {
    this.maxFileBytes = Math.min(maxFileBytes, FILE_MAX_BYTES)
    const where = 'tenant = ? AND space = ?'
    this.#get = db.prepare<[string, string, string], Row>(
      `SELECT path, kind, size, mtime FROM files WHERE ${where} AND path = ?`,
    )
    this.#getData = db.prepare<[string, string, string], Row & { data: Buffer | null }>(
      `SELECT path, kind, size, mtime, data FROM files WHERE ${where} AND path = ?`,
    )
    this.#range = db.prepare<[string, string, string, string], Row>(
      `SELECT path, kind, size, mtime FROM files WHERE ${where} AND path >= ? AND path < ? ORDER BY path`,
    )
    this.#rangeUsage = db.prepare<[string, string, string, string], { bytes: number; entries: number }>(
      `SELECT COALESCE(SUM(size), 0) AS bytes, COUNT(*) AS entries FROM files
       WHERE ${where} AND path >= ? AND path < ?`,
    )
    this.#usage = db.prepare<[string, string], SpaceUsage>(
      `SELECT bytes, entries FROM file_spaces WHERE ${where}`,
    )
    this.#count = db.prepare<[string, string, number, number]>(
      `INSERT INTO file_spaces (tenant, space, bytes, entries) VALUES (?, ?, ?, ?)
       ON CONFLICT (tenant, space) DO UPDATE SET bytes = bytes + excluded.bytes,
         entries = entries + excluded.entries`,
    )
    this.#dropUsage = db.prepare<[string, string]>(`DELETE FROM file_spaces WHERE ${where}`)
    this.#insertDir = db.prepare<[string, string, string, string]>(
      `INSERT INTO files (tenant, space, path, kind, size, mtime, data) VALUES (?, ?, ?, 'dir', 0, ?, NULL)`,
    )
    this.#putFile = db.prepare<[string, string, string, number, string, Buffer]>(
      `INSERT INTO files (tenant, space, path, kind, size, mtime, data) VALUES (?, ?, ?, 'file', ?, ?, ?)
       ON CONFLICT (tenant, space, path) DO UPDATE SET size = excluded.size, mtime = excluded.mtime,
         data = excluded.data WHERE files.kind = 'file'`,
    )
    this.#deleteOne = db.prepare<[string, string, string]>(`DELETE FROM files WHERE ${where} AND path = ?`)
    this.#deleteRange = db.prepare<[string, string, string, string]>(
      `DELETE FROM files WHERE ${where} AND path >= ? AND path < ?`,
    )
    const drop = db.prepare<[string, string]>(`DELETE FROM files WHERE ${where}`)
    this.#drop = db.transaction((tenant: string, space: string) => {
      this.#dropUsage.run(tenant, space)
      return drop.run(tenant, space).changes
    })
    // Spaces from "exec:" up to "exec;" (the byte after ":"): every scratch space and nothing else.
    const scratch = "space >= 'exec:' AND space < 'exec;'"
    const dropScratchFiles = db.prepare(`DELETE FROM files WHERE ${scratch}`)
    const dropScratchUsage = db.prepare(`DELETE FROM file_spaces WHERE ${scratch}`)
    const scratchSpaces = db.prepare<[], { tenant: string; space: string }>(
      `SELECT tenant, space FROM files WHERE ${scratch} UNION SELECT tenant, space FROM file_spaces WHERE ${scratch}`,
    )
    this.#dropScratch = db.transaction((keep?: (tenant: string, space: string) => boolean) => {
      if (keep === undefined) {
        dropScratchUsage.run()
        return dropScratchFiles.run().changes
      }
      let removed = 0
      for (const { tenant, space } of scratchSpaces.all()) {
        if (!keep(tenant, space)) removed += this.#drop(tenant, space)
      }
      return removed
    })
    this.#write = db.transaction(this.#writeNow.bind(this))
    this.#remove = db.transaction(this.#removeNow.bind(this))
  }

  read(tenant: string, space: string, path: string): FileResult<{ data: Uint8Array; info: FileInfo }> {
    checkPath(path)
    if (path === FILE_ROOT) return { ok: false, code: 'IS_DIRECTORY' }
    const row = this.#getData.get(tenant, space, path)
    if (row === undefined) return { ok: false, code: 'NOT_FOUND' }
    if (row.kind === 'dir') return { ok: false, code: 'IS_DIRECTORY' }
    return { ok: true, data: row.data ?? new Uint8Array(0), info: info(row) }
  }

  stat(tenant: string, space: string, path: string): FileInfo | null {
    checkPath(path)
    if (path === FILE_ROOT) return { ...ROOT_INFO }
    const row = this.#get.get(tenant, space, path)
    return row === undefined ? null : info(row)
  }

  list(tenant: string, space: string, path: string): FileResult<{ entries: FileEntry[] }> {
    checkPath(path)
    if (path !== FILE_ROOT) {
      const row = this.#get.get(tenant, space, path)
      if (row === undefined) return { ok: false, code: 'NOT_FOUND' }
      if (row.kind !== 'dir') return { ok: false, code: 'NOT_DIRECTORY' }
    }
    const prefix = `${path}/`
    const entries: FileEntry[] = []
    for (const row of this.#range.iterate(tenant, space, prefix, below(path))) {
      const name = row.path.slice(prefix.length)
      if (row.path.startsWith(prefix) && !name.includes('/')) entries.push({ name, ...info(row) })
    }
    return { ok: true, entries }
  }

  write(tenant: string, space: string, path: string, data: Uint8Array, quotaBytes: number) {
    checkPath(path)
    if (data.byteLength > this.maxFileBytes) return { ok: false as const, code: 'FILE_TOO_LARGE' as const }
    return this.#write(tenant, space, path, data, quotaBytes)
  }

  // Check and write in one transaction: a refused write changes nothing.
  #writeNow(
    tenant: string,
    space: string,
    path: string,
    data: Uint8Array,
    quotaBytes: number,
  ): FileResult<{ created: boolean; usage: SpaceUsage }> {
    if (path === FILE_ROOT) return { ok: false, code: 'IS_DIRECTORY' }
    const names = path.slice(FILE_ROOT.length + 1).split('/')
    const missing: string[] = []
    let dir = FILE_ROOT
    for (const name of names.slice(0, -1)) {
      dir = `${dir}/${name}`
      const row = this.#get.get(tenant, space, dir)
      if (row === undefined) missing.push(dir)
      else if (row.kind !== 'dir') return { ok: false, code: 'NOT_DIRECTORY' }
    }
    const target = this.#get.get(tenant, space, path)
    if (target?.kind === 'dir') return { ok: false, code: 'IS_DIRECTORY' }
    const created = target === undefined
    const newNames = [...missing, ...(created ? [path] : [])].map((p) => p.slice(p.lastIndexOf('/') + 1))
    if (newNames.some((name) => Buffer.byteLength(name) > FILE_NAME_MAX_BYTES)) {
      return { ok: false, code: 'NAME_TOO_LONG' }
    }
    const used = this.usage(tenant, space)
    const usage = {
      bytes: used.bytes - (target?.size ?? 0) + data.byteLength,
      entries: used.entries + newNames.length,
    }
    if (usage.bytes > quotaBytes) return { ok: false, code: 'QUOTA_EXCEEDED', reason: 'BYTES', usage: used }
    if (usage.entries > SPACE_MAX_ENTRIES) {
      return { ok: false, code: 'QUOTA_EXCEEDED', reason: 'ENTRIES', usage: used }
    }
    const mtime = new Date().toISOString()
    for (const missingDir of missing) this.#insertDir.run(tenant, space, missingDir, mtime)
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    this.#putFile.run(tenant, space, path, data.byteLength, mtime, bytes)
    this.#count.run(tenant, space, usage.bytes - used.bytes, usage.entries - used.entries)
    return { ok: true, created, usage }
  }

  remove(
    tenant: string,
    space: string,
    path: string,
    options: { recursive: boolean; allow?: (path: string) => boolean },
  ) {
    checkPath(path)
    if (path === FILE_ROOT) return { ok: false as const, code: 'ROOT' as const }
    return this.#remove(tenant, space, path, options)
  }

  #removeNow(
    tenant: string,
    space: string,
    path: string,
    options: { recursive: boolean; allow?: (path: string) => boolean },
  ): FileResult<{ removed: number; bytes: number }> {
    const row = this.#get.get(tenant, space, path)
    if (row === undefined) return { ok: false, code: 'NOT_FOUND' }
    if (row.kind === 'file') {
      this.#deleteOne.run(tenant, space, path)
      this.#count.run(tenant, space, -row.size, -1)
      return { ok: true, removed: 1, bytes: row.size }
    }
    const low = `${path}/`
    const high = below(path)
    const inside = this.#rangeUsage.get(tenant, space, low, high) ?? { bytes: 0, entries: 0 }
    if (inside.entries > 0 && !options.recursive) return { ok: false, code: 'NOT_EMPTY' }
    if (options.allow !== undefined) {
      for (const entry of this.#range.iterate(tenant, space, low, high)) {
        if (!options.allow(entry.path)) return { ok: false, code: 'DENIED', path: entry.path }
      }
    }
    this.#deleteRange.run(tenant, space, low, high)
    this.#deleteOne.run(tenant, space, path)
    this.#count.run(tenant, space, -inside.bytes, -(inside.entries + 1))
    return { ok: true, removed: inside.entries + 1, bytes: inside.bytes }
  }

  usage(tenant: string, space: string): SpaceUsage {
    return this.#usage.get(tenant, space) ?? { bytes: 0, entries: 0 }
  }

  dropSpace(tenant: string, space: string): number {
    return this.#drop(tenant, space)
  }

  dropScratchSpaces(keep?: (tenant: string, space: string) => boolean): number {
    return this.#dropScratch(keep)
  }
}

/** The upper bound of the entries below `dir`: `dir` followed by the byte after `/`. */
function below(dir: string): string {
  return `${dir}0`
}

function info(row: Row): FileInfo {
  return { type: row.kind === 'dir' ? 'directory' : 'file', size: row.size, mtime: row.mtime }
}

/**
 * Paths come from the policy's check; anything else here is a bug in the caller, not a guest input
 * to answer. Refuses what normalisation would have removed, so that no unchecked path is stored.
 */
function checkPath(path: string): void {
  const ok =
    typeof path === 'string' &&
    path.isWellFormed() &&
    (path === FILE_ROOT ||
      (path.startsWith(`${FILE_ROOT}/`) &&
        path
          .slice(FILE_ROOT.length + 1)
          .split('/')
          .every((name) => name !== '' && name !== '.' && name !== '..' && !name.includes('\u0000'))))
  if (!ok) throw new Error('file store: the path is not a normalised path under the root')
}
