import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ChildServer } from '../bench/child-server.ts'
import { serviceApi, spawnService } from './helpers/child-service.ts'
import { type RecordingServer, startRecordingServer } from './helpers/egress.ts'
import { workerChildren } from './helpers/processes.ts'
import type { Body } from './helpers/server.ts'

// The journal's crash test: the real service as a child process, executions whose guests make
// journaled calls against a local server that counts what it receives, `kill -9` while they are in
// the middle of it, a restart on the same data directory. Every execution completes, and no request
// that is not replay-safe reaches the counting server twice.

const TOKEN = 'journal-crash-admin-token-0123456789'
const EXECUTIONS = 3

let dataDir: string
let counter: RecordingServer
let child: ChildServer | null = null
/** Requests held open by the counting server: answered only once the service is gone. */
const held: { end(): void }[] = []

function startService(): Promise<string> {
  child = spawnService({
    dataDir,
    token: TOKEN,
    env: {
      CORDON_WORKERS: String(EXECUTIONS),
      CORDON_ENGINES: 'quickjs',
    },
  })
  return child.ready
}

const call = serviceApi(TOKEN)

/** Whether a process runs (a zombie waiting for init to reap it has ended). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch {
    return false
  }
}

/** Times the counting server saw a request for `path`. */
const seen = (path: string) => counter.seen.filter((request) => request.url === path).length

async function until(condition: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

// The guest: a charge (POST) and a tool that notifies (POST) complete before the crash, a counter in
// kv is read and written, then a POST is in flight when the service dies; after the restart it
// reads (GET) once more and returns what it saw.
const GUEST = `
export default async ({ base, k }) => {
  const post = async (path) => (await fetch(base + path, { method: 'POST', body: k })).json()
  const charged = await post('/charge/' + k)
  const before = (await kv.get('n:' + k)) ?? 0
  await kv.set('n:' + k, before + 1)
  const notified = await tools.notify({ base, k })
  let held
  try {
    held = await post('/hold/' + k)
  } catch (e) {
    held = { error: e.code }
  }
  const after = await (await fetch(base + '/after/' + k)).json()
  return { charged, counter: await kv.get('n:' + k), notified, held, after }
}
`

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'cordon-crash-'))
  counter = await startRecordingServer({
    handler: (request, res) => {
      if (request.url.startsWith('/hold/')) {
        held.push({ end: () => res.destroy() })
        return
      }
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ path: request.url, nth: seen(request.url) }))
    },
  })
}, 60_000)

afterAll(async () => {
  child?.killNow()
  for (const request of held) request.end()
  await counter?.close()
  rmSync(dataDir, { recursive: true, force: true })
})

