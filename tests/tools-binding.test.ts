import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Body, startTestServer, type TestServer } from './helpers/server.ts'

// One worker: a tool runs beside its caller in the caller's worker, so nesting never waits for a
// free worker (with one, waiting would be a deadlock).
let service: TestServer
const limits = { cpuMs: 1000, wallMs: 8000, memoryMb: 32, outputBytes: 65536, bindingCalls: 50 }

const tool = (
  name: string,
  code: string,
  input: Record<string, unknown> = { type: 'object' },
  extra = {},
) => ({
  name,
  description: `${name} tool`,
  language: 'javascript',
  input,
  code,
  ...extra,
})

beforeAll(async () => {
  service = await startTestServer({ workers: 1 })
  const put = async (path: string, body: unknown) => {
    const response = await service.request('PUT', path, { body })
    expect(response.status, JSON.stringify(response.body)).toBe(200)
  }
  await put('/v1/profiles/toolbox', {
    engines: ['quickjs'],
    languages: ['javascript'],
    limits,
    tools: ['double', 'recurse', 'spin', 'pattern', 'backref', 'quantified', 'unique', 'counter'],
  })
  await put('/v1/agents/tooler', {
    sandbox: 'toolbox',
    tools: [
      tool('double', 'export default ({ n }) => n * 2', {
        type: 'object',
        properties: { n: { type: 'number' } },
        required: ['n'],
      }),
      tool(
        'recurse',
        'export default async ({ depth }) => { try { return await tools.recurse({ depth: depth + 1 }) } catch (e) { return { depth, code: e.code } } }',
      ),
      tool(
        'spin',
        'export default () => { for (;;) {} }',
        { type: 'object' },
        {
          sandbox: { extends: 'toolbox', limits: { cpuMs: 100 } },
        },
      ),
      tool('pattern', 'export default (s) => s', { type: 'string', pattern: '^(a+)+$' }),
      tool('backref', 'export default (s) => s', { type: 'string', pattern: '^(a+)+\\1$' }),
      // Past V8's replication limit the linear fallback cannot take over this one.
      tool('quantified', 'export default (s) => s', { type: 'string', pattern: '^(a+){17,}$' }),
      tool('unique', 'export default (a) => a.length', { type: 'array', uniqueItems: true }),
      tool(
        'counter',
        'await kv.set("n", ((await kv.get("n")) ?? 0) + 1); export default await kv.get("n")',
        { type: 'object' },
        {
          sandbox: {
            engines: ['quickjs'],
            languages: ['javascript'],
            limits,
            kv: { access: 'read-write', quotaBytes: 1024 },
          },
        },
      ),
      tool('hidden', 'export default "never"'),
    ],
  })
})
afterAll(async () => {
  await service.close()
})

const run = async (code: string): Promise<Body> => {
  const { status, body } = await service.execute(code, {}, 'tooler')
  expect(status).toBe(200)
  return body
}

