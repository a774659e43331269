import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type ScriptedModel, type ScriptedTurn, startScriptedModel } from './helpers/scripted-model.ts'
import { type Body, startTestServer, type TestServer } from './helpers/server.ts'

// Agent runs end to end: the real service, its real OpenAI-compatible provider (the AI SDK's) talking
// HTTP to a scripted model in this process, real QuickJS executions for tools and model-written
// code. Each test scripts the model's turns and asserts what the run did and what the model was told.

let t: TestServer
let model: ScriptedModel
/** The turns the next requests get, by the agent they came for (the system prompt names it). */
const scripts = new Map<string, ScriptedTurn[]>()

const PROFILE = `name: helper-sandbox
extends: tool-runner
engines: [quickjs]
tools: [add]
`

const AGENT = `name: helper
model: openai-compatible/scripted-1
sandbox: helper-sandbox
instructions: You are helper. You add numbers.
tools:
  - name: add
    description: Adds two numbers
    input: { type: object, properties: { a: { type: number }, b: { type: number } }, required: [a, b] }
    language: javascript
    code: |
      export default async ({ a, b }) => { await kv.set('added', a + b); return a + b }
  - name: wipe
    description: Deletes everything
    input: { type: object }
    language: javascript
    code: |
      export default async () => { await kv.set('wiped', true); return 'wiped' }
skills:
  - name: careful-math
    description: Checks sums twice.
    allowed-tools: add
    body: Always add twice and compare the results.
budget: { steps: 4, tokens: 10000, wallMs: 60000, maxOutputTokens: 6000 }
`

function agentOf(request: { body: Body }): string {
  const system = request.body.messages.find((m: { role: string }) => m.role === 'system')?.content ?? ''
  return /You are (\w[\w-]*)/.exec(system)?.[1] ?? 'unknown'
}

async function run(agent: string, message: string, extra: Record<string, unknown> = {}) {
  return t.request('POST', `/v1/agents/${agent}/runs`, { body: { message, ...extra } })
}

beforeAll(async () => {
  model = await startScriptedModel((request) => {
    const turns = scripts.get(agentOf(request))
    return turns?.shift() ?? { text: 'the script ran out' }
  })
  t = await startTestServer({ models: { baseURLs: { 'openai-compatible': model.url } } })
  for (const [path, source] of [
    ['/v1/profiles/helper-sandbox', PROFILE],
    ['/v1/agents/helper', AGENT],
  ] as const) {
    const put = await t.request('PUT', path, { raw: source, contentType: 'application/yaml' })
    expect(put.status, JSON.stringify(put.body)).toBe(200)
  }
})
afterAll(async () => {
  await t.close()
  await model.close()
})