describe('the execution journal across kill -9', () => {
  it('resumes every running execution: completed calls answer from the journal, the one in flight is INTERRUPTED, none is sent twice', async () => {
    let base = await startService()
    const port = counter.port
    const network = {
      allow: [{ host: '127.0.0.1', schemes: ['http'], ports: [port], methods: ['GET', 'POST'] }],
      allowPrivateAddresses: true,
    }
    const profile = await call(base, 'PUT', '/v1/profiles/crashy', {
      engines: ['quickjs'],
      languages: ['javascript'],
      limits: { cpuMs: 5000, wallMs: 120_000, memoryMb: 32, outputBytes: 65_536, bindingCalls: 50 },
      network,
      kv: { access: 'read-write', quotaBytes: 4096 },
      tools: ['notify'],
    })
    expect(profile.status).toBe(200)
    const agent = await call(base, 'PUT', '/v1/agents/crashy', {
      sandbox: 'crashy',
      tools: [
        {
          name: 'notify',
          description: 'tells the counting server (not replay-safe: a POST)',
          input: { type: 'object', required: ['base', 'k'] },
          language: 'javascript',
          code: `export default async ({ base, k }) => (await fetch(base + '/notify/' + k, { method: 'POST' })).json()`,
        },
      ],
    })
    expect(agent.status).toBe(200)

    const keys = Array.from({ length: EXECUTIONS }, (_, i) => `k${i}`)
    const request = (k: string) => ({
      language: 'javascript',
      code: GUEST,
      input: { base: `http://127.0.0.1:${port}`, k },
    })
    // Started with idempotency keys; their answers never come (the service dies under them).
    const first = keys.map((k) =>
      call(base, 'POST', '/v1/agents/crashy/executions', request(k), {
        'idempotency-key': `crash-${k}`,
      }).catch((error: unknown) => error),
    )
    await until(() => keys.every((k) => seen(`/hold/${k}`) === 1), 'every guest to be in its held POST')
    const running = await call(base, 'GET', '/v1/executions?status=running')
    const ids = running.body.items.map((execution: { id: string }) => execution.id)
    expect(ids).toHaveLength(EXECUTIONS)

    // kill -9: no shutdown of any kind. Its workers go with it.
    const server = child as ChildServer
    const workers = workerChildren(server.pid)
    expect(workers.length).toBeGreaterThan(0)
    server.killNow()
    for (const answer of await Promise.all(first)) expect(answer).toBeInstanceOf(Error)
    await until(() => workers.every((pid) => !alive(pid)), 'the old workers to exit', 15_000)
    for (const request of held) request.end()

    // The data directory says they were running when the service died.
    const db = new Database(join(dataDir, 'cordon.sqlite'), { readonly: true })
    const rows = db.prepare(`SELECT id FROM executions WHERE status = 'running'`).all() as { id: string }[]
    expect(rows.map((row) => row.id).sort()).toEqual([...ids].sort())
    const journaled = db.prepare('SELECT COUNT(*) AS n FROM journal').get() as { n: number }
    expect(journaled.n).toBeGreaterThan(0)
    db.close()

    base = await startService()
    // The same requests, retried with their keys: each answers its one execution, resumed.
    const answers = await Promise.all(
      keys.map((k) =>
        call(base, 'POST', '/v1/agents/crashy/executions', request(k), { 'idempotency-key': `crash-${k}` }),
      ),
    )
    for (const [index, k] of keys.entries()) {
      const { status, body } = answers[index] as { status: number; body: Body }
      expect(status).toBe(200)
      expect(ids).toContain(body.id)
      expect(body).toMatchObject({
        status: 'ok',
        result: {
          // Journaled replies: what the first run got, not a second charge or notice.
          charged: { path: `/charge/${k}`, nth: 1 },
          notified: { path: `/notify/${k}`, nth: 1 },
          // The kv write was replayed from the journal, not made again.
          counter: 1,
          // In flight at the crash and not replay-safe: the guest is told, and it was not sent again.
          held: { error: 'INTERRUPTED' },
          after: { path: `/after/${k}`, nth: 1 },
        },
      })
    }
    for (const k of keys) {
      expect(seen(`/charge/${k}`)).toBe(1)
      expect(seen(`/notify/${k}`)).toBe(1)
      expect(seen(`/hold/${k}`)).toBe(1)
      expect(seen(`/after/${k}`)).toBe(1)
    }
    // Nothing is left running, nothing left in the journal; the audit log says what happened.
    expect((await call(base, 'GET', '/v1/executions?status=running')).body.items).toEqual([])
    const audit = await call(base, 'GET', `/v1/audit?execution=${ids[0]}&limit=200`)
    const kinds = audit.body.records.map(
      (record: { kind: string; code: string }) => `${record.kind}:${record.code}`,
    )
    expect(kinds).toContain('execution.resume:RESUMED')
    expect(kinds).toContain('binding.fetch.request:REPLAYED')
    expect(kinds).toContain('binding.kv.set:REPLAYED')
    expect(kinds).toContain('binding.tools.call:REPLAYED')
    expect(kinds).toContain('binding.fetch.request:INTERRUPTED')
    await (child as ChildServer).stop()
    const after = new Database(join(dataDir, 'cordon.sqlite'), { readonly: true })
    expect((after.prepare('SELECT COUNT(*) AS n FROM journal').get() as { n: number }).n).toBe(0)
    after.close()
  }, 120_000)
})
