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
import { ExecuteBody, executeRequest } from './agents.ts'

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
    // No web page may drive an agent (cross-site, or its own origin after DNS rebinding): browsers
    // send an Origin header, MCP clients do not.
    if (c.req.header('origin') !== undefined) {
      throw new CordonError(
        ErrorCode.FORBIDDEN,
        'requests from a web page (with an Origin header) are refused',
      )
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
      const declared = harness.listTools(tenant, agent).find((tool) => tool.name === name)
      if (declared !== undefined) {
        // A tool whose input is not an object was listed with it wrapped as { input }.
        const input = (isObjectSchema(declared.input) ? args : args.input) as JsonValue | undefined
        return answer(await harness.invokeTool(tenant, agent, name, input ?? null, { signal }))
      }
      if (name !== EXECUTE_CODE) {
        throw new CordonError(ErrorCode.TOOL_NOT_FOUND, `agent "${agent}" has no tool "${name.slice(0, 64)}"`)
      }
      const body = validated(ExecuteBody, args, `${EXECUTE_CODE} arguments`)
      return answer(await harness.execute(tenant, agent, executeRequest(body), { signal }))
    } catch (error) {
      if (error instanceof CordonError) {
        const { code, message, issues } = error
        return failure(`${code}: ${message}`, {
          error: { code, message, ...(issues === undefined ? {} : { issues }) },
        })
      }
      // Not the client's doing: said without the host's details, and logged for the operator.
      console.error(`cordon: MCP tools/call failed: ${error instanceof Error ? error.name : 'error'}`)
      return failure('INTERNAL: the call failed', {
        error: { code: ErrorCode.INTERNAL, message: 'the call failed' },
      })
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
    inputSchema: isObjectSchema(tool.input)
      ? (tool.input as Tool['inputSchema'])
      : {
          type: 'object',
          properties: { input: tool.input },
          required: ['input'],
          additionalProperties: false,
        },
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
        files: {
          type: 'array',
          description: 'container engine: files put into /workspace first',
          items: {
            type: 'object',
            properties: {
              path: { type: 'string' },
              content: { type: 'string' },
              encoding: { type: 'string', enum: ['utf8', 'base64'] },
            },
            required: ['path', 'content'],
          },
        },
      },
      required: ['language', 'code'],
      additionalProperties: false,
    },
  })
  return tools
}

/** MCP tools take an object: a tool declared with another input is listed with it wrapped as { input }. */
function isObjectSchema(schema: Record<string, unknown>): boolean {
  return schema.type === 'object'
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