describe('agent runs', () => {
  it('calls two tools, one denied by the policy, and answers with the model’s final text', async () => {
    scripts.set('helper', [
      {
        text: 'Adding, then wiping.',
        toolCalls: [
          { name: 'add', input: { a: 2, b: 3 } },
          { name: 'wipe', input: {} },
        ],
      },
      { text: 'The sum is 5. I was not allowed to wipe.' },
    ])
    const before = model.requests.length
    const { status, body } = await run('helper', 'add 2 and 3, then wipe')
    expect(status, JSON.stringify(body)).toBe(200)
    expect(body).toMatchObject({
      agent: 'helper',
      status: 'completed',
      output: 'The sum is 5. I was not allowed to wipe.',
      usage: { steps: 2, toolCalls: 2, inputTokens: 20, outputTokens: 10 },
    })
    const tools = body.steps.filter((step: Body) => step.kind === 'tool')
    expect(tools[0]).toMatchObject({ call: { name: 'add' }, decision: { effect: 'allow' }, ok: true })
    expect(tools[0].output).toMatchObject({ status: 'ok', result: 5 })
    expect(tools[1]).toMatchObject({
      call: { name: 'wipe' },
      decision: { effect: 'deny', code: 'TOOL_NOT_ALLOWED', rule: 'profiles/helper-sandbox#/tools' },
      ok: false,
      execution: null,
    })
    // The model was told both outcomes, by call id.
    const second = model.requests[before + 1]?.body
    const toolMessages = second.messages.filter((m: Body) => m.role === 'tool')
    expect(toolMessages.map((m: Body) => JSON.parse(m.content))).toEqual([
      expect.objectContaining({ status: 'ok', result: 5 }),
      expect.objectContaining({ code: 'TOOL_NOT_ALLOWED' }),
    ])
    // The denied tool never ran: its kv write is not there (read through an execution of the agent).
    const check = await t.request('POST', '/v1/agents/helper/executions', {
      body: { language: 'javascript', code: `export default [await kv.get('added'), await kv.get('wiped')]` },
    })
    expect(check.body.result).toEqual([5, null])
    // The system prompt carried the instructions and the skill's name and description, not its body;
    // the tools offered were the declared ones, execute_code and activate_skill.
    const first = model.requests[before]?.body
    const system = first.messages[0].content as string
    expect(system).toContain('You are helper')
    expect(system).toContain('careful-math: Checks sums twice.')
    expect(system).not.toContain('Always add twice')
    expect(first.tools.map((tool: Body) => tool.function.name).sort()).toEqual([
      'activate_skill',
      'add',
      'execute_code',
      'wipe',
    ])
    // Audited: the run, the model's requests, each tool decision.
    const audit = await t.request('GET', '/v1/audit?agent=helper&limit=1000')
    const kinds = audit.body.records.map((item: Body) => `${item.kind}:${item.code}`)
    expect(kinds).toEqual(
      expect.arrayContaining([
        'run.start:STARTED',
        'model.request:ALLOWED',
        'run.tool:TOOL_NOT_ALLOWED',
        'run.end:COMPLETED',
      ]),
    )
  })

  it('runs code the model wrote (execute_code) under the agent profile, and tells the model the result', async () => {
    scripts.set('helper', [
      {
        toolCalls: [
          {
            name: 'execute_code',
            input: { language: 'javascript', code: 'export default (n) => n * 7', input: 6 },
          },
          { name: 'execute_code', input: { language: 'python', code: 'print(1)' } },
        ],
      },
      { text: 'It is 42.' },
    ])
    const before = model.requests.length
    const { body } = await run('helper', 'what is 6 times 7? compute it')
    expect(body).toMatchObject({ status: 'completed', output: 'It is 42.' })
    const [js, py] = body.steps.filter((step: Body) => step.kind === 'tool')
    expect(js).toMatchObject({
      ok: true,
      decision: { effect: 'allow' },
      output: { status: 'ok', result: 42 },
    })
    expect(js.execution).toMatch(/^ex_/)
    const execution = await t.request('GET', `/v1/executions/${js.execution}`)
    expect(execution.body).toMatchObject({ agent: 'helper', engine: 'quickjs', status: 'ok', result: 42 })
    // Python is not among the profile's languages: refused before anything ran, and the model is told.
    expect(py).toMatchObject({ ok: false, execution: null, output: { code: 'LANGUAGE_NOT_ALLOWED' } })
    const offered = model.requests[before]?.body.tools.find(
      (tool: Body) => tool.function.name === 'execute_code',
    )
    expect(offered.function.parameters.properties.language.enum).toEqual(['javascript', 'typescript'])
  })

  it('activates a skill on request: its body reaches the model, and its allowed-tools narrow what may be called', async () => {
    scripts.set('helper', [
      { toolCalls: [{ name: 'activate_skill', input: { name: 'careful-math' } }] },
      {
        toolCalls: [
          { name: 'add', input: { a: 1, b: 1 } },
          { name: 'execute_code', input: { language: 'javascript', code: 'export default 2' } },
        ],
      },
      { text: 'Two, checked.' },
    ])
    const before = model.requests.length
    const { body } = await run('helper', 'add 1 and 1 carefully')
    expect(body).toMatchObject({ status: 'completed', skills: ['careful-math'] })
    const tools = body.steps.filter((step: Body) => step.kind === 'tool')
    expect(tools[0]).toMatchObject({
      call: { name: 'activate_skill' },
      ok: true,
      output: { name: 'careful-math', instructions: 'Always add twice and compare the results.' },
    })
    expect(tools[1]).toMatchObject({ call: { name: 'add' }, ok: true })
    expect(tools[2]).toMatchObject({
      call: { name: 'execute_code' },
      ok: false,
      decision: {
        effect: 'deny',
        code: 'SKILL_TOOL_NOT_ALLOWED',
        rule: 'agents/helper#/skills/0/allowed-tools',
      },
    })
    // The body reached the model only after activation.
    const second = JSON.stringify(model.requests[before + 1]?.body.messages)
    expect(second).toContain('Always add twice')
  })

  it('continues a conversation: the next run sends the earlier turns; an unknown one is 404', async () => {
    scripts.set('helper', [{ text: 'Noted: your number is 17.' }, { text: 'It was 17.' }])
    const first = await run('helper', 'remember 17')
    expect(first.body.conversation).toMatch(/^conv_/)
    const before = model.requests.length
    const second = await run('helper', 'what was my number?', { conversation: first.body.conversation })
    expect(second.body).toMatchObject({ status: 'completed', conversation: first.body.conversation })
    const messages = model.requests[before]?.body.messages.map((m: Body) => [m.role, m.content])
    expect(messages.slice(1)).toEqual([
      ['user', 'remember 17'],
      ['assistant', 'Noted: your number is 17.'],
      ['user', 'what was my number?'],
    ])
    const unknown = await run('helper', 'hi', { conversation: 'conv_nope' })
    expect(unknown.status).toBe(404)
    expect(unknown.body.error.code).toBe('CONVERSATION_NOT_FOUND')
  })

  it('streams a run as server-sent events: text deltas, tool calls with decisions, results, the final message', async () => {
    scripts.set('helper', [
      { text: 'Let me add.', toolCalls: [{ name: 'add', input: { a: 4, b: 4 } }] },
      { text: 'Eight it is.' },
    ])
    const response = await fetch(`${t.server.url}/v1/agents/helper/runs`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${t.server.adminToken}`,
        'content-type': 'application/json',
        accept: 'text/event-stream',
      },
      body: JSON.stringify({ message: 'add 4 and 4' }),
    })
    expect(response.headers.get('content-type')).toContain('text/event-stream')
    const events = parseEvents(await response.text())
    const names = events.map((event) => event.event)
    expect(names[0]).toBe('started')
    expect(names.at(-1)).toBe('end')
    // Text goes out in batches of 50 ms: at least one event per model call that wrote some.
    expect(names.filter((name) => name === 'text').length).toBeGreaterThanOrEqual(2)
    expect(
      events
        .filter((e) => e.event === 'text')
        .map((e) => e.data.delta)
        .join(''),
    ).toBe('Let me add.Eight it is.')
    expect(events.find((e) => e.event === 'tool_call')?.data).toMatchObject({
      name: 'add',
      input: { a: 4, b: 4 },
      decision: { effect: 'allow' },
    })
    expect(events.find((e) => e.event === 'tool_result')?.data).toMatchObject({
      ok: true,
      output: { result: 8 },
    })
    expect(events.find((e) => e.event === 'message')?.data).toEqual({ text: 'Eight it is.' })
    // Ids increase; the record can be read back, and its events replayed from the store.
    expect(events.map((e) => Number(e.id))).toEqual(events.map((_, i) => i + 1))
    const id = events[0]?.data.id
    const replay = await fetch(`${t.server.url}/v1/runs/${id}/events`, {
      headers: { authorization: `Bearer ${t.server.adminToken}` },
    })
    expect(parseEvents(await replay.text()).map((e) => e.event)).toContain('tool_result')
  })

  it('answers 202 at once with Prefer: respond-async; the run is then read by id', async () => {
    let release = () => {}
    scripts.set('helper', [{ text: 'done later', hold: new Promise<void>((resolve) => (release = resolve)) }])
    const started = await t.request('POST', '/v1/agents/helper/runs', {
      body: { message: 'slow' },
      headers: { prefer: 'respond-async' },
    })
    expect(started.status).toBe(202)
    expect(started.body).toMatchObject({ status: 'running' })
    // A second run in the same conversation waits its turn.
    const busy = await run('helper', 'again', { conversation: started.body.conversation })
    expect(busy.status).toBe(409)
    expect(busy.body.error.code).toBe('CONVERSATION_BUSY')
    release()
    await until(
      async () => (await t.request('GET', `/v1/runs/${started.body.id}`)).body.status === 'completed',
    )
    expect((await t.request('GET', `/v1/runs/${started.body.id}`)).body.output).toBe('done later')
  })
})

describe('run budgets', () => {
  it('stops at the step budget when the model keeps calling tools', async () => {
    const loop = Array.from({ length: 10 }, () => ({ toolCalls: [{ name: 'add', input: { a: 1, b: 2 } }] }))
    scripts.set('helper', loop)
    const before = model.requests.length
    const { body } = await run('helper', 'loop forever')
    expect(body).toMatchObject({
      status: 'budget_exceeded',
      error: { code: 'STEP_BUDGET' },
      usage: { steps: 4 },
    })
    expect(model.requests.length - before).toBe(4)
  })

  it('stops at the token budget', async () => {
    scripts.set('helper', [
      { toolCalls: [{ name: 'add', input: { a: 1, b: 2 } }], usage: { input: 6000, output: 4500 } },
      { text: 'never asked' },
    ])
    const before = model.requests.length
    const { body } = await run('helper', 'spend tokens')
    expect(body).toMatchObject({
      status: 'budget_exceeded',
      error: { code: 'TOKEN_BUDGET' },
      usage: { steps: 1, inputTokens: 6000, outputTokens: 4500 },
    })
    expect(model.requests.length - before).toBe(1)
    // The model was asked for at most the declared output per call (less than what the budget had left).
    expect(model.requests[before]?.body.max_tokens).toBe(6000)
  })

  it('stops at the wall-time budget, even in the middle of a model call', async () => {
    const put = await t.request('PUT', '/v1/agents/hasty', {
      raw: AGENT.replace('name: helper', 'name: hasty')
        .replace('You are helper', 'You are hasty')
        .replace('wallMs: 60000', 'wallMs: 1000'),
      contentType: 'application/yaml',
    })
    expect(put.status, JSON.stringify(put.body)).toBe(200)
    scripts.set('hasty', [{ text: 'too late', hold: new Promise((resolve) => setTimeout(resolve, 4000)) }])
    const { body } = await run('hasty', 'take your time')
    expect(body).toMatchObject({ status: 'budget_exceeded', error: { code: 'TIME_BUDGET' }, output: null })
    expect(body.usage.wallMs).toBeLessThan(3000)
  })
})

describe('run requests that are refused', () => {
  it('refuses bad bodies, agents without a usable model, and unknown runs', async () => {
    const extra = await t.request('POST', '/v1/agents/helper/runs', {
      body: { message: 'hi', temperature: 2 },
    })
    expect([extra.status, extra.body.error.code]).toEqual([422, 'VALIDATION_FAILED'])
    const empty = await t.request('POST', '/v1/agents/helper/runs', { body: { message: '' } })
    expect(empty.status).toBe(422)
    const malformed = await t.request('POST', '/v1/agents/helper/runs', { raw: '{"message":' })
    expect(malformed.status).toBe(400)
    const none = await t.request('POST', '/v1/agents/nobody/runs', { body: { message: 'hi' } })
    expect([none.status, none.body.error.code]).toEqual([404, 'AGENT_NOT_FOUND'])
    // The example agent names Anthropic, and no key is stored or configured: 422 saying where one goes.
    const keyless = await t.request('POST', '/v1/agents/example/runs', { body: { message: 'hi' } })
    expect([keyless.status, keyless.body.error.code]).toEqual([422, 'MODEL_UNAVAILABLE'])
    expect(keyless.body.error.message).toContain('ANTHROPIC_API_KEY')
    const unknown = await t.request('GET', '/v1/runs/run_nothing')
    expect([unknown.status, unknown.body.error.code]).toEqual([404, 'RUN_NOT_FOUND'])
    const cancel = await t.request('POST', '/v1/runs/run_nothing/cancel')
    expect(cancel.status).toBe(404)
  })

  it('reports a failing provider as a failed run whose message holds nothing the provider sent', async () => {
    scripts.set('helper', [{ status: 500 }, { status: 500 }, { status: 500 }])
    const { status, body } = await run('helper', 'fail please')
    expect(status).toBe(200)
    expect(body).toMatchObject({ status: 'failed', error: { code: 'MODEL_ERROR' } })
    expect(body.error.message).toContain('500')
    expect(body.error.message).not.toContain('scripted failure')
  })

  it('sends the tenant’s stored key to the provider, never to guest code or the audit log', async () => {
    const key = 'sk-compatible-secret-0123456789'
    expect(
      (await t.request('PUT', '/v1/secrets/OPENAI_COMPATIBLE_API_KEY', { body: { value: key } })).status,
    ).toBeLessThan(300)
    scripts.set('helper', [
      {
        toolCalls: [
          {
            name: 'execute_code',
            input: {
              language: 'javascript',
              code: 'export default [typeof process, typeof secrets, Object.keys(globalThis).join(",")]',
            },
          },
        ],
      },
      { text: 'ok' },
    ])
    const before = model.requests.length
    const { body } = await run('helper', 'look for keys')
    expect(model.requests[before]?.authorization).toBe(`Bearer ${key}`)
    expect(JSON.stringify(body)).not.toContain(key)
    const audit = await t.request('GET', '/v1/audit?limit=1000')
    expect(JSON.stringify(audit.body)).not.toContain(key)
    expect(body.steps[1].output.result[0]).toBe('undefined')
    expect((await t.request('DELETE', '/v1/secrets/OPENAI_COMPATIBLE_API_KEY')).status).toBeLessThan(300)
  })

  it('cancels a running run: it ends as cancelled', async () => {
    scripts.set('helper', [{ text: 'never', hold: new Promise((resolve) => setTimeout(resolve, 3000)) }])
    const started = await t.request('POST', '/v1/agents/helper/runs', {
      body: { message: 'wait' },
      headers: { prefer: 'respond-async' },
    })
    const cancelled = await t.request('POST', `/v1/runs/${started.body.id}/cancel`)
    expect(cancelled.body).toMatchObject({ status: 'cancelled', error: { code: 'CANCELLED' } })
    const again = await t.request('POST', `/v1/runs/${started.body.id}/cancel`)
    expect([again.status, again.body.error.code]).toEqual([409, 'RUN_NOT_RUNNING'])
  })
})

function parseEvents(text: string): { id: string; event: string; data: Body }[] {
  return text
    .split('\n\n')
    .filter((block) => block.includes('data:'))
    .map((block) => {
      const field = (name: string) =>
        block
          .split('\n')
          .find((line) => line.startsWith(`${name}:`))
          ?.slice(name.length + 1)
          .trim() ?? ''
      return { id: field('id'), event: field('event'), data: JSON.parse(field('data')) }
    })
}

async function until(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

describe('the README path: the example agent on Anthropic with one environment variable', () => {
  it('runs the example agent with the operator key from ANTHROPIC_API_KEY, code written and executed', async () => {
    const { modelSettingsFrom } = await import('@cordon/gateway')
    const settings = modelSettingsFrom({
      ANTHROPIC_API_KEY: 'sk-ant-operator',
      CORDON_ANTHROPIC_URL: `${model.url}`,
    })
    expect(settings.keys).toEqual({ anthropic: 'sk-ant-operator' })
    const example = await startTestServer({ models: settings })
    try {
      scripts.set('unknown', [
        {
          text: 'Computing.',
          toolCalls: [
            { name: 'execute_code', input: { language: 'javascript', code: 'export default 17 * 23' } },
          ],
        },
        { text: '17 × 23 = 391.' },
      ])
      const before = model.requests.length
      const { status, body } = await example.request('POST', '/v1/agents/example/runs', {
        body: { message: 'What is 17 * 23? Compute it with code.' },
      })
      expect(status, JSON.stringify(body)).toBe(200)
      expect(body).toMatchObject({
        status: 'completed',
        output: '17 × 23 = 391.',
        model: 'anthropic/claude-sonnet-4-6',
      })
      expect(body.steps[1]).toMatchObject({
        call: { name: 'execute_code' },
        output: { status: 'ok', result: 391 },
      })
      const sent = model.requests[before]
      expect(sent?.path).toBe('/v1/messages')
      expect(sent?.body.model).toBe('claude-sonnet-4-6')
      expect(sent?.body.system).toEqual([
        expect.objectContaining({ text: expect.stringContaining('arithmetic') }),
      ])
    } finally {
      await example.close()
    }
  })
})

describe('a run across a graceful restart', () => {
  it('is left running by the stop and resumed by the next start, the unanswered model call made again', async () => {
    scripts.set('helper', [
      { text: 'lost to the stop', hold: new Promise((resolve) => setTimeout(resolve, 1500)) },
      { text: 'answered after the restart' },
    ])
    const before = model.requests.length
    const started = await t.request('POST', '/v1/agents/helper/runs', {
      body: { message: 'survive a restart' },
      headers: { prefer: 'respond-async' },
    })
    expect(started.status).toBe(202)
    await until(async () => model.requests.length > before)
    await t.restart()
    await until(async () => (await t.request('GET', `/v1/runs/${started.body.id}`)).body.status !== 'running')
    const { body } = await t.request('GET', `/v1/runs/${started.body.id}`)
    expect(body).toMatchObject({
      status: 'completed',
      output: 'answered after the restart',
      resumed: 1,
      usage: { steps: 1 },
    })
    expect(model.requests.length - before).toBe(2)
  })
})
