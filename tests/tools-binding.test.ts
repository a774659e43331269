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
    tools: ['double', 'recurse', 'spin', 'pattern', 'backref', 'quantified', 'unique', 'counter', 'hog'],
  })
  // Isolate agents: their guests run off the worker's main thread, which stays free meanwhile.
  await put('/v1/profiles/bystander', { engines: ['isolate'], languages: ['javascript'], limits })
  await put('/v1/agents/bystander', { sandbox: 'bystander' })
  await put('/v1/profiles/v8-caller', {
    engines: ['isolate'],
    languages: ['javascript'],
    limits,
    tools: ['hog'],
  })
  await put('/v1/agents/v8-caller', {
    sandbox: 'v8-caller',
    tools: [tool('hog', 'const a = []\nwhile (true) a.push(new Array(1000).fill(1))')],
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
      // Defeats isolated-vm's own limits: the worker it runs in retires itself.
      tool(
        'hog',
        'const a = []\nwhile (true) a.push(new Array(1000).fill(1))',
        { type: 'object' },
        { sandbox: { engines: ['isolate'], languages: ['javascript'], limits: { ...limits, memoryMb: 16 } } },
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
      ['backref', 'call', 'counter', 'double', 'hog', 'pattern', 'quantified', 'recurse', 'spin', 'unique'],
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

  it('attack: a tool left running by its caller retires the worker without killing the job queued next', async () => {
    // Found in review: the worker started the next job while an aborted tool of the previous one still
    // ran, and the tool's retirement killed that job (or its memory was charged to it). One worker: the
    // next job is necessarily there. The caller and the next job run on isolates, so the worker's
    // main thread is free to find the tool stuck while they run.
    const parent = service.execute(
      "tools.hog({}).catch(() => {})\nconst until = Date.now() + 250\nwhile (Date.now() < until) {}\nexport default 'parent'",
      {},
      'v8-caller',
    )
    await new Promise((resolve) => setTimeout(resolve, 20))
    // Busy long enough to still run when the tool's thread is found stuck and the worker retires.
    const next = service.execute(
      'const until = Date.now() + 400\nwhile (Date.now() < until) {}\nexport default 42',
      {},
      'bystander',
    )
    expect((await parent).body).toMatchObject({ status: 'ok', result: 'parent' })
    expect((await next).body).toMatchObject({ status: 'ok', result: 42 })
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
