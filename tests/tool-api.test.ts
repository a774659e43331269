import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

// The tool API: GET /v1/agents/{name}/tools lists the declared tools with their schemas; POST
// /v1/agents/{name}/tools/{tool} validates the input (422 with the failing path) and runs the tool.

let t: TestServer

const AGENT = `name: calculator
sandbox: tool-runner
tools:
  - name: add
    description: Adds two numbers
    input: { type: object, properties: { a: { type: number }, b: { type: number } }, required: [a, b], additionalProperties: false }
    language: javascript
    code: |
      export default ({ a, b }) => a + b
  - name: loop
    description: Never ends
    input: { type: object }
    language: javascript
    code: |
      export default () => { for (;;) {} }
`

beforeAll(async () => {
  t = await startTestServer()
  const put = await t.request('PUT', '/v1/agents/calculator', { raw: AGENT, contentType: 'application/yaml' })
  expect(put.status, JSON.stringify(put.body)).toBe(200)
})
afterAll(() => t.close())

describe('the tool API', () => {
  it('lists the agent tools with their input schemas', async () => {
    const { status, body } = await t.request('GET', '/v1/agents/calculator/tools')
    expect(status).toBe(200)
    expect(body.items.map((tool: { name: string }) => tool.name)).toEqual(['add', 'loop'])
    expect(body.items[0]).toMatchObject({
      description: 'Adds two numbers',
      language: 'javascript',
      input: { type: 'object', required: ['a', 'b'] },
    })
  })

  it('runs a tool with valid input and answers its execution record', async () => {
    const { status, body } = await t.request('POST', '/v1/agents/calculator/tools/add', {
      body: { input: { a: 2, b: 3 } },
    })
    expect(status).toBe(200)
    expect(body).toMatchObject({ agent: 'calculator', status: 'ok', result: 5 })
    expect((await t.request('GET', `/v1/executions/${body.id}`)).body.result).toBe(5)
  })

  it('refuses input the schema does not take (422 with the failing path), before anything runs', async () => {
    const wrong = await t.request('POST', '/v1/agents/calculator/tools/add', {
      body: { input: { a: 'two', b: 3 } },
    })
    expect(wrong.status).toBe(422)
    expect(wrong.body.error.code).toBe('VALIDATION_FAILED')
    expect(wrong.body.error.issues[0].path).toMatch(/a/)
    const extra = await t.request('POST', '/v1/agents/calculator/tools/add', {
      body: { input: { a: 1, b: 2, c: 3 } },
    })
    expect(extra.status).toBe(422)
    const none = await t.request('POST', '/v1/agents/calculator/tools/add', { body: {} })
    expect(none.status).toBe(422)
  })

  it('answers 404 for an unknown tool or agent, 422 for an unknown body field', async () => {
    expect(
      (await t.request('POST', '/v1/agents/calculator/tools/nope', { body: { input: {} } })).body.error.code,
    ).toBe('TOOL_NOT_FOUND')
    expect((await t.request('POST', '/v1/agents/nobody/tools/add', { body: { input: {} } })).status).toBe(404)
    expect(
      (await t.request('POST', '/v1/agents/calculator/tools/add', { body: { input: {}, x: 1 } })).status,
    ).toBe(422)
  })

  it('holds a tool to its profile limits: a runaway tool ends on the CPU line', async () => {
    const { body } = await t.request('POST', '/v1/agents/calculator/tools/loop', { body: { input: {} } })
    expect(body).toMatchObject({ status: 'timeout', error: { code: 'CPU_TIME_LIMIT' } })
  })

  it('takes an Idempotency-Key: a retry answers the first execution', async () => {
    const send = () =>
      t.request('POST', '/v1/agents/calculator/tools/add', {
        body: { input: { a: 1, b: 1 } },
        headers: { 'idempotency-key': 'tool-retry-1' },
      })
    const first = await send()
    const second = await send()
    expect(second.body.id).toBe(first.body.id)
  })
})
