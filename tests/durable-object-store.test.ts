import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'esbuild'
import { Miniflare } from 'miniflare'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

// Cordon's store on a Durable Object's SQLite, in workerd (Miniflare): the same SqlStore, schema and
// statements as on Node, through DurableObjectSqlDatabase. The Durable Object's storage is on disk, so
// a second Miniflare on the same directory is the object restarted.

const dir = mkdtempSync(join(tmpdir(), 'cordon-do-'))
let script: string

beforeAll(async () => {
  const bundle = await build({
    entryPoints: [new URL('./workers/store-probe.ts', import.meta.url).pathname],
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    target: 'es2023',
    conditions: ['workerd', 'worker', 'import'],
    mainFields: ['module', 'main'],
    external: ['node:*'],
    write: false,
  })
  script = bundle.outputFiles[0]?.text ?? ''
}, 60_000)

afterAll(() => {
  rmSync(dir, { recursive: true, force: true })
})

function start(): Miniflare {
  return new Miniflare({
    modules: true,
    script,
    compatibilityDate: '2026-07-30',
    compatibilityFlags: ['nodejs_compat'],
    durableObjects: { STORE: { className: 'StoreProbe', useSQLite: true } },
    durableObjectsPersist: join(dir, 'do'),
  })
}

describe('the store on a Durable Object (workerd)', () => {
  it('writes and reads every part of the store, and keeps it across a restart of the object', async () => {
    const first = start()
    try {
      const written = await (await first.dispatchFetch('http://probe/write')).json()
      expect(written).toEqual({
        kv: { ok: true },
        quota: { ok: false, usedBytes: expect.any(Number) },
        file: true,
        value: 'applied',
        key: null,
      })
      const read = await (await first.dispatchFetch('http://probe/read')).json()
      expect(read).toMatchObject({
        profile: 'name: p',
        incarnation: expect.stringMatching(/^[0-9a-f]{16}$/),
        kv: '{"n":1}',
        journaledWrite: '2',
        otherTenant: null,
        list: ['j', 'k'],
        file: 'hello',
        audit: ['ONE', 'TWO', 'THREE'],
        verify: { ok: true, records: 3 },
        umbrella: { ok: true, records: 1 },
        journal: [
          { seq: 0, call: 'kv.set', fingerprint: 'f0', reply: '{"ok":true,"value":null}' },
          { seq: 1, call: 'fetch.request', fingerprint: 'f1', reply: null },
        ],
        interrupted: [{ id: 'ex1', resume: '{"kind":"code"}' }],
        key: { fingerprint: 'fp', execution: 'ex1' },
      })
      await first.dispose()
      const second = start()
      try {
        const again = (await (await second.dispatchFetch('http://probe/read')).json()) as typeof read
        expect(again).toEqual(read)
      } finally {
        await second.dispose()
      }
    } finally {
      await first.dispose().catch(() => {})
    }
  }, 60_000)

  it('keeps a transaction inside another as a savepoint: a failure caught undoes only its own part', async () => {
    const mf = start()
    try {
      expect(await (await mf.dispatchFetch('http://probe/nested')).json()).toEqual(['outer'])
    } finally {
      await mf.dispose()
    }
  }, 60_000)
})