describe('tools binding', () => {
  it('runs a declared, granted tool by name and through call', async () => {
    const record = await run(
      `export default [await tools.double({ n: 4 }), await tools.call('double', { n: 5 }), typeof tools.hidden, Object.keys(tools).sort()]`,
    )
    expect(record.status, JSON.stringify(record)).toBe('ok')
    expect(record.result).toEqual([
      8,
      10,
      'undefined',
      ['backref', 'call', 'counter', 'double', 'pattern', 'quantified', 'recurse', 'spin', 'unique'],
    ])
  })

  it('refuses input that fails the JSON Schema with the failing path', async () => {
    const record = await run(
      `try { await tools.double({ n: 'four' }) } catch (e) { globalThis.r = [e.code, e.message] } export default r`,
    )
    expect(record.result[0]).toBe('TOOL_INPUT_INVALID')
    expect(record.result[1]).toContain('$.n: must be number')
  })

  it('attack: calling a declared tool the profile does not grant is refused with the rule', async () => {
    const record = await run(
      `try { await tools.call('hidden', {}) } catch (e) { globalThis.r = [e.code, e.reason, e.rule] } export default r`,
    )
    expect(record.result).toEqual(['TOOL_DENIED', 'TOOL_NOT_ALLOWED', 'profiles/toolbox#/tools'])
  })

  it('attack: more tool calls than one execution may cause, in parallel, are cut at the limit', async () => {
    const record = await run(
      `const all = await Promise.allSettled(Array.from({ length: 20 }, (_, n) => tools.double({ n })))
       export default [all.filter((r) => r.status === 'fulfilled').length, [...new Set(all.filter((r) => r.status === 'rejected').map((r) => r.reason.code))]]`,
    )
    expect(record.result).toEqual([16, ['TOOL_LIMIT']])
  })

  it('attack: a tool calling itself stops at the nesting limit', async () => {
    const record = await run(`export default await tools.recurse({ depth: 0 })`)
    expect(record.status, JSON.stringify(record)).toBe('ok')
    expect(record.result).toEqual({ depth: 2, code: 'TOOL_LIMIT' })
  })

  it('attack: a runaway tool ends on its own limits; the caller carries on', async () => {
    const record = await run(
      `let r; try { await tools.spin({}) } catch (e) { r = [e.code, e.reason] } export default r`,
    )
    expect(record.status, JSON.stringify(record)).toBe('ok')
    expect(record.result).toEqual(['TOOL_FAILED', 'CPU_TIME_LIMIT'])
  })

  it('attack: a backtracking pattern in a tool schema does not stall the service', async () => {
    const record = await run(
      `let r; try { await tools.pattern('a'.repeat(40) + '!') } catch (e) { r = e.code } export default r`,
    )
    expect(record.result).toBe('TOOL_INPUT_INVALID')
    expect(record.usage.wallMs).toBeLessThan(limits.wallMs)
  })

  it.each([
    ["a quantifier past the linear engine's reach", `tools.quantified('a'.repeat(40) + '!')`],
    [
      'uniqueItems over 40 000 objects (quadratic)',
      `tools.unique(Array.from({ length: 40000 }, (_, i) => ({ i })))`,
    ],
  ])(
    'attack: a runaway schema check (%s) is stopped at its time limit, off the event loop',
    async (_, call) => {
      const started = performance.now()
      const health = (async () => {
        await new Promise((resolve) => setTimeout(resolve, 100))
        const at = performance.now()
        expect((await service.request('GET', '/healthz')).status).toBe(200)
        return performance.now() - at
      })()
      const record = await run(
        `let r; try { await ${call} } catch (e) { r = [e.code, e.message] } export default r`,
      )
      expect(record.result[0]).toBe('TOOL_INPUT_INVALID')
      expect(record.result[1]).toContain('took longer than 250 ms')
      expect(performance.now() - started).toBeLessThan(limits.wallMs)
      // The service answered other requests while the check ran.
      expect(await health).toBeLessThan(200)
    },
  )

  it('attack: a pattern the linear engine cannot run (a backreference) is refused, not run', async () => {
    const record = await run(
      `let r; try { await tools.backref('a'.repeat(40) + '!') } catch (e) { r = [e.code, e.message] } export default r`,
    )
    expect(record.result[0]).toBe('TOOL_INPUT_INVALID')
    expect(record.result[1]).toContain('backreferences or lookarounds are not supported')
  })

  it('a tool runs under its own sandbox: kv it grants, the caller does not have', async () => {
    const record = await run(`export default [typeof kv, await tools.counter({}), await tools.counter({})]`)
    expect(record.result).toEqual(['undefined', 1, 2])
  })

  it('records the tool execution and audits the call with its decision and rule', async () => {
    const record = await run(`export default await tools.double({ n: 21 })`)
    const audit = await service.request('GET', `/v1/audit?execution=${record.id}&kind=binding`)
    expect(audit.status).toBe(200)
    const [call] = audit.body.records
    expect(call).toMatchObject({
      kind: 'binding.tools.call',
      decision: 'allow',
      code: 'ALLOWED',
      rule: 'profiles/toolbox#/tools/0',
      detail: { tool: 'double', status: 'ok' },
    })
    const child = await service.request('GET', `/v1/executions/${call.detail.execution}`)
    expect(child.body).toMatchObject({ status: 'ok', result: 42, agent: 'tooler' })
  })
})
