import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

let t: TestServer
beforeAll(async () => {
  t = await startTestServer()
})
afterAll(async () => {
  await t.close()
})

describe('the README example', () => {
  it('serves /healthz without a token', async () => {
    const res = await t.request('GET', '/healthz', { auth: null })
    expect(res.status).toBe(200)
    expect(res.body.ok).toBe(true)
  })

  it('runs code as the example agent and returns the record', async () => {
    const res = await t.execute('export default (input) => input.a + input.b', { input: { a: 2, b: 3 } })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({
      agent: 'example',
      engine: 'quickjs',
      status: 'ok',
      result: 5,
      error: null,
    })
    const again = await t.request('GET', `/v1/executions/${res.body.id}`)
    expect(again.body).toMatchObject({ id: res.body.id, status: 'ok', result: 5 })
  })
})
