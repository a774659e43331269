import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

let t: TestServer
beforeAll(async () => {
  t = await startTestServer()
})
afterAll(async () => {
  await t.close()
})

describe('persistence in SQLite under CORDON_DATA_DIR', () => {
  it('keeps profiles, agents and executions across a restart', async () => {
    await t.request('PUT', '/v1/profiles/kept', {
      raw: 'engines: [quickjs]\nlanguages: [javascript]\nlimits: { cpuMs: 100, wallMs: 500, memoryMb: 16, outputBytes: 1024, bindingCalls: 0 }\n',
      contentType: 'application/yaml',
    })
    await t.request('PUT', '/v1/agents/keeper', {
      raw: '---\nsandbox: kept\n---\nRemember me.\n',
      contentType: 'text/markdown',
    })
    const run = await t.execute('console.log("hello"); export default { n: 1 }', {}, 'keeper')
    expect(run.body.status).toBe('ok')

    await t.restart()

    expect((await t.request('GET', '/v1/profiles/kept')).body).toMatchObject({
      name: 'kept',
      limits: { cpuMs: 100 },
    })
    expect((await t.request('GET', '/v1/agents/keeper')).body).toMatchObject({
      sandbox: 'kept',
      instructions: 'Remember me.',
    })
    expect((await t.request('GET', `/v1/executions/${run.body.id}`)).body).toEqual(run.body)
    const again = await t.execute('export default 2', {}, 'keeper')
    expect(again.body).toMatchObject({ status: 'ok', result: 2 })
  })

  it('does not re-create the example agent over a user change at start', async () => {
    await t.request('PUT', '/v1/agents/example', { body: { sandbox: 'strict', description: 'mine now' } })
    await t.restart()
    expect((await t.request('GET', '/v1/agents/example')).body.description).toBe('mine now')
  })
})
