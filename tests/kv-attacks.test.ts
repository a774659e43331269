import type { Harness } from '@cordon/harness'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestHarness, type TestHarness } from './helpers/harness.ts'
import { type Body, startTestServer, type TestServer } from './helpers/server.ts'

let service: TestServer
const limits = { cpuMs: 1000, wallMs: 5000, memoryMb: 32, outputBytes: 65536, bindingCalls: 200 }
const QUOTA = 2048

beforeAll(async () => {
  service = await startTestServer()
  const put = async (path: string, body: unknown) => {
    const response = await service.request('PUT', path, { body })
    expect(response.status, JSON.stringify(response.body)).toBe(200)
  }
  const profile = (kv: Record<string, unknown>) => ({
    engines: ['quickjs'],
    languages: ['javascript'],
    limits,
    kv,
  })
  await put('/v1/profiles/kv-rw', profile({ access: 'read-write', quotaBytes: QUOTA, deny: ['private/**'] }))
  await put('/v1/profiles/kv-ro', profile({ access: 'read', quotaBytes: QUOTA }))
  await put('/v1/profiles/kv-kept', {
    ...profile({ access: 'read-write', quotaBytes: QUOTA }),
    // Enough calls for an execution that polls for most of a second.
    limits: { ...limits, bindingCalls: 20_000 },
    filesystem: { access: 'read-write', scope: 'agent', quotaBytes: QUOTA },
  })
  for (const [agent, sandbox] of [
    ['alice', 'kv-rw'],
    ['bob', 'kv-rw'],
    ['reader', 'kv-ro'],
  ]) {
    await put(`/v1/agents/${agent}`, { sandbox })
  }
})
afterAll(async () => {
  await service.close()
})

const run = async (agent: string, code: string): Promise<Body> => {
  const { status, body } = await service.execute(code, {}, agent)
  expect(status).toBe(200)
  expect(body.status, JSON.stringify(body)).toBe('ok')
  return body.result
}
/** Guest code that runs `expr` and answers the error's code and reason, or 'ok'. */
const attempt = (expr: string) =>
  `let r = 'ok'; try { await ${expr} } catch (e) { r = [e.code, e.reason ?? null] } export default r`

