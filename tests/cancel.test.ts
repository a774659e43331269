import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, TEST_TOKEN, type TestServer } from './helpers/server.ts'

// POST /v1/executions/{id}/cancel: an execution that runs (or waits) ends as killed / CANCELLED,
// found first through GET /v1/executions?status=running.

let t: TestServer

beforeAll(async () => {
  t = await startTestServer()
  await t.deployAgent('slow', {
    cpuMs: 4000,
    wallMs: 10_000,
    memoryMb: 32,
    outputBytes: 4096,
    bindingCalls: 0,
  })
})
afterAll(() => t.close())

describe('cancelling an execution', () => {
  it('lists a running execution and cancels it: the run ends killed / CANCELLED, and so does its POST', async () => {
    const running = fetch(`${t.server.url}/v1/agents/slow/executions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ language: 'javascript', code: 'for (;;) {}' }),
    }).then((response) => response.json())
    let id: string | undefined
    await expect
      .poll(async () => {
        const { body } = await t.request('GET', '/v1/executions?status=running&agent=slow')
        id = body.items[0]?.id
        return body.items.length
      })
      .toBe(1)
    const cancelled = await t.request('POST', `/v1/executions/${id}/cancel`)
    expect(cancelled.status).toBe(200)
    expect(cancelled.body).toMatchObject({ id, status: 'killed', error: { code: 'CANCELLED' } })
    expect(await running).toMatchObject({ id, status: 'killed' })
    expect((await t.request('GET', `/v1/executions/${id}`)).body.status).toBe('killed')
    const audit = await t.request('GET', `/v1/audit?execution=${id}&kind=execution.cancel`)
    expect(audit.body.records).toHaveLength(1)
  })

  it('answers 409 for an execution that already ended, 404 for an unknown one, 400 for other listings', async () => {
    const done = await t.execute('export default 1')
    const again = await t.request('POST', `/v1/executions/${done.body.id}/cancel`)
    expect(again.status).toBe(409)
    expect(again.body.error.code).toBe('EXECUTION_NOT_RUNNING')
    expect((await t.request('POST', '/v1/executions/ex_unknown/cancel')).status).toBe(404)
    expect((await t.request('GET', '/v1/executions')).status).toBe(400)
  })
})
