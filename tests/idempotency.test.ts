import { Supervisor } from '@cordon/executor'
import { Harness } from '@cordon/harness'
import { SqliteStore } from '@cordon/harness/node'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deployQuickAgent, startTestHarness } from './helpers/harness.ts'
import { startTestServer, TEST_TOKEN, type TestServer } from './helpers/server.ts'

// Idempotency-Key on execution requests: a retried request with the same key answers the original
// execution, never a second one; the same key with another request is a 409.

let t: TestServer

/** Executions of the example agent, counted from the audit log. */
async function executions(): Promise<number> {
  const { body } = await t.request('GET', '/v1/audit?kind=execution&agent=example&limit=1000')
  return body.records.length
}

const SLOW = {
  language: 'javascript',
  code: 'const end = Date.now() + 400; while (Date.now() < end) {}; export default "done"',
}

beforeAll(async () => {
  t = await startTestServer()
})
afterAll(() => t.close())

async function send(body: unknown, key: string, signal?: AbortSignal) {
  const response = await fetch(`${t.server.url}/v1/agents/example/executions`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${TEST_TOKEN}`,
      'content-type': 'application/json',
      'idempotency-key': key,
    },
    body: JSON.stringify(body),
    ...(signal === undefined ? {} : { signal }),
  })
  return { status: response.status, body: await response.json() }
}

describe('Idempotency-Key', () => {
  it('answers a retry with the original execution, and runs nothing twice', async () => {
    const before = await executions()
    const first = await send({ language: 'javascript', code: 'export default Math.random()' }, 'retry-1')
    const second = await send({ language: 'javascript', code: 'export default Math.random()' }, 'retry-1')
    expect(first.status).toBe(200)
    expect(second).toEqual(first)
    expect(await executions()).toBe(before + 1)
  })

  it('answers concurrent requests with the same key with one execution', async () => {
    const before = await executions()
    const answers = await Promise.all([
      send(SLOW, 'parallel-1'),
      send(SLOW, 'parallel-1'),
      send(SLOW, 'parallel-1'),
    ])
    expect(new Set(answers.map((answer) => answer.body.id)).size).toBe(1)
    expect(answers.every((answer) => answer.body.result === 'done')).toBe(true)
    expect(await executions()).toBe(before + 1)
  })

  it('refuses the same key with a different request (409), whatever differs', async () => {
    await send({ language: 'javascript', code: 'export default 1' }, 'reused-1')
    const other = await send({ language: 'javascript', code: 'export default 2' }, 'reused-1')
    expect(other.status).toBe(409)
    expect(other.body.error.code).toBe('IDEMPOTENCY_KEY_REUSED')
    const input = await send(
      { language: 'javascript', code: 'export default 1', input: { a: 1 } },
      'reused-1',
    )
    expect(input.status).toBe(409)
  })

  it('treats key order in input as the same request', async () => {
    const first = await send(
      { language: 'javascript', code: 'export default 1', input: { a: 1, b: 2 } },
      'order-1',
    )
    const second = await send(
      { language: 'javascript', code: 'export default 1', input: { b: 2, a: 1 } },
      'order-1',
    )
    expect(second.body.id).toBe(first.body.id)
  })

  it('refuses a malformed key (400)', async () => {
    for (const key of ['', 'has space', 'x'.repeat(256), 'caf\u00e9']) {
      const answer = await send({ language: 'javascript', code: 'export default 1' }, key)
      expect(answer.status, JSON.stringify(key)).toBe(400)
    }
  })

  it('keeps running when the client goes away, so the retry collects the result', async () => {
    const controller = new AbortController()
    const gone = send(SLOW, 'gone-1', controller.signal).catch(() => 'aborted')
    setTimeout(() => controller.abort(), 100)
    expect(await gone).toBe('aborted')
    const retry = await send(SLOW, 'gone-1')
    expect(retry.body).toMatchObject({ status: 'ok', result: 'done' })
  })

  it('answers the original execution after a restart', async () => {
    const first = await send({ language: 'javascript', code: 'export default 41 + 1' }, 'restart-1')
    await t.restart()
    const again = await send({ language: 'javascript', code: 'export default 41 + 1' }, 'restart-1')
    expect(again.body).toEqual(first.body)
  })

  it('frees a key whose request the queue refused, so that the retry the refusal asks for runs', async () => {
    const supervisor = new Supervisor({ workers: 1, queueTimeoutMs: 300 })
    await supervisor.start()
    const store = new SqliteStore(':memory:')
    try {
      const harness = new Harness({
        store,
        supervisor,
        builtinProfiles: new Map(),
        engines: ['quickjs'],
      })
      deployQuickAgent(harness, 'acme')
      const busy = {
        language: 'javascript' as const,
        code: 'const end = Date.now() + 900; while (Date.now() < end) {}',
        input: null,
      }
      const running = [harness.execute('acme', 'a', busy), harness.execute('acme', 'a', busy)]
      await expect(
        harness.execute(
          'acme',
          'a',
          { language: 'javascript', code: 'export default 7', input: null },
          { idempotencyKey: 'q-1' },
        ),
      ).rejects.toMatchObject({ code: 'QUEUE_TIMEOUT' })
      await Promise.allSettled(running)
      const retry = await harness.execute(
        'acme',
        'a',
        { language: 'javascript', code: 'export default 7', input: null },
        { idempotencyKey: 'q-1' },
      )
      expect(retry).toMatchObject({ status: 'ok', result: 7 })
    } finally {
      await supervisor.stop()
      store.close()
    }
  })

  it('keeps keys per tenant', async () => {
    const test = await startTestHarness()
    try {
      const { harness } = test
      const ids: string[] = []
      for (const tenant of ['acme', 'umbrella']) {
        deployQuickAgent(harness, tenant)
        const record = await harness.execute(
          tenant,
          'a',
          { language: 'javascript', code: 'export default 1', input: null },
          { idempotencyKey: 'shared-key' },
        )
        ids.push(record.id)
      }
      expect(ids[0]).not.toBe(ids[1])
    } finally {
      await test.close()
    }
  })
})