describe('kv binding', () => {
  it('stores JSON values per key and lists keys by prefix', async () => {
    const result = await run(
      'alice',
      `await kv.set('list/a', { n: 1 }); await kv.set('list/b', [1, 'x']); await kv.set('other', true)
       export default [await kv.get('list/a'), await kv.get('list/b'), await kv.get('missing'), await kv.list('list/'), await kv.delete('other'), await kv.get('other')]`,
    )
    expect(result).toEqual([{ n: 1 }, [1, 'x'], null, ['list/a', 'list/b'], true, null])
  })

  it('attack: prototype keys are ordinary rows and pollute nothing', async () => {
    const result = await run(
      'alice',
      `for (const k of ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty']) await kv.set(k, { polluted: k })
       const back = []
       for (const k of ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty']) back.push((await kv.get(k)).polluted)
       const fresh = await kv.get('__proto__')
       export default [back, ({}).polluted ?? null, Object.getPrototypeOf(fresh) === Object.prototype, Object.keys(fresh)]`,
    )
    expect(result).toEqual([
      ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'],
      null,
      true,
      ['polluted'],
    ])
  })

  it('attack: path-like keys are data, not paths (no traversal, no normalisation)', async () => {
    const result = await run(
      'alice',
      `await kv.set('x', 'plain'); await kv.set('a/../x', 'dotted'); await kv.set('./x', 'dot')
       export default [await kv.get('x'), await kv.get('a/../x'), await kv.get('./x')]`,
    )
    expect(result).toEqual(['plain', 'dotted', 'dot'])
  })

  it('attack: empty, oversized, control-character and non-string keys are refused', async () => {
    for (const [key, code] of [
      ["''", 'KEY_INVALID'],
      ["'k'.repeat(513)", 'KEY_INVALID'],
      ["'a\\u0000b'", 'KEY_INVALID'],
      ["'a\\nb'", 'KEY_INVALID'],
      ["'\\ud800'", 'KEY_INVALID'],
    ]) {
      expect(await run('alice', attempt(`kv.set(${key}, 1)`))).toEqual(['KV_DENIED', code])
    }
    expect(await run('alice', attempt('kv.get(42)'))).toEqual(['INVALID_ARGUMENT', null])
    expect(await run('alice', attempt('kv.get({ toString() { return "x" } })'))).toEqual([
      'INVALID_ARGUMENT',
      null,
    ])
  })

  it('attack: quota exhaustion is refused and changes nothing', async () => {
    const result = await run(
      'bob',
      `await kv.set('keep', 'k')
       let code, writes = 0
       for (let i = 0; i < 100; i++) { try { await kv.set('fill/' + i, 'x'.repeat(100)); writes++ } catch (e) { code = e.code; break } }
       let overwrite
       try { await kv.set('keep', 'y'.repeat(${QUOTA})) } catch (e) { overwrite = e.code }
       export default [code, writes, overwrite, await kv.get('keep')]`,
    )
    const [code, writes, overwrite, kept] = result
    expect(code).toBe('QUOTA_EXCEEDED')
    expect(writes).toBeGreaterThan(5)
    expect(writes).toBeLessThan(QUOTA / 100)
    expect(overwrite).toBe('QUOTA_EXCEEDED')
    expect(kept).toBe('k')
  })

  it('attack: one value larger than the value limit is refused', async () => {
    expect(await run('bob', attempt(`kv.set('big', 'x'.repeat(1024 * 1024 + 1))`))).toEqual([
      'VALUE_TOO_LARGE',
      null,
    ])
  })

  it('attack: a read-only namespace refuses set and delete', async () => {
    expect(await run('reader', attempt(`kv.set('k', 1)`))).toEqual(['KV_DENIED', 'READ_ONLY'])
    expect(await run('reader', attempt(`kv.delete('k')`))).toEqual(['KV_DENIED', 'READ_ONLY'])
    expect(await run('reader', `export default await kv.get('k')`)).toBeNull()
  })

  it('attack: denied keys are refused and hidden from list', async () => {
    expect(await run('alice', attempt(`kv.set('private/token', 1)`))).toEqual(['KV_DENIED', 'KV_DENIED'])
    expect(
      await run('alice', `export default (await kv.list('')).filter((k) => k.startsWith('private'))`),
    ).toEqual([])
  })

  it('list answers at most its limit (at most 1000) and refuses a limit that is not a whole number from 1', async () => {
    const result = await run(
      'alice',
      `for (let i = 0; i < 5; i++) await kv.set('page/' + i, i)
       const bad = []
       for (const limit of [0, -1, 1.5, '2']) { try { await kv.list('page/', limit) } catch (e) { bad.push(e.code) } }
       export default [(await kv.list('page/', 2)).length, (await kv.list('page/', 5000)).length, bad]`,
    )
    expect(result).toEqual([
      2,
      5,
      ['INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT'],
    ])
  })

  it('attack: LIKE wildcards in a list prefix do not widen it', async () => {
    const result = await run(
      'alice',
      `await kv.set('p%q', 1); await kv.set('pXq', 2); await kv.set('p_q', 3)
       export default [await kv.list('p%'), await kv.list('p_')]`,
    )
    expect(result).toEqual([['p%q'], ['p_q']])
  })

  it('attack: agent B never sees agent A keys', async () => {
    await run('alice', `await kv.set('shared-name', 'alice-secret'); export default 1`)
    expect(await run('bob', `export default [await kv.get('shared-name'), await kv.list('shared')]`)).toEqual(
      [null, []],
    )
  })

  it('attack: a key with newlines, ANSI escapes and a bidi override cannot forge or hide an audit line', async () => {
    const key = '\u001b[2J\u001b[1;32mALL OK\u001b[0m\n2026-01-01 binding.kv.set allow \u202eevil'
    const { body } = await service.execute(
      `await kv.set(${JSON.stringify(key)}, 1); export default 1`,
      {},
      'alice',
    )
    const audit = await service.request('GET', `/v1/audit?execution=${body.id}&kind=binding.kv`)
    const logged = audit.body.records[0].detail.key
    expect(logged).not.toMatch(/[\p{Cc}\u202e]/u)
    expect(logged).toContain('\\u{1b}[2J')
    expect(logged).toContain('\\u{a}2026-01-01')
    expect(logged).toContain('\\u{202e}evil')
  })

  it('every call is audited with its decision and rule', async () => {
    const { body } = await service.execute(
      `try { await kv.set('private/x', 1) } catch {} await kv.get('k'); export default 1`,
      {},
      'alice',
    )
    const audit = await service.request('GET', `/v1/audit?execution=${body.id}&kind=binding.kv`)
    expect(audit.body.records.map((r: Body) => [r.kind, r.decision, r.code, r.rule])).toEqual([
      ['binding.kv.set', 'deny', 'KV_DENIED', 'profiles/kv-rw#/kv/deny/0'],
      ['binding.kv.get', 'allow', 'ALLOWED', 'profiles/kv-rw#/kv/keys/0'],
    ])
  })
})

