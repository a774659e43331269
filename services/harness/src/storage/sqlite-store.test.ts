import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ExecutionRecord } from '@cordon/contracts'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { SqliteStore } from './sqlite-store.ts'

const dirs: string[] = []
const open = () => {
  const dir = mkdtempSync(join(tmpdir(), 'cordon-store-'))
  dirs.push(dir)
  return { store: new SqliteStore(join(dir, 'cordon.sqlite')), file: join(dir, 'cordon.sqlite') }
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

const record = (id: string, status: ExecutionRecord['status'] = 'ok'): ExecutionRecord => ({
  id,
  agent: 'a',
  engine: 'quickjs',
  language: 'javascript',
  status,
  result: id,
  stdout: '',
  stderr: '',
  error: null,
  usage: { cpuMs: 1, wallMs: 1, memoryBytes: 1 },
  createdAt: '2026-01-01T00:00:00.000Z',
  finishedAt: '2026-01-01T00:00:01.000Z',
})

describe('SqliteStore group commit', () => {
  it('commits writes of one turn together and reads see them at once', async () => {
    const { store } = open()
    store.beginExecution('t', record('ex1'))
    // A read before the commit flushes first: it never misses a write issued before it.
    expect(store.getExecution('t', 'ex1')?.status).toBe('running')
    await store.finishExecution('t', record('ex1'))
    expect(store.getExecution('t', 'ex1')).toMatchObject({ status: 'ok', result: 'ex1' })
    store.close()
  })

  it('a failing write rolls back alone: its neighbours in the batch still commit', async () => {
    const { store } = open()
    store.beginExecution('t', record('dup'))
    store.beginExecution('t', record('dup')) // primary key conflict in the same batch
    const neighbour = store.finishExecution('t', record('ex2'))
    await expect(neighbour).resolves.toBeUndefined()
    expect(store.getExecution('t', 'ex2')?.status).toBe('ok')
    expect(store.getExecution('t', 'dup')?.status).toBe('running')
    store.close()
  })

  it('commits a running record within milliseconds even when no other write comes', async () => {
    const { store, file } = open()
    store.beginExecution('t', record('ex6'))
    await new Promise((resolve) => setTimeout(resolve, 50))
    // Another connection sees it without this store flushing for it: it is on disk.
    const other = new Database(file, { readonly: true })
    expect(other.prepare('SELECT status FROM executions WHERE id = ?').get('ex6')).toEqual({
      status: 'running',
    })
    other.close()
    store.close()
  })

  it('writes a final record that comes before its running record is committed once, as final', async () => {
    const { store, file } = open()
    // Log every row inserted (an upsert that updates does not fire an insert trigger).
    const spy = new Database(file)
    spy.exec(`CREATE TABLE inserted (what TEXT);
      CREATE TRIGGER log_insert AFTER INSERT ON executions BEGIN INSERT INTO inserted VALUES (new.id || ':' || new.status); END;`)
    store.beginExecution('t', record('ex7'))
    await store.finishExecution('t', record('ex7'))
    expect(store.getExecution('t', 'ex7')).toMatchObject({ status: 'ok', result: 'ex7' })
    expect(spy.prepare('SELECT what FROM inserted').pluck().all()).toEqual(['ex7:ok'])
    spy.close()
    store.close()
  })

  it('copies the log into the database file from its own thread, without this thread checkpointing', async () => {
    const { store, file } = open()
    const before = statSync(file).size
    // Far below this connection's own checkpoint threshold: only the checkpointer thread moves pages.
    for (let i = 0; i < 200; i++) await store.finishExecution('t', record(`ex-w${i}`))
    const deadline = Date.now() + 5000
    while (statSync(file).size === before && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    expect(statSync(file).size).toBeGreaterThan(before)
    store.close()
  })

  it('scopes every read by tenant', async () => {
    const { store } = open()
    await store.finishExecution('tenant-a', record('ex3'))
    expect(store.getExecution('tenant-b', 'ex3')).toBeNull()
    store.close()
  })

  it('flushes pending writes on close, so they survive a reopen', () => {
    const { store, file } = open()
    void store.finishExecution('t', record('ex4'))
    store.close()
    const reopened = new SqliteStore(file)
    expect(reopened.getExecution('t', 'ex4')?.status).toBe('ok')
    expect(reopened.interruptedExecutions()).toEqual([])
    reopened.close()
  })

  it('lists executions left running by a previous process, with their requests, and can end them as killed/INTERRUPTED', async () => {
    const { store, file } = open()
    store.beginExecution('t', record('ex5'), '{"kind":"code"}')
    store.close()
    const reopened = new SqliteStore(file)
    expect(reopened.interruptedExecutions()).toMatchObject([
      { tenant: 't', record: { id: 'ex5' }, resume: '{"kind":"code"}', attempts: 0 },
    ])
    reopened.countResumeAttempt('t', 'ex5')
    expect(reopened.interruptedExecutions()[0]?.attempts).toBe(1)
    await reopened.abandonExecution('t', 'ex5', 'the service restarted')
    expect(reopened.interruptedExecutions()).toEqual([])
    expect(reopened.getExecution('t', 'ex5')).toMatchObject({
      status: 'killed',
      error: { code: 'INTERRUPTED' },
    })
    reopened.close()
  })

  it('forgets idempotency keys after 24 hours: a retry that late runs as a new request', () => {
    const { store, file } = open()
    expect(store.claimIdempotencyKey('t', 'old', 'f', 'ex-old')).toBeNull()
    store.close()
    const db = new Database(file)
    const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600 * 1000).toISOString()
    db.prepare('UPDATE idempotency SET created_at = ?').run(twoDaysAgo)
    db.close()
    const reopened = new SqliteStore(file)
    // The first claim after a start sweeps: the old key is gone, and a claim of it is new again.
    expect(reopened.claimIdempotencyKey('t', 'fresh', 'g', 'ex-fresh')).toBeNull()
    expect(reopened.claimIdempotencyKey('t', 'old', 'f', 'ex-new')).toBeNull()
    expect(reopened.claimIdempotencyKey('t', 'fresh', 'g', 'ex-other')).toEqual({
      fingerprint: 'g',
      execution: 'ex-fresh',
    })
    reopened.close()
  })

  it('takes nothing after close: a late audit record is dropped, a late write is refused, neither throws later', async () => {
    const { store } = open()
    store.close()
    expect(() =>
      store.audit.append('t', {
        kind: 'late',
        agent: null,
        execution: null,
        decision: 'info',
        code: 'X',
        rule: null,
        detail: {},
      }),
    ).not.toThrow()
    await expect(store.finishExecution('t', record('late'))).rejects.toThrow('the store is closed')
    // The turn ends with nothing scheduled against the closed database.
    await new Promise((resolve) => setImmediate(resolve))
  })
})
