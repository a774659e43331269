import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CordonError, ErrorCode } from '@cordon/contracts'
import type { Supervisor } from '@cordon/executor'
import { afterEach, describe, expect, it } from 'vitest'
import { loadBuiltinProfiles } from './builtins-node.ts'
import { Harness } from './harness.ts'
import { SqliteStore } from './storage/sqlite-store.ts'

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

/** A harness over a real store, with a supervisor stand-in that refuses every job after queueing it. */
function refusingHarness() {
  const dir = mkdtempSync(join(tmpdir(), 'cordon-harness-'))
  dirs.push(dir)
  const store = new SqliteStore(join(dir, 'cordon.sqlite'))
  const supervisor = {
    run: () => Promise.reject(new CordonError(ErrorCode.QUEUE_TIMEOUT, 'no worker became free in time')),
  } as unknown as Supervisor
  const builtinProfiles = loadBuiltinProfiles(
    fileURLToPath(new URL('../../../sandbox-profiles', import.meta.url)),
  )
  const harness = new Harness({ store, supervisor, builtinProfiles, engines: ['quickjs'] })
  harness.putAgent('t', 'a', 'sandbox: strict\n', 'yaml')
  return { harness, store }
}

describe('Harness.execute', () => {
  it('a job refused after it was queued leaves a final record, never one stuck in running', async () => {
    const { harness, store } = refusingHarness()
    await expect(
      harness.execute('t', 'a', { language: 'javascript', code: '1', input: null }),
    ).rejects.toMatchObject({
      code: 'QUEUE_TIMEOUT',
    })
    expect(store.interruptedExecutions()).toEqual([])
    store.close()
  })
})
