import { rmSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deployQuickAgent, startTestHarness } from './helpers/harness.ts'
import { type Body, startTestServer, TEST_TOKEN, type TestServer } from './helpers/server.ts'

// The audit log is a keyed hash chain per tenant: editing or removing a stored record (in the SQLite
// file itself, with the service stopped) is reported by GET /v1/audit/verify at the right record.

let t: TestServer

/** Runs a few executions so that the tenant's log holds records to tamper with. */
async function someRecords(count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const { status } = await t.execute(`export default ${i}`)
    expect(status).toBe(200)
  }
}

const verify = async (): Promise<Body> => (await t.request('GET', '/v1/audit/verify')).body

/** The default tenant's records as stored, oldest first. */
async function records(): Promise<{ seq: number }[]> {
  const { body } = await t.request('GET', '/v1/audit?limit=1000')
  return body.records
}

/** Changes the database file while the service is stopped, then starts it again. */
async function tamper(sql: string, ...params: unknown[]): Promise<void> {
  await t.server.close()
  const db = new Database(join(t.dataDir, 'cordon.sqlite'))
  db.prepare(sql).run(...params)
  db.close()
  await t.restart()
}

beforeAll(async () => {
  t = await startTestServer()
  await someRecords(6)
})
afterAll(() => t.close())

describe('the audit hash chain', () => {
  it('verifies an untouched log and names its newest link', async () => {
    const stored = await records()
    expect(stored.length).toBeGreaterThanOrEqual(6)
    const answer = await verify()
    expect(answer).toEqual({
      ok: true,
      records: stored.length,
      head: { seq: stored.at(-1)?.seq, hash: expect.stringMatching(/^[0-9a-f]{64}$/) },
    })
    // Each record carries its link and the one before it.
    const { body } = await t.request('GET', '/v1/audit?limit=2')
    expect(body.records[0].prev).toBe('')
    expect(body.records[1].prev).toBe(body.records[0].hash)
  })

  it('exports every record as JSON Lines, oldest first', async () => {
    const response = await fetch(`${t.server.url}/v1/audit/export`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    })
    expect(response.headers.get('content-type')).toContain('application/x-ndjson')
    const lines = (await response.text())
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line))
    const stored = await records()
    expect(lines.map((line) => line.seq)).toEqual(stored.map((record) => record.seq))
    expect(lines.every((line) => /^[0-9a-f]{64}$/.test(line.hash))).toBe(true)
  })

  it('reports a record changed in the file, at that record', async () => {
    const target = (await records())[2] as { seq: number }
    await tamper(`UPDATE audit SET code = 'FORGED' WHERE seq = ?`, target.seq)
    expect(await verify()).toMatchObject({
      ok: false,
      brokenAt: { seq: target.seq, reason: 'this record was changed' },
    })
    await tamper(`UPDATE audit SET code = 'OK' WHERE seq = ?`, target.seq)
    expect(await verify()).toMatchObject({ ok: true })
  })

  it('reports a record changed together with its stored link (the key is not in the database)', async () => {
    const target = (await records())[1] as { seq: number; hash?: string }
    await tamper(`UPDATE audit SET detail = '{}', hash = ? WHERE seq = ?`, 'f'.repeat(64), target.seq)
    expect(await verify()).toMatchObject({ ok: false, brokenAt: { seq: target.seq } })
  })

  it('reports a record removed from the middle at the record after it, and one removed from the end', async () => {
    // A fresh service for a clean chain.
    await t.close()
    t = await startTestServer()
    await someRecords(5)
    const stored = await records()
    const middle = stored[2] as { seq: number }
    const next = stored[3] as { seq: number }
    await tamper('DELETE FROM audit WHERE seq = ?', middle.seq)
    expect(await verify()).toMatchObject({
      ok: false,
      brokenAt: { seq: next.seq, reason: 'the record before this one was removed or changed' },
    })

    await t.close()
    t = await startTestServer()
    await someRecords(3)
    const all = await records()
    const last = all.at(-1) as { seq: number }
    await tamper('DELETE FROM audit WHERE seq = ?', last.seq)
    expect(await verify()).toMatchObject({
      ok: false,
      brokenAt: { reason: 'records after this point were removed' },
    })
  })

  it('reports records removed from the end even when the stored head is rewritten to match', async () => {
    await t.close()
    t = await startTestServer()
    await someRecords(4)
    const all = await records()
    const keep = all.at(-3) as { seq: number; hash: string }
    await t.server.close()
    const db = new Database(join(t.dataDir, 'cordon.sqlite'))
    db.prepare('DELETE FROM audit WHERE seq > ?').run(keep.seq)
    // The attacker points the head at the new last record (the head's own key is not in the file).
    db.prepare('UPDATE audit_heads SET seq = ?, hash = ?').run(keep.seq, keep.hash)
    db.close()
    await t.restart()
    expect(await verify()).toMatchObject({
      ok: false,
      brokenAt: { reason: 'records after this point were removed' },
    })
  })
})

describe('the audit key', () => {
  it('refuses to start on a log chained with another key (a lost or replaced audit-key file)', async () => {
    await t.close()
    t = await startTestServer()
    await someRecords(1)
    await t.server.close()
    rmSync(join(t.dataDir, 'audit-key'))
    await expect(t.restart()).rejects.toThrow(/audit key is not the one/)
    // The test server is stopped; start a fresh one for whatever runs after.
    t = await startTestServer()
  })
})

describe('audit chains per tenant', () => {
  it('keeps one chain per tenant: each starts afresh and verifies alone, and neither sees the other', async () => {
    const test = await startTestHarness()
    try {
      const { harness } = test
      for (const tenant of ['acme', 'umbrella']) {
        deployQuickAgent(harness, tenant)
        for (let i = 0; i < 3; i++) {
          await harness.execute(tenant, 'a', {
            language: 'javascript',
            code: `export default ${i}`,
            input: null,
          })
        }
      }
      const acme = harness.audit('acme', { limit: 1000 })
      const umbrella = harness.audit('umbrella', { limit: 1000 })
      expect(acme.length).toBeGreaterThanOrEqual(3)
      const umbrellaSeqs = new Set(umbrella.map((r) => r.seq))
      expect(acme.filter((r) => umbrellaSeqs.has(r.seq))).toEqual([])
      expect(harness.verifyAudit('acme')).toMatchObject({ ok: true, records: acme.length })
      expect(harness.verifyAudit('umbrella')).toMatchObject({ ok: true, records: umbrella.length })
      // Each chain starts afresh: the other tenant's records are no part of it.
      expect(acme[0]?.prev).toBe('')
      expect(umbrella[0]?.prev).toBe('')
      expect(harness.verifyAudit('nobody')).toEqual({ ok: true, records: 0, head: null })
    } finally {
      await test.close()
    }
  })
})
