import { CordonError, ENGINES, ErrorCode, LANGUAGES } from '@cordon/contracts'
import { type ArchiveKind, agentBundleDocument, type ExecuteRequest, type Harness } from '@cordon/harness'
import { Hono } from 'hono'
import { z } from 'zod'
import { type Env, nameParam, readDocument, readJson, requireScope } from '../http.ts'
import { validated } from '../validate.ts'
import { streamExecution, wantsEventStream } from './event-stream.ts'

/** Input files one execution request may carry. */
export const MAX_INPUT_FILES = 256

/** Guest source is bounded on its own, below the body limit. */
export const MAX_CODE_BYTES = 256 * 1024

/** The body of `POST /v1/agents/{name}/executions`. */
export const ExecuteBody = z.strictObject({
  language: z.enum(LANGUAGES),
  code: z
    .string()
    .min(1, 'must not be empty')
    .refine((code) => Buffer.byteLength(code) <= MAX_CODE_BYTES, `must be at most ${MAX_CODE_BYTES} bytes`),
  input: z.json().optional(),
  engine: z.enum(ENGINES).optional(),
  /** Container engine: files put into `/workspace` before the command runs. */
  files: z
    .array(
      z.strictObject({
        path: z.string().min(1).max(1024),
        content: z.string(),
        encoding: z.enum(['utf8', 'base64']).optional(),
      }),
    )
    .max(MAX_INPUT_FILES, `must list at most ${MAX_INPUT_FILES} files`)
    .optional(),
})

/** An execution request as the harness takes it (input files decoded). */
export function executeRequest(body: z.infer<typeof ExecuteBody>): ExecuteRequest {
  return {
    language: body.language,
    code: body.code,
    input: body.input ?? null,
    engine: body.engine,
    files: body.files?.map((file) => ({
      path: file.path,
      data: Buffer.from(file.content, file.encoding === 'base64' ? 'base64' : 'utf8'),
    })),
  }
}

export function agentRoutes(harness: Harness, maxBodyBytes: number): Hono<Env> {
  const app = new Hono<Env>()
  app.get('/', (c) => {
    const { tenant } = requireScope(c, 'invoke')
    const items = harness.listAgents(tenant).map((stored) => {
      const agent = JSON.parse(stored.document) as { description?: string; model?: string; sandbox: unknown }
      return {
        name: stored.name,
        description: agent.description ?? null,
        model: agent.model ?? null,
        sandbox: typeof agent.sandbox === 'string' ? agent.sandbox : 'inline',
        updatedAt: stored.updatedAt,
      }
    })
    return c.json({ items })
  })
  app.get('/:name', (c) => {
    const { tenant } = requireScope(c, 'invoke')
    return c.json(harness.getAgent(tenant, nameParam(c, 'name')))
  })
  /**
   * Stores an agent. The body is a declaration (JSON, YAML, or Markdown whose front matter is the
   * declaration and whose body is the instructions) or an agent bundle: a tar (`application/x-tar`),
   * gzipped tar (`application/gzip`, `application/x-gzip`, `application/x-compressed-tar`) or zip
   * (`application/zip`, `application/x-zip-compressed`) holding one agent file at its root
   * (`agent.yaml`, `agent.yml`, `agent.json` or `AGENT.md`) and `skills/<name>/SKILL.md` with each
   * skill's files. A bundle is unpacked in memory within `AGENT_BUNDLE_LIMITS` (no links, devices,
   * absolute or `..` paths; inflated bytes counted as they come) and stored as its JSON document; it
   * never touches a filesystem. An archive that does not parse or is unsafe to unpack is a 400
   * MALFORMED_BODY, one past a limit a 413 PAYLOAD_TOO_LARGE, a bundle that does not declare a valid
   * agent (secret-looking skill files included) a 422 VALIDATION_FAILED; a refused upload stores nothing.
   */
  app.put('/:name', async (c) => {
    const { tenant } = requireScope(c, 'deploy')
    const name = nameParam(c, 'name')
    const type = mediaType(c.req.header('content-type'))
    if (ARCHIVE_TYPES.has(type) || type === 'application/octet-stream') {
      const bytes = new Uint8Array(await c.req.arrayBuffer())
      if (bytes.length === 0) throw new CordonError(ErrorCode.MALFORMED_BODY, 'the request body is empty')
      // Plain bytes are taken for what their first bytes say they are.
      const archive = ARCHIVE_TYPES.get(type) ?? sniffArchive(bytes)
      if (archive === undefined) {
        throw new CordonError(
          ErrorCode.UNSUPPORTED_MEDIA_TYPE,
          `application/octet-stream is not a tar, gzipped tar or zip archive; send a declaration as JSON, YAML or Markdown, or an archive as ${[...ARCHIVE_TYPES.keys()].join(', ')}`,
        )
      }
      const document = await agentBundleDocument(bytes, archive)
      return c.json(harness.putAgent(tenant, name, JSON.stringify(document), 'json'))
    }
    const { text, format } = await readDocument(c, ['json', 'yaml', 'markdown']).catch(withArchiveTypes)
    return c.json(harness.putAgent(tenant, name, text, format))
  })
  app.delete('/:name', (c) => {
    const { tenant } = requireScope(c, 'deploy')
    harness.deleteAgent(tenant, nameParam(c, 'name'))
    return c.body(null, 204)
  })
  app.post('/:name/executions', async (c) => {
    const { tenant } = requireScope(c, 'invoke')
    const name = nameParam(c, 'name')
    const body = validated(ExecuteBody, await readJson(c, maxBodyBytes), 'execution request')
    const key = idempotencyKey(c.req.header('idempotency-key'))
    const request = executeRequest(body)
    // An event stream's client may go away and reattach: the execution runs on.
    if (wantsEventStream(c)) {
      return streamExecution(c, harness, tenant, (onStart) =>
        harness.execute(tenant, name, request, { idempotencyKey: key, onStart }),
      )
    }
    // A client that goes away cancels its execution (queued or running): its worker is not held.
    // With an Idempotency-Key it means to retry, so the execution runs on for the retry to collect.
    const signal = key === undefined ? c.req.raw.signal : undefined
    return c.json(await harness.execute(tenant, name, request, { signal, idempotencyKey: key }))
  })
  // The tool API: the agent's declared tools, and one invoked with JSON input checked against its schema.
  app.get('/:name/tools', (c) => {
    const { tenant } = requireScope(c, 'invoke')
    return c.json({ items: harness.listTools(tenant, nameParam(c, 'name')) })
  })
  app.post('/:name/tools/:tool', async (c) => {
    const { tenant } = requireScope(c, 'invoke')
    const name = nameParam(c, 'name')
    const tool = c.req.param('tool')
    if (!TOOL_NAME.test(tool)) throw new CordonError(ErrorCode.TOOL_NOT_FOUND, 'no such tool')
    const body = validated(InvokeToolBody, await readJson(c, maxBodyBytes), 'tool request')
    const key = idempotencyKey(c.req.header('idempotency-key'))
    const input = body.input ?? null
    if (wantsEventStream(c)) {
      return streamExecution(c, harness, tenant, (onStart) =>
        harness.invokeTool(tenant, name, tool, input, { idempotencyKey: key, onStart }),
      )
    }
    const signal = key === undefined ? c.req.raw.signal : undefined
    return c.json(await harness.invokeTool(tenant, name, tool, input, { signal, idempotencyKey: key }))
  })
  return app
}

