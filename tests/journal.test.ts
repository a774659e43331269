import { copyFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RecordingServer, startRecordingServer } from './helpers/egress.ts'
import { type Body, startTestServer, type TestServer } from './helpers/server.ts'

// Resuming from the journal, case by case. A crash is taken as a snapshot: while the guests wait on
// requests the counting server holds, the database is copied (SQLite's online backup: exactly what
// a kill -9 at that moment leaves on disk) and a second service is started on the copy, which
// resumes what the first was running. The first one's executions are cancelled before anything is
// answered, so every request after the snapshot comes from the resumed runs.
// (tests/journal-crash.test.ts does the same with a real kill -9 of a child process.)

let first: TestServer
let counter: RecordingServer
const copies: string[] = []

const seen = (path: string) => counter.seen.filter((request) => request.url === path).length

beforeAll(async () => {
  counter = await startRecordingServer({
    handler: (request, res) => {
      // The first request for a /hold/ path is held (until its client goes); any later one is answered.
      if (request.url.startsWith('/hold/') && seen(request.url) === 1) return
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ path: request.url, nth: seen(request.url) }))
    },
  })
  first = await startTestServer({ workers: 5 })
  const rule = { host: '127.0.0.1', schemes: ['http'], ports: [counter.port], methods: ['GET', 'POST'] }
  const profile = await first.request('PUT', '/v1/profiles/journ', {
    body: {
      engines: ['quickjs'],
      languages: ['javascript'],
      limits: { cpuMs: 5000, wallMs: 60_000, memoryMb: 32, outputBytes: 65_536, bindingCalls: 50 },
      network: { allow: [rule], allowPrivateAddresses: true },
      kv: { access: 'read-write', quotaBytes: 4096 },
      tools: ['peek', 'poke'],
    },
  })
  expect(profile.status).toBe(200)
  const held = (name: string) =>
    `export default async ({ base, k }) => (await fetch(base + '/hold/${name}-' + k, { method: 'POST' })).json()`
  const boxed = await first.request('PUT', '/v1/profiles/boxed', {
    body: {
      engines: ['container'],
      languages: ['bash'],
      limits: { cpuMs: 5000, wallMs: 60_000, memoryMb: 64, outputBytes: 65_536, bindingCalls: 50 },
    },
  })
  expect(boxed.status).toBe(200)
  expect((await first.request('PUT', '/v1/agents/boxed', { body: { sandbox: 'boxed' } })).status).toBe(200)
  for (const name of ['journ', 'gone']) {
    const agent = await first.request('PUT', `/v1/agents/${name}`, {
      body: {
        sandbox: 'journ',
        tools: [
          {
            name: 'peek',
            description: 'declared replay-safe: counts its runs in kv, then reads (GET)',
            replay: 'safe',
            language: 'javascript',
            code: `export default async ({ base, k }) => {
              const runs = (await kv.get('peeks-' + k)) ?? 0
              await kv.set('peeks-' + k, runs + 1)
              const r = await (await fetch(base + '/hold/peek-' + k)).json()
              return { r, runs: await kv.get('peeks-' + k) }
            }`,
          },
          { name: 'poke', description: 'not replay-safe', language: 'javascript', code: held('poke') },
        ],
      },
    })
    expect(agent.status).toBe(200)
  }
})

afterAll(async () => {
  await first?.close()
  await counter?.close()
  for (const dir of copies) rmSync(dir, { recursive: true, force: true })
})

/** Starts `code` as `agent` on the first service without waiting for it; answers its id once it runs. */
async function start(code: string, k: string, agent = 'journ'): Promise<string> {
  void first.execute(code, { input: { base: `http://127.0.0.1:${counter.port}`, k } }, agent)
  let id: string | undefined
  await expect
    .poll(async () => {
      const { body } = await first.request('GET', `/v1/executions?status=running&agent=${agent}`)
      const known = new Set(started.values())
      id = body.items
        .map((item: { id: string }) => item.id)
        .find((candidate: string) => !known.has(candidate))
      return id
    })
    .toBeDefined()
  started.set(k, id as string)
  return id as string
}
const started = new Map<string, string>()

/** What kill -9 would leave now: a copy of the first service's data directory, changed by `edit`. */
async function crashCopy(edit: (db: Database.Database) => void = () => {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'cordon-journal-'))
  copies.push(dir)
  const source = new Database(join(first.dataDir, 'cordon.sqlite'), { readonly: true })
  await source.backup(join(dir, 'cordon.sqlite'))
  source.close()
  copyFileSync(join(first.dataDir, 'audit-key'), join(dir, 'audit-key'))
  const db = new Database(join(dir, 'cordon.sqlite'))
  edit(db)
  db.close()
  return dir
}

