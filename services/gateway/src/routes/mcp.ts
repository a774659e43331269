import { CordonError, ErrorCode, type ExecutionRecord, type JsonValue, LANGUAGES } from '@cordon/contracts'
import type { Harness } from '@cordon/harness'
import { Server } from '@modelcontextprotocol/sdk/server/index.js'
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js'
import {
  CallToolRequestSchema,
  type CallToolResult,
  ListToolsRequestSchema,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js'
import { Hono } from 'hono'
import { type Env, nameParam, requireScope } from '../http.ts'
import { validated } from '../validate.ts'
import { ExecuteBody } from './agents.ts'

/** The code-execution tool every agent's MCP server offers beside the agent's own tools. */
export const EXECUTE_CODE = 'execute_code'

/**
 * `/mcp/{agent}`: the agent as an MCP server (Streamable HTTP, stateless: every POST is a whole
 * exchange, answered as JSON). `tools/list` lists the agent's declared tools with their input
 * schemas, and `execute_code`; `tools/call` runs them under the agent's profile exactly as the HTTP
 * API does (`POST .../tools/{tool}`, `POST .../executions`). Whatever goes wrong with a call (a
 * refusal, invalid input, a guest error, a timeout) is a tool result with `isError`, never a
 * transport failure. Bearer tokens with the `invoke` scope, as for the HTTP API.
 */
export function mcpRoutes(harness: Harness, maxBodyBytes: number): Hono<Env> {
  const app = new Hono<Env>()
  app.all('/:name', async (c) => {
    const { tenant } = requireScope(c, 'invoke')
    const agent = nameParam(c, 'name')
    // A browser page must not drive this with a user's credentials (DNS rebinding, cross-site).
    const origin = c.req.header('origin')
    if (origin !== undefined && !sameOrigin(origin, c.req.url, c.req.header('host'))) {
      throw new CordonError(ErrorCode.FORBIDDEN, 'requests from another origin are refused')
    }
    // The agent must exist before anything is said about it.
    harness.getAgent(tenant, agent)
    const server = agentServer(harness, tenant, agent, c.req.raw.signal)
    const transport = new WebStandardStreamableHTTPServerTransport({
      // No sessionIdGenerator: stateless, nothing kept between requests.
      enableJsonResponse: true,
      maxRequestBodySize: maxBodyBytes,
    })
    await server.connect(transport)
    try {
      return await transport.handleRequest(c.req.raw)
    } finally {
      void server.close()
    }
  })
  return app
}

/** The MCP server of one agent, for one request. */
function agentServer(harness: Harness, tenant: string, agent: string, signal: AbortSignal): Server {
  const server = new Server({ name: `cordon-${agent}`, version: '1.0.0' }, { capabilities: { tools: {} } })
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: listTools(harness, tenant, agent) }))
  server.setRequestHandler(CallToolRequestSchema, async (request) => {
    const { name, arguments: args = {} } = request.params
    try {
      const declared = harness.listTools(tenant, agent).some((tool) => tool.name === name)
      if (declared)
        return answer(await harness.invokeTool(tenant, agent, name, args as JsonValue, { signal }))
      if (name !== EXECUTE_CODE) {
        throw new CordonError(ErrorCode.TOOL_NOT_FOUND, `agent "${agent}" has no tool "${name.slice(0, 64)}"`)
      }
      const body = validated(ExecuteBody, args, `${EXECUTE_CODE} arguments`)
      const record = await harness.execute(
        tenant,
        agent,
        { language: body.language, code: body.code, input: body.input ?? null, engine: body.engine },
        { signal },
      )
      return answer(record)
    } catch (error) {
      if (error instanceof CordonError) {
        const { code, message, issues } = error
        return failure(`${code}: ${message}`, {
          error: { code, message, ...(issues === undefined ? {} : { issues }) },
        })
      }
      throw error
    }
  })
  return server
}

/** The agent's tools (their input schema as declared), then `execute_code` unless a tool has its name. */
function listTools(harness: Harness, tenant: string, agent: string): Tool[] {
  const declared = harness.listTools(tenant, agent)
  const tools: Tool[] = declared.map((tool) => ({
    name: tool.name,
    ...(tool.description === null ? {} : { description: tool.description }),
    inputSchema: objectSchema(tool.input),
  }))
  if (declared.some((tool) => tool.name === EXECUTE_CODE)) return tools
  const { profile } = harness.profilesFor(tenant, harness.getAgent(tenant, agent))
  tools.push({
    name: EXECUTE_CODE,
    description: `Runs code as the agent "${agent}", in a sandbox under its profile "${profile.name}" (languages: ${profile.languages.join(', ')}; engines: ${profile.engines.join(', ')}; wall time ${profile.limits.wallMs} ms). JavaScript and TypeScript: an ES module whose default export is the result (a function is called with input). Python and bash: a command; its stdout is the output.`,
    inputSchema: {
      type: 'object',
      properties: {
        language: {
          type: 'string',
          enum: LANGUAGES.filter((language) => profile.languages.includes(language)),
        },
        code: { type: 'string', description: 'the program' },
        input: { description: 'any JSON value, given to the program' },
        engine: { type: 'string', enum: [...profile.engines] },
      },
      required: ['language', 'code'],
      additionalProperties: false,
    },
  })
  return tools
}

/** MCP wants an object schema for a tool's input; a declared schema of another type is wrapped as it is. */
function objectSchema(schema: Record<string, unknown>): Tool['inputSchema'] {
  return schema.type === 'object' ? (schema as Tool['inputSchema']) : { type: 'object', ...schema }
}

/** An execution as a tool result: its result as text (and its output), the whole record as structured content. */
function answer(record: ExecutionRecord): CallToolResult {
  const structuredContent = record as unknown as Record<string, unknown>
  if (record.status !== 'ok') {
    const error = record.error ?? { code: record.status.toUpperCase(), message: record.status }
    return failure(`${error.code}: ${error.message}`, structuredContent, output(record))
  }
  return {
    content: [{ type: 'text', text: JSON.stringify(record.result) }, ...output(record)],
    structuredContent,
  }
}

/** The execution's stdout and stderr, each as a text item when there is any. */
function output(record: ExecutionRecord): CallToolResult['content'] {
  const content: CallToolResult['content'] = []
  if (record.stdout.length > 0) content.push({ type: 'text', text: `stdout:\n${record.stdout}` })
  if (record.stderr.length > 0) content.push({ type: 'text', text: `stderr:\n${record.stderr}` })
  return content
}

function failure(
  text: string,
  structuredContent: Record<string, unknown>,
  more: CallToolResult['content'] = [],
): CallToolResult {
  return { isError: true, content: [{ type: 'text', text }, ...more], structuredContent }
}

/** Whether `origin` is the origin the request was sent to. */
function sameOrigin(origin: string, url: string, host: string | undefined): boolean {
  try {
    const from = new URL(origin)
    const to = new URL(url)
    return from.protocol === to.protocol && from.host === (host ?? to.host)
  } catch {
    return false
  }
}