const TOOL_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/

/** Media types of an agent bundle, and the archive format each names. */
const ARCHIVE_TYPES: ReadonlyMap<string, ArchiveKind> = new Map<string, ArchiveKind>([
  ['application/x-tar', 'tar'],
  ['application/gzip', 'tar+gzip'],
  ['application/x-gzip', 'tar+gzip'],
  ['application/x-compressed-tar', 'tar+gzip'],
  ['application/zip', 'zip'],
  ['application/x-zip-compressed', 'zip'],
])

/** The archive format bytes begin with (gzip, zip, or a ustar tar header), if any. */
function sniffArchive(bytes: Uint8Array): ArchiveKind | undefined {
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) return 'tar+gzip'
  if (bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) return 'zip'
  if (new TextDecoder().decode(bytes.subarray(257, 262)) === 'ustar') return 'tar'
  return undefined
}

function mediaType(header: string | undefined): string {
  return (header ?? '').split(';', 1)[0]?.trim().toLowerCase() ?? ''
}

/** An unsupported content type on `PUT /v1/agents/{name}`: the refusal lists the archive types too. */
function withArchiveTypes(error: unknown): never {
  if (error instanceof CordonError && error.code === ErrorCode.UNSUPPORTED_MEDIA_TYPE) {
    throw new CordonError(
      ErrorCode.UNSUPPORTED_MEDIA_TYPE,
      `${error.message}, or an agent bundle as ${[...ARCHIVE_TYPES.keys()].join(', ')}`,
    )
  }
  throw error
}

/** The body of `POST /v1/agents/{name}/tools/{tool}`. */
export const InvokeToolBody = z.strictObject({ input: z.json().optional() })

/**
 * The `Idempotency-Key` header: 1-255 visible ASCII characters. A retried request with the same key
 * is answered with the first one's execution, never a second one.
 */
function idempotencyKey(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  if (!/^[\x21-\x7e]{1,255}$/.test(header)) {
    throw new CordonError(ErrorCode.BAD_REQUEST, 'Idempotency-Key must be 1-255 visible ASCII characters')
  }
  return header
}
