import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type RecordingServer, startRecordingServer } from './helpers/egress.ts'
import { startTestServer, TEST_TOKEN, type TestServer } from './helpers/server.ts'

// The agent as an MCP server, driven by the official MCP TypeScript SDK client over Streamable HTTP.

let t: TestServer
let upstream: RecordingServer
const clients: Client[] = []

beforeAll(async () => {
  upstream = await startRecordingServer()
  t = await startTestServer()
  const profile = await t.request('PUT', '/v1/profiles/mcp-agent', {
    body: {
      engines: ['quickjs'],
      languages: ['javascript'],
      limits: { cpuMs: 300, wallMs: 1500, memoryMb: 32, outputBytes: 65_536, bindingCalls: 20 },
      network: {
        allow: [{ host: '127.0.0.1', schemes: ['http'], ports: [upstream.port], methods: ['GET'] }],
        allowPrivateAddresses: true,
      },
      tools: ['add', 'shout'],
    },
  })
  expect(profile.status).toBe(200)
  const agent = await t.request('PUT', '/v1/agents/mcp-agent', {
    body: {
      sandbox: 'mcp-agent',
      tools: [
        {
          name: 'add',
          description: 'adds two numbers',
          input: {
            type: 'object',
            properties: { a: { type: 'number' }, b: { type: 'number' } },
            required: ['a', 'b'],
            additionalProperties: false,
          },
          language: 'javascript',
          code: `export default ({ a, b }) => { console.log('adding'); return { sum: a + b } }`,
        },
        {
          name: 'shout',
          description: 'takes a string, not an object',
          input: { type: 'string', maxLength: 20 },
          language: 'javascript',
          code: `export default (word) => word.toUpperCase()`,
        },
      ],
    },
  })
  expect(agent.status).toBe(200)
})

afterAll(async () => {
  for (const client of clients) await client.close()
  await t?.close()
  await upstream?.close()
})

async function connect(agent = 'mcp-agent', token: string | null = TEST_TOKEN): Promise<Client> {
  const transport = new StreamableHTTPClientTransport(new URL(`${t.server.url}/mcp/${agent}`), {
    requestInit: { headers: token === null ? {} : { authorization: `Bearer ${token}` } },
  })
  const client = new Client({ name: 'cordon-test', version: '1.0.0' })
  await client.connect(transport)
  clients.push(client)
  return client
}

const text = (result: Awaited<ReturnType<Client['callTool']>>) =>
  (result.content as { type: string; text: string }[]).map((item) => item.text).join('\n')