/** The first service lets go of everything it runs, so that it makes no request after the "crash". */
async function cancelAll(): Promise<void> {
  const { body } = await first.request('GET', '/v1/executions?status=running')
  await Promise.all(
    body.items.map((item: { id: string }) => first.request('POST', `/v1/executions/${item.id}/cancel`)),
  )
}

async function finalRecord(service: TestServer, id: string): Promise<Body> {
  let record: Body
  await expect
    .poll(
      async () => {
        record = (await service.request('GET', `/v1/executions/${id}`)).body
        return record.status
      },
      { timeout: 20_000 },
    )
    .not.toBe('running')
  return record
}

describe('resuming an execution from its journal', () => {
  it('sends a replay-safe GET again, replays the kv write before it, re-runs a replay-safe tool and refuses to re-run an unsafe one', async () => {
    const get = await start(
      `export default async ({ base, k }) => {
        const n = (await kv.get('count')) ?? 0
        await kv.set('count', n + 1)
        const r = await (await fetch(base + '/hold/get-' + k)).json()
        return { r, count: await kv.get('count') }
      }`,
      'a',
    )
    const peek = await start(`export default async (input) => tools.peek(input)`, 'b')
    const poke = await start(
      `export default async (input) => { try { return await tools.poke(input) } catch (e) { return { error: e.code } } }`,
      'c',
    )
    await expect.poll(() => ['/hold/get-a', '/hold/peek-b', '/hold/poke-c'].map(seen)).toEqual([1, 1, 1])
    const dir = await crashCopy()
    await cancelAll()

    const resumed = await startTestServer({ dataDir: dir })
    try {
      expect(resumed.server.interrupted.resumed).toBe(3)
      expect(await finalRecord(resumed, get)).toMatchObject({
        status: 'ok',
        result: { r: { path: '/hold/get-a', nth: 2 }, count: 1 },
      })
      expect(seen('/hold/get-a')).toBe(2)
      // The safe tool ran again, resuming its own journal (its kv write replayed, not made twice);
      // the unsafe one did not, and the guest was told.
      expect(await finalRecord(resumed, peek)).toMatchObject({
        status: 'ok',
        result: { r: { path: '/hold/peek-b', nth: 2 }, runs: 1 },
      })
      expect(seen('/hold/peek-b')).toBe(2)
      expect(await finalRecord(resumed, poke)).toMatchObject({
        status: 'ok',
        result: { error: 'INTERRUPTED' },
      })
      expect(seen('/hold/poke-c')).toBe(1)
      const audit = (await resumed.request('GET', `/v1/audit?execution=${poke}&limit=100`)).body.records
      expect(audit).toContainEqual(
        expect.objectContaining({ kind: 'binding.tools.call', decision: 'error', code: 'INTERRUPTED' }),
      )
    } finally {
      await resumed.close()
    }
  })

  it('refuses every call from the first one that differs from the interrupted run (the code took another path)', async () => {
    const id = await start(
      `export default async ({ base, k }) => {
        const codes = []
        for (const step of [
          () => kv.set('stamp', Date.now() + Math.random()),
          () => fetch(base + '/hold/diverge-' + k, { method: 'POST' }),
          () => kv.get('stamp'),
        ]) {
          try { await step(); codes.push('ok') } catch (e) { codes.push(e.code) }
        }
        return codes
      }`,
      'd',
    )
    await expect.poll(() => seen('/hold/diverge-d')).toBe(1)
    const dir = await crashCopy()
    await cancelAll()
    const resumed = await startTestServer({ dataDir: dir })
    try {
      expect(await finalRecord(resumed, id)).toMatchObject({
        status: 'ok',
        result: ['INTERRUPTED', 'INTERRUPTED', 'INTERRUPTED'],
      })
      expect(seen('/hold/diverge-d')).toBe(1)
    } finally {
      await resumed.close()
    }
  })

  it('gives up, as killed / INTERRUPTED, an execution interrupted three times, one without a request, a container command and one whose agent was stored again', async () => {
    const code = `export default async ({ base, k }) => (await fetch(base + '/hold/x-' + k, { method: 'POST' })).json()`
    const thrice = await start(code, 'e')
    const orphan = await start(code, 'f', 'gone')
    const reborn = await start(code, 'h')
    // The container engine's command reaches out through tunnels no journal sees: it is never resumed.
    void first.request('POST', '/v1/agents/boxed/executions', {
      body: { language: 'bash', code: 'sleep 20' },
    })
    let boxed: string | undefined
    await expect
      .poll(
        async () => {
          boxed = (await first.request('GET', '/v1/executions?status=running&agent=boxed')).body.items[0]?.id
          return boxed
        },
        { timeout: 20_000 },
      )
      .toBeDefined()
    await expect.poll(() => ['/hold/x-e', '/hold/x-f', '/hold/x-h'].map(seen)).toEqual([1, 1, 1])
    const dir = await crashCopy((db) => {
      db.prepare('UPDATE executions SET attempts = 3 WHERE id = ?').run(thrice)
      // A session's command is recorded without a request: nothing to run it again from.
      db.prepare('UPDATE executions SET resume = NULL WHERE id = ?').run(orphan)
      // Deleted and stored again under the same name: another agent, which must not inherit the run.
      db.prepare(`UPDATE agents SET incarnation = 'another' WHERE name = 'journ'`).run()
      expect(db.prepare('SELECT resume FROM executions WHERE id = ?').get(boxed)).toEqual({ resume: null })
    })
    await cancelAll()
    const resumed = await startTestServer({ dataDir: dir })
    try {
      expect(resumed.server.interrupted).toMatchObject({ resumed: 1, abandoned: 3 })
      expect(await finalRecord(resumed, reborn)).toMatchObject({
        status: 'killed',
        error: { code: 'INTERRUPTED', message: expect.stringContaining('deleted and stored again') },
      })
      expect(await finalRecord(resumed, boxed as string)).toMatchObject({
        status: 'killed',
        error: { code: 'INTERRUPTED', message: expect.stringContaining('cannot be resumed') },
      })
      expect(await finalRecord(resumed, thrice)).toMatchObject({
        status: 'killed',
        error: { code: 'INTERRUPTED', message: expect.stringContaining('4 times') },
      })
      expect(await finalRecord(resumed, orphan)).toMatchObject({
        status: 'killed',
        error: { code: 'INTERRUPTED', message: expect.stringContaining('cannot be resumed') },
      })
      expect(seen('/hold/x-e') + seen('/hold/x-f') + seen('/hold/x-h')).toBe(3)
    } finally {
      await resumed.close()
    }
  })

  it('ends as killed / INTERRUPTED an execution whose agent was deleted before it could be resumed', async () => {
    const id = await start(
      `export default async ({ base, k }) => (await fetch(base + '/hold/y-' + k, { method: 'POST' })).json()`,
      'g',
      'gone',
    )
    await expect.poll(() => seen('/hold/y-g')).toBe(1)
    const dir = await crashCopy((db) => db.prepare(`DELETE FROM agents WHERE name = 'gone'`).run())
    await cancelAll()
    const resumed = await startTestServer({ dataDir: dir })
    try {
      expect(await finalRecord(resumed, id)).toMatchObject({
        status: 'killed',
        error: { code: 'INTERRUPTED', message: expect.stringContaining('no agent named "gone"') },
      })
      expect(seen('/hold/y-g')).toBe(1)
    } finally {
      await resumed.close()
    }
  })

  it('journals nothing for a call that ends after its execution (never awaited): the journal is empty once all have ended', async () => {
    const code = `export default ({ base, k }) => {
      fetch(base + '/hold/late-' + k, { method: 'POST' })
      return 'returned at once'
    }`
    const record = await first.execute(
      code,
      { input: { base: `http://127.0.0.1:${counter.port}`, k: 'i' } },
      'journ',
    )
    expect(record.body).toMatchObject({ status: 'ok', result: 'returned at once' })
    const db = new Database(join(first.dataDir, 'cordon.sqlite'), { readonly: true })
    try {
      const rows = () =>
        (
          db.prepare(`SELECT COUNT(*) AS n FROM journal WHERE execution = ?`).get(record.body.id) as {
            n: number
          }
        ).n
      // The call is cut off when its execution ends (before or after it reached the server); its reply
      // (ABORTED) comes after the journal's drop. Let it come.
      await new Promise((resolve) => setTimeout(resolve, 500))
      expect(rows()).toBe(0)
    } finally {
      db.close()
    }
  })
})
