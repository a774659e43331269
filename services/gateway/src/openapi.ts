import {
  ENGINES,
  ErrorCode,
  EXECUTION_STATUSES,
  GuestErrorCode,
  LANGUAGES,
  RUN_STATUSES,
  RunErrorCode,
} from '@cordon/contracts'
import { AgentSchema, ProfileSchema } from '@cordon/policy'
import { z } from 'zod'
import { ExecuteBody, InvokeToolBody } from './routes/agents.ts'
import { RunBody } from './routes/runs.ts'
import { SessionExecuteBody } from './routes/sessions.ts'

const json = (schema: z.ZodType) => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, {
    io: 'input',
    unrepresentable: 'any',
  }) as Record<string, unknown>
  return rest
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` })
const content = (name: string) => ({ 'application/json': { schema: ref(name) } })
/** An execution's server-sent events (see `GET /v1/executions/{id}/events`). */
const EVENT_STREAM = {
  'text/event-stream': {
    schema: { type: 'string', description: 'server-sent events: started, stdout, stderr, end' },
  },
}
/** A run's server-sent events (see `GET /v1/runs/{id}/events`). */
const RUN_EVENT_STREAM = {
  'text/event-stream': {
    schema: {
      type: 'string',
      description: 'server-sent events: started, text, step, tool_call, tool_result, message, end',
    },
  },
}
const errors = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((s) => [String(s), { description: 'error', content: content('Error') }]))
const nameParam = (what: string) => ({
  name: 'name',
  in: 'path',
  required: true,
  description: `${what} name`,
  schema: { type: 'string' },
})
const documentBody = (schema: string, markdown: boolean) => ({
  required: true,
  content: {
    'application/json': { schema: ref(schema) },
    'application/yaml': { schema: ref(schema) },
    ...(markdown
      ? { 'text/markdown': { schema: { type: 'string', description: 'YAML front matter + instructions' } } }
      : {}),
  },
})

/** The OpenAPI 3.1 description of the HTTP API, built from the same zod schemas that validate requests. */
export function openAPIDocument(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Cordon',
      version: '1',
      description:
        'Secure execution service for AI agents. Every /v1 route needs `Authorization: Bearer <token>`.',
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Profile: json(ProfileSchema),
        Agent: json(AgentSchema),
        ExecuteRequest: json(ExecuteBody),
        ExecutionRecord: {
          type: 'object',
          required: [
            'id',
            'agent',
            'engine',
            'language',
            'status',
            'result',
            'stdout',
            'stderr',
            'error',
            'usage',
          ],
          properties: {
            id: { type: 'string' },
            agent: { type: 'string' },
            engine: { enum: [...ENGINES] },
            language: { enum: [...LANGUAGES] },
            status: { enum: [...EXECUTION_STATUSES, 'running'] },
            result: {},
            stdout: { type: 'string' },
            stderr: { type: 'string' },
            error: {
              oneOf: [
                { type: 'null' },
                {
                  type: 'object',
                  properties: { code: { enum: Object.values(GuestErrorCode) }, message: { type: 'string' } },
                },
              ],
            },
            usage: {
              type: 'object',
              properties: {
                cpuMs: { type: 'number' },
                wallMs: { type: 'number' },
                memoryBytes: { type: 'number' },
              },
            },
            createdAt: { type: 'string', format: 'date-time' },
            finishedAt: { type: ['string', 'null'], format: 'date-time' },
            exitCode: {
              type: ['integer', 'null'],
              description: "container engine only: the command's exit status (null when a signal ended it)",
            },
            files: {
              type: 'array',
              description:
                'container engine only: regular files of /workspace the command created or changed (no symlink followed); at most 64, content within outputBytes',
              items: {
                type: 'object',
                required: ['path', 'size'],
                properties: {
                  path: { type: 'string' },
                  size: { type: 'integer' },
                  encoding: { enum: ['utf8', 'base64'] },
                  content: { type: 'string' },
                  omitted: { enum: ['size', 'count', 'name'] },
                },
              },
            },
          },
        },
        Session: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            agent: { type: 'string' },
            engine: { const: 'container' },
            createdAt: { type: 'string', format: 'date-time' },
            lastUsedAt: { type: 'string', format: 'date-time' },
            idleTimeoutSeconds: { type: 'integer' },
            expiresAt: { type: 'string', format: 'date-time' },
          },
        },
        SessionExecuteRequest: json(SessionExecuteBody),
        RunRequest: json(RunBody),
        RunRecord: {
          type: 'object',
          required: ['id', 'agent', 'conversation', 'model', 'status', 'message', 'budget', 'usage', 'steps'],
          properties: {
            id: { type: 'string' },
            agent: { type: 'string' },
            conversation: {
              type: 'string',
              description: 'continue it with { conversation } in the next run',
            },
            model: { type: 'string', description: 'the provider/model id the run called' },
            status: { enum: [...RUN_STATUSES] },
            message: { type: 'string' },
            output: { type: ['string', 'null'], description: "the model's final text, once completed" },
            error: {
              type: ['object', 'null'],
              properties: { code: { enum: Object.values(RunErrorCode) }, message: { type: 'string' } },
            },
            budget: {
              type: 'object',
              properties: {
                steps: { type: 'integer' },
                tokens: { type: 'integer' },
                wallMs: { type: 'integer' },
              },
            },
            usage: {
              type: 'object',
              properties: {
                steps: { type: 'integer', description: 'model calls made' },
                toolCalls: { type: 'integer' },
                inputTokens: { type: 'integer' },
                outputTokens: { type: 'integer' },
                wallMs: { type: 'integer' },
              },
            },
            steps: {
              type: 'array',
              description:
                'the journaled steps: `model` ({ seq, text, toolCalls: [{ id, name, input }], finishReason, usage }) and `tool` ({ seq, call: { id, name }, decision: { effect, code, rule, reason? }, execution, ok, output })',
              items: { type: 'object' },
            },
            skills: { type: 'array', items: { type: 'string' }, description: 'skills the model activated' },
            createdAt: { type: 'string', format: 'date-time' },
            finishedAt: { type: ['string', 'null'], format: 'date-time' },
            resumed: { type: 'integer', description: 'times it was resumed after a restart' },
          },
        },
        InvokeToolRequest: json(InvokeToolBody),
        Error: {
          type: 'object',
          required: ['error'],
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: {
                code: { enum: Object.values(ErrorCode) },
                message: { type: 'string' },
                issues: {
                  type: 'array',
                  items: {
                    type: 'object',
                    properties: { path: { type: 'string' }, message: { type: 'string' } },
                  },
                },
              },
            },
          },
        },
      },
    },
    security: [{ bearer: [] }],
    paths: {
      '/healthz': {
        get: {
          summary: 'Liveness and worker pool state',
          security: [],
          responses: { 200: { description: 'ok' } },
        },
      },
      '/v1/profiles': {
        get: {
          summary: 'List profiles (built-in and own)',
          responses: { 200: { description: 'items' }, ...errors(401, 403) },
        },
      },
      '/v1/profiles/review': {
        post: {
          summary: 'Security review of a profile document, of { "name": profile } or of { "agent": agent }',
          parameters: [
            {
              name: 'format',
              in: 'query',
              required: false,
              description: 'json (default), sarif (SARIF 2.1.0) or text (a table)',
              schema: { type: 'string', enum: ['json', 'sarif', 'text'] },
            },
          ],
          requestBody: documentBody('Profile', false),
          responses: {
            200: {
              description: 'findings (rule id, severity, JSON pointer, remediation) and the effective reach',
              content: {
                'application/json': { schema: { type: 'object' } },
                'application/sarif+json': { schema: { type: 'object' } },
                'text/plain': { schema: { type: 'string' } },
              },
            },
            ...errors(400, 401, 403, 404, 413, 415, 422),
          },
        },
      },
      '/v1/profiles/{name}': {
        parameters: [nameParam('profile')],
        get: {
          summary: 'The effective profile',
          responses: {
            200: { description: 'profile', content: content('Profile') },
            ...errors(401, 403, 404),
          },
        },
        put: {
          summary: 'Create or replace a profile (JSON or YAML)',
          requestBody: documentBody('Profile', false),
          responses: {
            200: { description: 'the stored profile', content: content('Profile') },
            ...errors(400, 401, 403, 409, 413, 415, 422),
          },
        },
      },
      '/v1/agents': {
        get: { summary: 'List agents', responses: { 200: { description: 'items' }, ...errors(401, 403) } },
      },
      '/v1/agents/{name}': {
        parameters: [nameParam('agent')],
        get: {
          summary: 'An agent declaration',
          responses: { 200: { description: 'agent', content: content('Agent') }, ...errors(401, 403, 404) },
        },
        put: {
          summary:
            'Create or replace an agent (JSON, YAML, Markdown with front matter, or an agent bundle archive)',
          description:
            "An agent bundle is a tar (`application/x-tar`), gzipped tar (`application/gzip`, `application/x-gzip`, `application/x-compressed-tar`) or zip (`application/zip`, `application/x-zip-compressed`; `application/octet-stream` is taken for whichever its first bytes show) holding one agent file at its root (`agent.yaml`, `agent.yml`, `agent.json`, or `AGENT.md`: YAML front matter + instructions) and, per skill, `skills/<name>/SKILL.md` (Agent Skills: front matter `name` equal to the folder, `description`, optional `license`, `compatibility`, `metadata`, `allowed-tools`) with the skill's other files, which become its `files` (UTF-8 text as `utf8`, other bytes as `base64`). One folder wrapping everything is stripped; directories and macOS metadata are skipped; it is stored as the JSON document it declares. 400 MALFORMED_BODY: bytes that do not parse, links, devices, absolute or `..` paths, duplicate or overlapping entries. 413 PAYLOAD_TOO_LARGE: more than 256 entries or over 4 MiB once inflated, an agent file over 1 MiB, a validated document over 1.5 MiB of JSON. 422 VALIDATION_FAILED: files outside `skills/<name>/`, a skill declared both inline and bundled, unknown front-matter keys, `allowed-tools` naming a tool that is neither the agent's nor `execute_code`/`activate_skill`, a skill file over 256 KiB (1 MiB for all), or a file that looks like a credential (issues name the rule); issue paths name the file in the bundle (`skills/pdf/SKILL.md:$.name`).",
          requestBody: {
            required: true,
            content: {
              ...documentBody('Agent', true).content,
              ...Object.fromEntries(
                [
                  'application/x-tar',
                  'application/gzip',
                  'application/x-gzip',
                  'application/x-compressed-tar',
                  'application/zip',
                  'application/x-zip-compressed',
                  'application/octet-stream',
                ].map((type) => [
                  type,
                  {
                    schema: {
                      type: 'string',
                      format: 'binary',
                      description: 'agent bundle: the agent file and skills/<name>/SKILL.md with its files',
                    },
                  },
                ]),
              ),
            },
          },
          responses: {
            200: { description: 'the stored agent', content: content('Agent') },
            ...errors(400, 401, 403, 404, 413, 415, 422),
          },
        },
        delete: {
          summary: 'Delete an agent',
          responses: { 204: { description: 'deleted' }, ...errors(401, 403, 404) },
        },
      },
      '/v1/agents/{name}/executions': {
        parameters: [nameParam('agent')],
        post: {
          summary: 'Run code as the agent',
          description:
            "Answers 200 with the execution record whatever the guest did; 403 when the profile refuses the run. With an `Idempotency-Key` header, a retry of the same request answers the original execution (409 IDEMPOTENCY_KEY_REUSED for another request with that key). With `Accept: text/event-stream` the answer is the execution's event stream (see `GET /v1/executions/{id}/events`); a client that goes away does not stop it. A request refused before it runs is a JSON error either way.",
          parameters: [
            {
              name: 'Idempotency-Key',
              in: 'header',
              required: false,
              description: '1-255 visible ASCII characters',
              schema: { type: 'string' },
            },
          ],
          requestBody: { required: true, content: content('ExecuteRequest') },
          responses: {
            200: {
              description: 'execution record, or its event stream',
              content: { ...content('ExecutionRecord'), ...EVENT_STREAM },
            },
            ...errors(400, 401, 403, 404, 413, 415, 422, 429),
          },
        },
      },
      '/v1/agents/{name}/files': {
        parameters: [nameParam('agent')],
        get: {
          summary: "List a directory of the agent's kept files",
          parameters: [
            {
              name: 'path',
              in: 'query',
              required: false,
              description: 'a directory relative to /workspace (default: /workspace itself)',
              schema: { type: 'string' },
            },
          ],
          responses: {
            200: {
              description: '{ entries: [{ name, type: "file" | "directory", size, mtime }] }',
              content: { 'application/json': { schema: { type: 'object' } } },
            },
            ...errors(400, 401, 403, 404, 409),
          },
        },
      },
      '/v1/agents/{name}/files/{path}': {
        parameters: [
          nameParam('agent'),
          {
            name: 'path',
            in: 'path',
            required: true,
            description: 'a file relative to /workspace; "/" separates directories',
            schema: { type: 'string' },
          },
        ],
        get: {
          summary: "Download one of the agent's kept files",
          responses: {
            200: {
              description: 'the bytes',
              content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
            },
            ...errors(400, 401, 403, 404, 409),
          },
        },
        put: {
          summary: "Upload a file into the agent's kept files (creating its directories)",
          description:
            'Any content type; the body is stored as sent. Held to the profile\'s filesystem.quotaBytes, 10 000 entries and 4 MiB per file; needs filesystem.scope "agent".',
          requestBody: {
            required: true,
            content: { '*/*': { schema: { type: 'string', format: 'binary' } } },
          },
          responses: {
            200: { description: 'replaced: { path, size }' },
            201: { description: 'created: { path, size }' },
            ...errors(400, 401, 403, 404, 409, 413),
          },
        },
        delete: {
          summary: 'Delete a file or an empty directory (?recursive=true: a directory and all it holds)',
          parameters: [
            {
              name: 'recursive',
              in: 'query',
              required: false,
              schema: { type: 'string', enum: ['true', 'false'] },
            },
          ],
          responses: { 204: { description: 'deleted' }, ...errors(400, 401, 403, 404, 409) },
        },
      },
      '/v1/agents/{name}/tools': {
        parameters: [nameParam('agent')],
        get: {
          summary: "The agent's declared tools with their input schemas",
          responses: {
            200: { description: '{ items: [{ name, description, input, language }] }' },
            ...errors(401, 403, 404),
          },
        },
      },
      '/v1/agents/{name}/tools/{tool}': {
        parameters: [
          nameParam('agent'),
          { name: 'tool', in: 'path', required: true, schema: { type: 'string' } },
        ],
        post: {
          summary: 'Invoke a declared tool with { input }',
          description:
            "The input is checked against the tool's JSON Schema (422 with the failing path); the tool runs as an execution of the agent under the tool's profile (else the agent's). Takes an Idempotency-Key and `Accept: text/event-stream` like executions.",
          requestBody: { required: true, content: content('InvokeToolRequest') },
          responses: {
            200: {
              description: 'execution record, or its event stream',
              content: { ...content('ExecutionRecord'), ...EVENT_STREAM },
            },
            ...errors(400, 401, 403, 404, 409, 413, 415, 422, 429),
          },
        },
      },
      '/v1/agents/{name}/sessions': {
        parameters: [nameParam('agent')],
        post: {
          summary: 'Start a container session: one sandbox kept across executions and file operations',
          description:
            'Optional JSON body { idleTimeoutSeconds } (1-3600). The session ends on DELETE, after its idle timeout, when an execution in it ends at a limit, or when the service stops. 429 SESSION_LIMIT past the per-tenant cap.',
          responses: {
            201: { description: 'the session', content: content('Session') },
            ...errors(400, 401, 403, 404, 415, 422, 429),
          },
        },
      },
      '/v1/sessions': {
        get: {
          summary: "The tenant's sessions",
          responses: { 200: { description: '{ items: Session[] }' } },
        },
      },
      '/v1/sessions/{id}': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        get: {
          summary: 'A session',
          responses: {
            200: { description: 'the session', content: content('Session') },
            ...errors(401, 403, 404),
          },
        },
        delete: {
          summary: 'End a session (its sandbox and workspace go with it)',
          responses: { 204: { description: 'ended' }, ...errors(401, 403, 404) },
        },
      },
      '/v1/sessions/{id}/executions': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        post: {
          summary: "Run python or bash in the session's sandbox",
          requestBody: { required: true, content: content('SessionExecuteRequest') },
          responses: {
            200: { description: 'execution record', content: content('ExecutionRecord') },
            ...errors(400, 401, 403, 404, 413, 415, 422, 429),
          },
        },
      },
      '/v1/sessions/{id}/files': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        get: {
          summary: "List a directory of the session's /workspace (?path=, default the root)",
          responses: {
            200: { description: '{ entries: [{ name, type: "file" | "directory" | "other", size }] }' },
            ...errors(400, 401, 403, 404, 409),
          },
        },
      },
      '/v1/sessions/{id}/files/{path}': {
        parameters: [
          { name: 'id', in: 'path', required: true, schema: { type: 'string' } },
          { name: 'path', in: 'path', required: true, schema: { type: 'string' } },
        ],
        get: {
          summary: "Download a regular file of the session's /workspace (no symbolic link is followed)",
          responses: { 200: { description: 'the bytes' }, ...errors(400, 401, 403, 404, 409, 413) },
        },
        put: {
          summary: "Write a file into the session's /workspace (creating its directories)",
          responses: {
            200: { description: 'replaced: { path, size }' },
            201: { description: 'created: { path, size }' },
            ...errors(400, 401, 403, 404, 409, 413),
          },
        },
        delete: {
          summary: 'Delete a file or a directory with all it holds',
          responses: { 204: { description: 'deleted' }, ...errors(400, 401, 403, 404, 409) },
        },
      },
      '/v1/agents/{name}/runs': {
        parameters: [nameParam('agent')],
        post: {
          summary: 'Run the agent loop on a message (a new conversation, or one continued)',
          description:
            "The agent's model is called with its instructions, its skills' names and descriptions, and its tools plus `execute_code` and `activate_skill`; each tool call is decided by the policy and run under the agent's profile, and its result goes back to the model, until the model answers without a tool call or the run's budget (the declaration's `budget`: steps, tokens, wallMs) runs out. Answers the final record (200) whatever the model did; with `Accept: text/event-stream`, the run's events (see `GET /v1/runs/{id}/events`); with `Prefer: respond-async`, 202 and the running record. A client going away does not stop the run. 404 CONVERSATION_NOT_FOUND, 409 CONVERSATION_BUSY (a run of the conversation is running), 413 PAYLOAD_TOO_LARGE (the conversation's history passed 4 Mi characters), 422 MODEL_UNAVAILABLE (no model declared, unknown provider, no key), 429 QUEUE_FULL (32 runs of the tenant running), 503 SHUTTING_DOWN.",
          requestBody: { required: true, content: content('RunRequest') },
          responses: {
            200: {
              description: 'the final run record',
              content: { ...content('RunRecord'), ...RUN_EVENT_STREAM },
            },
            202: { description: 'started (Prefer: respond-async)', content: content('RunRecord') },
            ...errors(400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
          },
        },
      },
      '/v1/runs/{id}': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        get: {
          summary: 'A run, with its steps',
          responses: {
            200: { description: 'record', content: content('RunRecord') },
            ...errors(401, 403, 404),
          },
        },
      },
      '/v1/runs/{id}/events': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        get: {
          summary: "Follow a run's events, or reattach after a disconnect",
          description:
            "Events: `started` ({ id, agent, conversation, resumed? }), `text` ({ step, delta }: the model's text as it streams), `step` ({ step, usage }: a model call ended), `tool_call` ({ step, id, name, input, decision }), `tool_result` ({ step, id, name, ok, output }), `message` ({ text }: the final answer), `end` (the final record). Ids count up from 1 (a resumed run: from 1 000 000 × n + 1); with `Last-Event-ID` only later ones are sent. After a run's live log is gone they are rebuilt from its record. 409 RUN_NOT_RUNNING for a run waiting to be resumed; at most 16 streams per run.",
          responses: {
            200: { description: 'the event stream', content: RUN_EVENT_STREAM },
            204: { description: 'the client has the whole of an ended stream' },
            ...errors(400, 401, 403, 404, 409, 429),
          },
        },
      },
      '/v1/runs/{id}/cancel': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        post: {
          summary: 'Cancel a running run; answers its final record (cancelled)',
          responses: {
            200: { description: 'record', content: content('RunRecord') },
            ...errors(401, 403, 404, 409),
          },
        },
      },
      '/v1/executions': {
        get: {
          summary: 'Executions running or queued now (status=running, required; agent optional)',
          responses: {
            200: { description: '{ items: [{ id, agent, engine, language, createdAt }] }' },
            ...errors(400, 401, 403),
          },
        },
      },
      '/v1/executions/{id}/cancel': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        post: {
          summary: 'Cancel a running or queued execution; answers its final record (killed / CANCELLED)',
          responses: {
            200: { description: 'record', content: content('ExecutionRecord') },
            ...errors(401, 403, 404, 409),
          },
        },
      },
      '/mcp/{agent}': {
        parameters: [nameParam('agent')],
        post: {
          summary: 'The agent as an MCP server (Streamable HTTP transport, stateless, JSON answers)',
          description:
            "JSON-RPC 2.0 as MCP defines it (initialize, tools/list, tools/call). `tools/list`: the agent's declared tools with their input schemas, and `execute_code` ({ language, code, input?, engine? }) unless the agent declares a tool of that name. `tools/call` runs them under the agent's profile like the HTTP API; the result has the execution's result (and output) as text and its record as `structuredContent`; a refusal, invalid input, a guest error or a limit is a result with `isError: true`, never a transport failure. Same bearer tokens (`invoke` scope). A request with an `Origin` header (a web page, DNS rebinding included) is refused (403). A declared tool whose input is not an object is listed with it wrapped as `{ input }`.",
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object' } } } },
          responses: {
            200: { description: 'the JSON-RPC response' },
            ...errors(400, 401, 403, 404, 413, 415),
          },
        },
      },
      '/v1/executions/{id}/events': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        get: {
          summary: "Follow an execution's event stream, or reattach to it after a disconnect",
          description:
            "Events: `started` (id, agent, engine, language, createdAt), `stdout` and `stderr` ({ text }: chunks as the guest writes them, secret values redacted; they add up to the record's output), `end` (the final record). Each has an `id` counting up from 1; with `Last-Event-ID`, only later events are sent. While the execution runs, and for 5 minutes after the end of a stream a client watched, the events are the live ones (204 for a client that has the end already); after that they are rebuilt from the stored record (with `Last-Event-ID`, only `end`). An execution resumed after a crash streams again from its start: `started` says `resumed: n` and ids start at 1 000 000 × n + 1. At most 16 streams per execution (429 TOO_MANY_STREAMS). Idle streams get a `: keep-alive` comment every 15 s.",
          parameters: [
            {
              name: 'Last-Event-ID',
              in: 'header',
              required: false,
              description: 'The id of the last event the client has (a whole number)',
              schema: { type: 'string' },
            },
          ],
          responses: {
            200: { description: 'the event stream', content: EVENT_STREAM },
            204: {
              description: 'the client has the whole of an ended stream (Last-Event-ID): stop reconnecting',
            },
            ...errors(400, 401, 403, 404, 409, 429),
          },
        },
      },
      '/v1/executions/{id}': {
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        get: {
          summary: 'An execution record',
          responses: {
            200: { description: 'record', content: content('ExecutionRecord') },
            ...errors(401, 403, 404),
          },
        },
      },
      '/v1/secrets': {
        get: {
          summary: "The tenant's stored secrets (names and times only, never values)",
          responses: {
            200: { description: '{ secrets: [{ name, createdAt, updatedAt }] }' },
            ...errors(401, 403),
          },
        },
      },
      '/v1/secrets/{name}': {
        parameters: [
          { ...nameParam('secret'), schema: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_.-]{0,127}$' } },
        ],
        put: {
          summary: 'Store a secret for `store:NAME` sources (write-only: no route answers its value)',
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['value'],
                  additionalProperties: false,
                  properties: { value: { type: 'string' } },
                },
              },
            },
          },
          responses: {
            200: { description: '{ name, createdAt, updatedAt }' },
            ...errors(400, 401, 403, 413, 415, 422),
          },
        },
        get: {
          summary: "A secret's name and times",
          responses: {
            200: { description: '{ name, createdAt, updatedAt }' },
            ...errors(400, 401, 403, 404),
          },
        },
        delete: {
          summary: 'Delete a secret',
          responses: { 204: { description: 'deleted' }, ...errors(400, 401, 403, 404) },
        },
      },
      '/v1/audit': {
        get: {
          summary: 'Audit records, oldest first',
          description:
            'Filters: agent, kind (exact or a dotted prefix such as `binding`), execution, since (ISO time), after (cursor), limit (1-1000). Answers `{ records, next }`.',
          parameters: ['agent', 'kind', 'execution', 'since', 'after', 'limit'].map((name) => ({
            name,
            in: 'query',
            required: false,
            schema: { type: 'string' },
          })),
          responses: {
            200: { description: '{ records: [...], next: number | null }' },
            ...errors(400, 401, 403),
          },
        },
      },
      '/v1/audit/verify': {
        get: {
          summary: "Check the tenant's audit hash chain",
          description:
            'Each record links to the one before it with a keyed hash (HMAC-SHA256; the key lives beside the database, not in it). Answers `{ ok: true, records, head: { seq, hash } | null }`, or `{ ok: false, records, brokenAt: { seq, reason } }` naming the first record changed, the record after one removed, or the end of a log whose newest records were removed.',
          responses: { 200: { description: 'the verification' }, ...errors(401, 403) },
        },
      },
      '/v1/audit/export': {
        get: {
          summary: 'Every audit record of the tenant as JSON Lines (application/x-ndjson), oldest first',
          responses: {
            200: { description: 'one record per line, each with its `prev` and `hash`' },
            ...errors(401, 403),
          },
        },
      },
    },
  }
}

/** A self-contained HTML page listing the API from its OpenAPI document (no external scripts). */
export function docsPage(document: Record<string, unknown>): string {
  const html = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`)
  const paths = document.paths as Record<string, Record<string, { summary?: string; description?: string }>>
  const rows = Object.entries(paths).flatMap(([path, ops]) =>
    Object.entries(ops)
      .filter(([method]) => method !== 'parameters')
      .map(
        ([method, op]) =>
          `<tr><td><code>${method.toUpperCase()}</code></td><td><code>${html(path)}</code></td><td>${html(op.summary ?? '')}${op.description ? `<br><small>${html(op.description)}</small>` : ''}</td></tr>`,
      ),
  )
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Cordon API</title>
<style>body{font:15px system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem}td{padding:.3rem .6rem;border-bottom:1px solid #ddd;vertical-align:top}</style>
</head><body><h1>Cordon API v1</h1><p>Every <code>/v1</code> route needs <code>Authorization: Bearer &lt;token&gt;</code>.
Errors are <code>{"error":{"code","message"}}</code>. The full description: <a href="/openapi.json">/openapi.json</a>.</p>
<table>${rows.join('')}</table></body></html>`
}
