import { DurableObjectSqlDatabase, type DurableObjectStorageLike, SqlStore } from '@cordon/harness/store'

type Ctx = { storage: DurableObjectStorageLike & { sql: any }; abort?: (r?: string) => void }
export class P {
  ctx: Ctx
  store: SqlStore | null = null
  db: DurableObjectSqlDatabase
  constructor(ctx: Ctx) {
    this.ctx = ctx
    this.db = new DurableObjectSqlDatabase(ctx.storage)
  }
  s(): SqlStore {
    this.store ??= new SqlStore(this.db, { auditKey: Buffer.alloc(32, 7) })
    return this.store
  }
  async fetch(request: Request): Promise<Response> {
    const step = new URL(request.url).pathname.slice(1)
    const sql = this.ctx.storage.sql
    const out: Record<string, unknown> = {}
    const tryit = (name: string, f: () => unknown) => {
      try { out[name] = f() } catch (e) { out[name] = `THROW ${(e as Error).message}` }
    }
    if (step === 'bigfile') {
      const store = this.s()
      tryit('write3MB', () => store.files.write('t', 'sp', '/workspace/big', new Uint8Array(3 * 1024 * 1024), 1 << 30))
      tryit('write1MB', () => JSON.stringify(store.files.write('t', 'sp', '/workspace/small', new Uint8Array(1024 * 1024), 1 << 30)))
      tryit('kv1.9MBvalue', () => store.kv.set('t', 'a', 'k', 'x'.repeat(1900 * 1024), 1 << 30))
      tryit('finish3MB', () => { store.finishExecution('t', { id: 'e', agent: 'a', engine: 'quickjs', language: 'javascript', status: 'ok', result: null, stdout: 'x'.repeat(3 << 20), stderr: '', error: null, usage: { cpuMs: 0, wallMs: 0, memoryBytes: 0 }, createdAt: 'c', finishedAt: 'f' } as any).catch(() => {}); return store.getExecution('t', 'e')?.stdout.length ?? null })
    }
    if (step === 'nested') {
      sql.exec('CREATE TABLE IF NOT EXISTS n (v TEXT)')
      sql.exec('DELETE FROM n')
      tryit('nativeNested', () => {
        this.ctx.storage.transactionSync(() => {
          sql.exec("INSERT INTO n VALUES ('outer')")
          try {
            this.ctx.storage.transactionSync(() => {
              sql.exec("INSERT INTO n VALUES ('inner')")
              throw new Error('inner fails')
            })
          } catch {}
        })
        return sql.exec('SELECT v FROM n').toArray().map((r: any) => r.v)
      })
      sql.exec('DELETE FROM n')
      tryit('adapterNested', () => {
        const db = this.db
        db.transaction(() => {
          db.exec("INSERT INTO n VALUES ('outer')")
          try {
            db.transaction(() => {
              db.exec("INSERT INTO n VALUES ('inner')")
              throw new Error('inner fails')
            })()
          } catch {}
        })()
        return sql.exec('SELECT v FROM n').toArray().map((r: any) => r.v)
      })
      sql.exec('DELETE FROM n')
      sql.exec('CREATE TABLE IF NOT EXISTS u (k TEXT PRIMARY KEY)')
      sql.exec('DELETE FROM u')
      sql.exec("INSERT INTO u VALUES ('dup')")
      tryit('failInTxnContinue', () => {
        this.ctx.storage.transactionSync(() => {
          sql.exec("INSERT INTO u VALUES ('a')")
          try { sql.exec("INSERT INTO u VALUES ('dup')") } catch (e) { out.dupErr = (e as Error).message }
          sql.exec("INSERT INTO u VALUES ('b')")
        })
        return sql.exec('SELECT k FROM u ORDER BY k').toArray().map((r: any) => r.k)
      })
      tryit('iterateEarlyExitThenWrite', () => {
        const it = this.db.prepare<[], { k: string }>('SELECT k FROM u ORDER BY k')
        this.db.transaction(() => {
          for (const r of it.iterate()) { if (r.k === 'a') break }
          this.db.exec("INSERT INTO u VALUES ('c')")
        })()
        return sql.exec('SELECT k FROM u ORDER BY k').toArray().map((r: any) => r.k)
      })
      tryit('iterateWhileWriting', () => {
        const it = this.db.prepare<[], { k: string }>('SELECT k FROM u ORDER BY k')
        const ins = this.db.prepare<[string]>('INSERT INTO u VALUES (?)')
        let n = 0
        for (const r of it.iterate()) { if (++n > 20) return 'RUNAWAY'; ins.run(`${r.k}z`) }
        return n
      })
      tryit('b64std', () => Buffer.from('ab+/cd+/ab+/cd+/ab+/cd+/ab+/cd+/ab+/cd+/ab8=', 'base64url').toString('hex'))
      tryit('b64stdNode', () => Buffer.from('ab-_cd-_ab-_cd-_ab-_cd-_ab-_cd-_ab-_cd-_ab8', 'base64url').toString('hex'))
      tryit('b64empty', () => Buffer.from('', 'base64url').length)
      tryit('b64garbage', () => Buffer.from('not a key!', 'base64url').length)
      tryit('setImmediate', () => typeof (globalThis as any).setImmediate)
    }
    if (step === 'append') {
      const store = this.s()
      store.audit.append('t', { kind: 'x', agent: null, execution: null, decision: 'info', code: 'C', rule: null, detail: {} })
      store.beginExecution('t', { id: `b${Date.now()}`, agent: 'a', engine: 'quickjs', language: 'javascript', createdAt: 'c' } as any)
      return Response.json({ queued: true })
    }
    if (step === 'count') {
      out.audit = sql.exec('SELECT count(*) AS n FROM audit').toArray()[0]
      out.exec = sql.exec("SELECT count(*) AS n FROM executions WHERE id LIKE 'b%'").toArray()[0]
    }
    if (step === 'abort') {
      this.ctx.abort?.('probe')
    }
    return Response.json(out)
  }
}
export default {
  fetch(request: Request, env: any) {
    return env.P.get(env.P.idFromName('one')).fetch(request)
  },
}