describe('MCP at /mcp/{agent}', () => {
  it("lists the agent's tools with their schemas, and execute_code", async () => {
    const client = await connect()
    const { tools } = await client.listTools()
    expect(tools.map((tool) => tool.name)).toEqual(['add', 'shout', 'execute_code'])
    expect(tools[0]).toMatchObject({
      description: 'adds two numbers',
      inputSchema: { type: 'object', required: ['a', 'b'] },
    })
    // MCP tools take an object: a string input is wrapped as { input }.
    expect(tools[1]?.inputSchema).toEqual({
      type: 'object',
      properties: { input: { type: 'string', maxLength: 20 } },
      required: ['input'],
      additionalProperties: false,
    })
    expect(tools[2]?.inputSchema).toMatchObject({
      type: 'object',
      properties: { language: { enum: ['javascript'] } },
      required: ['language', 'code'],
    })
  })

  it('calls a declared tool: its result as text, the execution record as structured content', async () => {
    const client = await connect()
    const result = await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } })
    expect(result.isError).toBeFalsy()
    expect(text(result)).toBe('{"sum":5}\nstdout:\nadding\n')
    expect(result.structuredContent).toMatchObject({ status: 'ok', result: { sum: 5 }, agent: 'mcp-agent' })
    // The same execution the HTTP API keeps.
    const id = (result.structuredContent as { id: string }).id
    expect((await t.request('GET', `/v1/executions/${id}`)).body).toEqual(result.structuredContent)
  })

  it('calls a tool whose input is not an object through its { input } wrapper', async () => {
    const client = await connect()
    const result = await client.callTool({ name: 'shout', arguments: { input: 'hey' } })
    expect(result).toMatchObject({ structuredContent: { status: 'ok', result: 'HEY' } })
    const tooLong = await client.callTool({ name: 'shout', arguments: { input: 'x'.repeat(21) } })
    expect(tooLong).toMatchObject({
      isError: true,
      structuredContent: { error: { code: 'VALIDATION_FAILED' } },
    })
  })

  it('runs code with execute_code under the agent profile, its fetch included', async () => {
    const client = await connect()
    const result = await client.callTool({
      name: 'execute_code',
      arguments: {
        language: 'javascript',
        code: `export default async ({ url }) => (await fetch(url)).json()`,
        input: { url: `http://127.0.0.1:${upstream.port}/hello` },
      },
    })
    expect(result.isError).toBeFalsy()
    expect(result.structuredContent).toMatchObject({ status: 'ok', result: { method: 'GET', url: '/hello' } })
  })

  it('a denied egress is a tool error naming the refusal, not a transport failure', async () => {
    const client = await connect()
    const result = await client.callTool({
      name: 'execute_code',
      arguments: {
        language: 'javascript',
        code: `export default await fetch('http://169.254.169.254/latest/meta-data/')`,
      },
    })
    expect(result.isError).toBe(true)
    expect(text(result)).toContain('EGRESS_DENIED')
    expect(result.structuredContent).toMatchObject({ status: 'error', error: { code: 'GUEST_EXCEPTION' } })
  })

  it('a runaway program ends at the profile limit as a tool error', async () => {
    const client = await connect()
    const result = await client.callTool({
      name: 'execute_code',
      arguments: { language: 'javascript', code: 'while (true) {}' },
    })
    expect(result.isError).toBe(true)
    expect(result.structuredContent).toMatchObject({ status: 'timeout' })
    expect(text(result)).toMatch(/^(CPU|WALL)_TIME_LIMIT: /)
  })

  it('answers refusals and bad input as tool errors: schema, unknown tool, language the profile refuses', async () => {
    const client = await connect()
    const invalid = await client.callTool({ name: 'add', arguments: { a: 'two', b: 3 } })
    expect(invalid.isError).toBe(true)
    expect(text(invalid)).toMatch(/^VALIDATION_FAILED: .*\$\.a/)
    const unknown = await client.callTool({ name: 'drop_tables', arguments: {} })
    expect(unknown).toMatchObject({ isError: true, structuredContent: { error: { code: 'TOOL_NOT_FOUND' } } })
    const python = await client.callTool({
      name: 'execute_code',
      arguments: { language: 'python', code: 'print(1)' },
    })
    expect(python).toMatchObject({
      isError: true,
      structuredContent: { error: { code: 'LANGUAGE_NOT_ALLOWED' } },
    })
    const extra = await client.callTool({
      name: 'execute_code',
      arguments: { language: 'javascript', code: '1', sneaky: true },
    })
    expect(extra).toMatchObject({
      isError: true,
      structuredContent: { error: { code: 'VALIDATION_FAILED' } },
    })
  })

  it('takes the same bearer tokens: none or a wrong one is refused before MCP starts', async () => {
    await expect(connect('mcp-agent', null)).rejects.toThrow(/401|Unauthorized|UNAUTHENTICATED/)
    await expect(connect('mcp-agent', 'not-a-real-token-at-all')).rejects.toThrow(
      /401|Unauthorized|UNAUTHENTICATED/,
    )
    await expect(connect('no-such-agent')).rejects.toThrow(/404|AGENT_NOT_FOUND/)
  })

  it.each([
    ['another site', 'http://evil.example'],
    // DNS rebinding: the page's origin and the Host header name the same (rebound) host.
    ['the same origin after DNS rebinding', 'SELF'],
  ])('attack: a web page (%s) driving the endpoint with a token is refused', async (_, origin) => {
    const self = new URL(t.server.url)
    const response = await fetch(`${t.server.url}/mcp/mcp-agent`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TEST_TOKEN}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        origin: origin === 'SELF' ? self.origin : origin,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    })
    expect(response.status).toBe(403)
    expect(await response.json()).toMatchObject({ error: { code: 'FORBIDDEN' } })
  })
})