describe('kv across tenants', () => {
  let test: TestHarness
  let harness: Harness
  beforeAll(async () => {
    test = await startTestHarness()
    harness = test.harness
    for (const tenant of ['tenant-a', 'tenant-b']) {
      harness.putProfile(
        tenant,
        'kv',
        JSON.stringify({
          engines: ['quickjs'],
          languages: ['javascript'],
          limits,
          kv: { access: 'read-write', quotaBytes: QUOTA },
        }),
        'json',
      )
      harness.putAgent(tenant, 'same', JSON.stringify({ sandbox: 'kv' }), 'json')
    }
  })
  afterAll(async () => {
    await test.close()
  })

  it('attack: a tenant never sees another tenant keys under the same agent name', async () => {
    const set = await harness.execute('tenant-a', 'same', {
      language: 'javascript',
      code: `await kv.set('k', 'a-only'); export default 1`,
      input: null,
    })
    expect(set.status).toBe('ok')
    const read = await harness.execute('tenant-b', 'same', {
      language: 'javascript',
      code: `export default [await kv.get('k'), await kv.list('')]`,
      input: null,
    })
    expect(read.result).toEqual([null, []])
  })
})

describe('an agent deleted and stored again', () => {
  const deploy = async () => {
    const response = await service.request('PUT', '/v1/agents/phoenix', { body: { sandbox: 'kv-kept' } })
    expect(response.status).toBe(200)
  }

  it('starts with no keys and no files of the agent it replaces', async () => {
    await deploy()
    await run('phoenix', `await kv.set('old', 1); await fs.writeFile('old.txt', 'old'); export default 1`)
    expect((await service.request('DELETE', '/v1/agents/phoenix')).status).toBe(204)
    await deploy()
    expect(
      await run('phoenix', `export default [await kv.list(''), await fs.readdir('/workspace')]`),
    ).toEqual([[], []])
  })

  it('attack: an execution of the deleted agent still running cannot plant keys or files in the new one', async () => {
    await deploy()
    const old = service.execute(
      `const until = Date.now() + 600
       while (Date.now() < until) await kv.get('tick')
       await kv.set('planted', 'by the deleted agent')
       await fs.writeFile('planted.txt', 'by the deleted agent')
       export default 'wrote'`,
      {},
      'phoenix',
    )
    await new Promise((resolve) => setTimeout(resolve, 150))
    expect((await service.request('DELETE', '/v1/agents/phoenix')).status).toBe(204)
    await deploy()
    expect((await old).body.result).toBe('wrote')
    expect(
      await run(
        'phoenix',
        `export default [await kv.get('planted'), await kv.list(''), await fs.readdir('/workspace')]`,
      ),
    ).toEqual([null, [], []])
    const files = await service.request('GET', '/v1/agents/phoenix/files')
    expect(files.body.entries).toEqual([])
  })
})
