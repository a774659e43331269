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
    // Liveness only: nothing about the pool (other tenants' load) without a token.
    expect(res.body).toEqual({ ok: true })
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

describe('API description', () => {
  it('serves the OpenAPI document without a token, listing every route', async () => {
    const res = await t.request('GET', '/openapi.json', { auth: null })
    expect(res.status).toBe(200)
    expect(res.body.openapi).toBe('3.1.0')
    expect(Object.keys(res.body.paths)).toEqual(
      expect.arrayContaining(['/v1/agents/{name}/executions', '/v1/executions/{id}', '/v1/profiles/{name}']),
    )
    expect(res.body.components.schemas.ExecuteRequest.required).toEqual(['language', 'code'])
  })

  it('serves a self-contained HTML page at /docs', async () => {
    const res = await t.request('GET', '/docs', { auth: null })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('text/html')
    expect(res.body).toContain('/v1/agents/{name}/executions')
    expect(res.body).not.toContain('<script')
  })
})
