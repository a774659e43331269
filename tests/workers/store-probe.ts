// A Worker for tests/durable-object-store.test.ts: one Durable Object that keeps Cordon's store
// (`SqlStore`) in its own SQLite storage, through `DurableObjectSqlDatabase`, and answers a few
// steps that write and read every part of it. Bundled by the test and run in workerd (Miniflare).

import { DurableObjectSqlDatabase, type DurableObjectStorageLike, SqlStore } from '@cordon/harness/store'

interface Env {
  STORE: {
    idFromName(name: string): unknown
    get(id: unknown): { fetch(request: Request): Promise<Response> }
  }
}

const AUDIT_KEY = new Uint8Array(32).fill(7)

export class StoreProbe {
  readonly #store: SqlStore
  readonly #storage: DurableObjectStorageLike

  constructor(ctx: { storage: DurableObjectStorageLike }) {
    this.#storage = ctx.storage
    this.#store = new SqlStore(new DurableObjectSqlDatabase(ctx.storage), {
      auditKey: Buffer.from(AUDIT_KEY),
    })
  }

  async fetch(request: Request): Promise<Response> {
    const step = new URL(request.url).pathname.slice(1)
    const store = this.#store
    if (step === 'write') {
      store.putProfile('acme', { name: 'p', document: '{"name":"p"}', source: 'name: p', format: 'yaml' })
      store.putAgent('acme', { name: 'a', document: '{"name":"a"}', source: '{}', format: 'json' })
      const kv = store.kv.set('acme', 'a#1', 'k', '{"n":1}', 4096)
      const quota = store.kv.set('acme', 'a#1', 'big', JSON.stringify('x'.repeat(5000)), 4096)
      const file = store.files.write(
        'acme',
        'agent:a#1',
        '/workspace/f.txt',
        new TextEncoder().encode('hello'),
        1024,
      )
      for (const code of ['ONE', 'TWO', 'THREE']) {
        store.audit.append('acme', {
          kind: 'test',
          agent: 'a',
          execution: null,
          decision: 'info',
          code,
          rule: null,
          detail: {},
        })
      }
      store.audit.append('umbrella', {
        kind: 'test',
        agent: null,
        execution: null,
        decision: 'info',
        code: 'OTHER',
        rule: null,
        detail: {},
      })
      store.audit.flush()
      const scope = { tenant: 'acme', root: 'ex1', execution: 'ex1' }
      store.beginExecution('acme', record('ex1'), '{"kind":"code"}')
      const value = store.journal.atomically(scope, { seq: 0, call: 'kv.set', fingerprint: 'f0' }, () => {
        store.kv.set('acme', 'a#1', 'j', '2', 4096)
        return { value: 'applied', reply: '{"ok":true,"value":null}' }
      })
      store.journal.intend(scope, { seq: 1, call: 'fetch.request', fingerprint: 'f1' })
      const key = store.claimIdempotencyKey('acme', 'key-1', 'fp', 'ex1')
      return Response.json({ kv, quota, file: file.ok, value, key })
    }
    if (step === 'nested') {
      // A transaction inside another is a savepoint: its failure, caught, undoes only its own part.
      const db = new DurableObjectSqlDatabase(this.#storage)
      db.exec('CREATE TABLE IF NOT EXISTS nested (v TEXT)')
      const insert = db.prepare<[string]>('INSERT INTO nested (v) VALUES (?)')
      const inner = db.transaction(() => {
        insert.run('inner')
        throw new Error('inner failed')
      })
      db.transaction(() => {
        insert.run('outer')
        try {
          inner()
        } catch {}
      })()
      return Response.json(
        db
          .prepare<[], { v: string }>('SELECT v FROM nested')
          .all()
          .map((row) => row.v),
      )
    }
    if (step === 'read') {
      return Response.json({
        profile: store.getProfile('acme', 'p')?.source ?? null,
        incarnation: store.agentIncarnation('acme', 'a'),
        kv: store.kv.get('acme', 'a#1', 'k'),
        journaledWrite: store.kv.get('acme', 'a#1', 'j'),
        otherTenant: store.kv.get('umbrella', 'a#1', 'k'),
        list: store.kv.list('acme', 'a#1', '', 10),
        file: readText(store.files.read('acme', 'agent:a#1', '/workspace/f.txt')),
        audit: store.audit.list('acme', { limit: 10 }).map((entry) => entry.code),
        verify: store.audit.verify('acme'),
        umbrella: store.audit.verify('umbrella'),
        journal: [...store.journal.entries('acme', 'ex1').values()],
        interrupted: store
          .interruptedExecutions()
          .map((entry) => ({ id: entry.record.id, resume: entry.resume })),
        key: store.claimIdempotencyKey('acme', 'key-1', 'fp', 'ex2'),
      })
    }
    return new Response('no such step', { status: 404 })
  }
}

function readText(result: ReturnType<SqlStore['files']['read']>): string | null {
  return result.ok ? new TextDecoder().decode(result.data) : null
}

function record(id: string) {
  return {
    id,
    agent: 'a',
    engine: 'quickjs' as const,
    language: 'javascript' as const,
    status: 'ok' as const,
    result: null,
    stdout: '',
    stderr: '',
    error: null,
    usage: { cpuMs: 0, wallMs: 0, memoryBytes: 0 },
    createdAt: '2026-01-01T00:00:00.000Z',
    finishedAt: null,
  }
}

export default {
  fetch(request: Request, env: Env): Promise<Response> {
    return env.STORE.get(env.STORE.idFromName('one')).fetch(request)
  },
}
