import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { workerChildren } from '../helpers/processes.ts'
import { startTestServer, type TestServer } from '../helpers/server.ts'
import { describeAttacks, LIMITS } from './attack-suite.ts'
import { ISOLATE_ATTACKS } from './isolate-attacks.ts'

describeAttacks('isolated-vm handles, V8 allocators and blocking primitives', ISOLATE_ATTACKS, 'isolate')

describe('isolate engine: what reaches it from a request, and who carries on', () => {
  let t: TestServer

  beforeAll(async () => {
    t = await startTestServer()
    const profile = await t.request('PUT', '/v1/profiles/isolate-attack', {
      body: { engines: ['isolate'], languages: ['javascript'], limits: LIMITS },
    })
    expect(profile.status).toBe(200)
    expect((await t.request('PUT', '/v1/agents/v8', { body: { sandbox: 'isolate-attack' } })).status).toBe(
      200,
    )
  })

  afterAll(async () => {
    await t.close()
  })

  for (const field of ['cachedData', 'produceCachedData', 'snapshot']) {
    it(`refuses ${field} in an execution request: V8 never deserialises client bytes`, async () => {
      const forged = Buffer.from('not really V8 code cache').toString('base64')
      const res = await t.execute('export default 1', { engine: 'isolate', [field]: forged }, 'v8')
      expect(res.status).toBe(422)
      expect(JSON.stringify(res.body.error)).toContain(field)
    })
  }

  it('guest code still running after its result is stopped without retiring the worker (no pool starvation)', async () => {
    const before = t.server.supervisor.stats().restarts
    const lingering = `export default { toJSON() { Promise.resolve().then(() => { for (;;) {} }); return 'reported' } }`
    const attacks = Array.from({ length: 6 }, () => t.execute(lingering, {}, 'v8'))
    for (let i = 0; i < 3; i++) {
      const res = await t.execute(`export default ${i}`, {}, 'v8')
      expect(res.body).toMatchObject({ status: 'ok', result: i })
    }
    for (const attack of await Promise.all(attacks))
      expect(attack.body).toMatchObject({ status: 'ok', result: 'reported' })
    expect(t.server.supervisor.stats()).toMatchObject({ workers: 2, ready: 2, restarts: before })
  })

  it('a guest that defeats isolated-vm on one worker does not hold up executions on the other', async () => {
    const attack = t.execute('const a = []\nwhile (true) a.push(new Array(1000).fill(1))', {}, 'v8')
    // While the attack holds one worker, trivial executions keep being answered by the other.
    for (let i = 0; i < 5; i++) {
      const res = await t.execute(`export default ${i} * 2`, {}, 'v8')
      expect(res.body).toMatchObject({ status: 'ok', result: i * 2 })
    }
    const attacked = await attack
    expect(['memory_limit', 'timeout']).toContain(attacked.body.status)
    // The worker it ran on was replaced at once (a retiring worker is no crash: no back-off): two
    // workers again, and only two processes.
    await expect
      .poll(() => [t.server.supervisor.stats().ready, workerChildren().length], { timeout: 3000 })
      .toEqual([2, 2])
    // Again and again: each retirement is replaced as fast as the first.
    for (let i = 0; i < 3; i++) {
      const again = await t.execute('const a = []\nwhile (true) a.push(new Array(1000).fill(1))', {}, 'v8')
      expect(['memory_limit', 'timeout']).toContain(again.body.status)
      await expect
        .poll(() => [t.server.supervisor.stats().ready, workerChildren().length], { timeout: 3000 })
        .toEqual([2, 2])
    }
  })
})
