import { afterAll, beforeAll, it } from 'vitest'
import { startTestServer, type TestServer } from '../helpers/server.ts'

let t: TestServer
beforeAll(async () => {
  t = await startTestServer()
  await t.request('PUT', '/v1/profiles/attack', {
    raw: 'name: attack\nengines: [quickjs]\nlanguages: [javascript, typescript]\nlimits: { cpuMs: 300, wallMs: 1500, memoryMb: 16, outputBytes: 65536, bindingCalls: 0 }\n',
    contentType: 'application/yaml',
  })
  await t.request('PUT', '/v1/agents/attacker', { body: { name: 'attacker', sandbox: 'attack' } })
})
afterAll(async () => {
  await t.close()
})

const probes: string[] = JSON.parse(process.env.PROBES ?? '[]')
it('probes', async () => {
  for (const code of probes) {
    const s = performance.now()
    const r = await t.execute(code, {}, 'attacker')
    const b = r.body
    const h = await t.execute(`export default 1+1 // ${Math.random()}`, {}, 'attacker')
    console.log(
      JSON.stringify({
        code: code.slice(0, 100),
        http: r.status,
        status: b.status,
        result: typeof b.result === 'string' ? b.result.slice(0, 600) : b.result,
        err: b.error,
        out: b.stdout?.length,
        outS: b.stdout?.slice(0, 200),
        errS: b.stderr?.slice(0, 200),
        ms: Math.round(performance.now() - s),
        usage: b.usage,
        health: [h.status, h.body.status, h.body.result],
      }),
    )
  }
}, 300000)
