import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ExecutionRecord } from '@cordon/contracts'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { SqliteStore } from './sqlite-store.ts'

const dirs: string[] = []
const open = () => {
  const dir = mkdtempSync(join(tmpdir(), 'cordon-journal-'))
  dirs.push(dir)
  const file = join(dir, 'cordon.sqlite')
  // A second connection sees only what is committed: what a crash would leave.
  return { store: new SqliteStore(file), disk: () => new Database(file, { readonly: true }) }
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

const running = (id: string): ExecutionRecord => ({
  id,
  agent: 'a',
  engine: 'quickjs',
  language: 'javascript',
  status: 'ok',
  result: null,
  stdout: '',
  stderr: '',
  error: null,
  usage: { cpuMs: 0, wallMs: 0, memoryBytes: 0 },
  createdAt: '2026-01-01T00:00:00.000Z',
  finishedAt: null,
})
const scope = (execution: string) => ({ tenant: 't', root: execution.split('.')[0] as string, execution })
const entry = (seq: number) => ({ seq, call: 'kv.set', fingerprint: `f${seq}` })
const count = (db: Database.Database, sql: string) => (db.prepare(sql).get() as { n: number }).n

describe('SqliteJournal', () => {
  it('commits a local write and its entry together, or neither', () => {
    const { store, disk } = open()
    store.journal.atomically(scope('ex1'), entry(0), () => {
      store.kv.set('t', 'a', 'k', '1', 1000)
      return { value: null, reply: '{"ok":true,"value":null}' }
    })
    expect(() =>
      store.journal.atomically(scope('ex1'), entry(1), () => {
        store.kv.set('t', 'a', 'k2', '2', 1000)
        throw new Error('the handler failed after writing')
      }),
    ).toThrow('the handler failed')
    const db = disk()
    expect(count(db, `SELECT COUNT(*) AS n FROM kv`)).toBe(1)
    expect(db.prepare('SELECT seq, reply FROM journal').all()).toEqual([
      { seq: 0, reply: '{"ok":true,"value":null}' },
    ])
    db.close()
    store.close()
  })

  it('commits an intent, with the running record (and its request) queued before it, before it returns', () => {
    const { store, disk } = open()
    store.beginExecution('t', running('ex2'), '{"kind":"code"}')
    store.journal.intend(scope('ex2'), { seq: 0, call: 'fetch.request', fingerprint: 'f' })
    // Nothing has let the event loop turn: what is on disk now is what a kill -9 now would leave.
    const db = disk()
    expect(db.prepare('SELECT status, resume FROM executions').all()).toEqual([
      { status: 'running', resume: '{"kind":"code"}' },
    ])
    expect(db.prepare('SELECT seq, reply FROM journal').all()).toEqual([{ seq: 0, reply: null }])
    db.close()
    store.close()
  })

  it("drops a client's execution's entries with its tools' and nobody else's; sweeps what no running execution owns", async () => {
    const { store, disk } = open()
    store.beginExecution('t', running('ex3'), '{}')
    store.beginExecution('t', running('ex4'), '{}')
    for (const execution of ['ex3', 'ex3.0', 'ex3.0.1', 'ex30', 'ex3-x', 'ex4', 'ex4.2', 'gone', 'gone.1']) {
      store.journal.record(scope(execution), { ...entry(0), reply: '{}' })
    }
    store.journal.drop('t', 'ex3')
    await store.finishExecution('t', { ...running('ex3'), finishedAt: '2026-01-01T00:00:01.000Z' })
    const remaining = () => {
      const db = disk()
      const rows = (
        db.prepare('SELECT execution FROM journal ORDER BY execution').all() as { execution: string }[]
      ).map((row) => row.execution)
      db.close()
      return rows
    }
    expect(remaining()).toEqual(['ex3-x', 'ex30', 'ex4', 'ex4.2', 'gone', 'gone.1'])
    // ex4 still runs; the others have no running execution of theirs.
    expect(store.journal.sweep()).toBe(4)
    expect(remaining()).toEqual(['ex4', 'ex4.2'])
    store.close()
  })
})
