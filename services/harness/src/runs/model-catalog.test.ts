import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { streamText } from 'ai'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { AuditEntry } from '../storage/store.ts'
import { type ModelContext, ProviderModels } from './model-catalog.ts'

// The real provider packages, pointed at a local server that records what they send and refuses
// it (401): which URL, which key, and what the audit log is told.

let base: string
const seen: { path: string; headers: IncomingHttpHeaders; body: string }[] = []
const server = createServer((req, res) => {
  const chunks: Buffer[] = []
  req.on('data', (chunk: Buffer) => chunks.push(chunk))
  req.on('end', () => {
    seen.push({ path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() })
    res.writeHead(401, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ error: { message: 'bad key', type: 'authentication_error' } }))
  })
})

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

function context(secrets: Record<string, string> = {}) {
  const audited: Omit<AuditEntry, 'kind' | 'agent' | 'execution'>[] = []
  const ctx: ModelContext = {
    tenant: 't',
    secret: (name) => secrets[name] ?? null,
    audit: (entry) => audited.push(entry),
  }
  return { ctx, audited }
}

async function callOnce(models: ProviderModels, id: string, ctx: ModelContext): Promise<unknown> {
  const opened = models.open(id, ctx)
  if (!opened.ok) throw new Error(opened.problem)
  let failure: unknown = null
  const result = streamText({
    model: opened.model,
    prompt: 'hi',
    maxRetries: 0,
    onError: ({ error }) => (failure = error),
  })
  for await (const _ of result.fullStream) {
    // drained
  }
  return failure
}

describe('ProviderModels', () => {
  it("calls Anthropic at the operator's URL with the tenant's own key before the operator's", async () => {
    const models = new ProviderModels({
      baseURLs: { anthropic: `${base}/anthropic/v1` },
      keys: { anthropic: 'operator-key' },
    })
    const { ctx, audited } = context({ ANTHROPIC_API_KEY: 'tenant-key' })
    const failure = await callOnce(models, 'anthropic/claude-test', ctx)
    expect(failure).toBeInstanceOf(Error)
    const request = seen.at(-1)
    expect(request?.path).toBe('/anthropic/v1/messages')
    expect(request?.headers['x-api-key']).toBe('tenant-key')
    expect(JSON.parse(request?.body ?? '{}').model).toBe('claude-test')
    expect(audited).toEqual([
      expect.objectContaining({
        decision: 'error',
        code: 'HTTP_401',
        detail: expect.objectContaining({
          provider: 'anthropic',
          path: '/anthropic/v1/messages',
          status: 401,
        }),
      }),
    ])
    expect(JSON.stringify(audited)).not.toContain('tenant-key')
  })

  it("calls OpenAI with the operator's key when the tenant has none", async () => {
    const models = new ProviderModels({
      baseURLs: { openai: `${base}/openai/v1` },
      keys: { openai: 'operator-key' },
    })
    const { ctx } = context()
    await callOnce(models, 'openai/gpt-test', ctx)
    expect(seen.at(-1)?.path).toBe('/openai/v1/chat/completions')
    expect(seen.at(-1)?.headers.authorization).toBe('Bearer operator-key')
  })

  it('refuses what it cannot open, saying what is missing', () => {
    const models = new ProviderModels({})
    const { ctx } = context()
    expect(models.open('anthropic/claude', ctx)).toMatchObject({
      ok: false,
      problem: expect.stringContaining('ANTHROPIC_API_KEY'),
    })
    expect(models.open('openai-compatible/llama', ctx)).toMatchObject({
      ok: false,
      problem: expect.stringContaining('CORDON_OPENAI_COMPATIBLE_URL'),
    })
    expect(models.open('mystery/model', ctx)).toMatchObject({
      ok: false,
      problem: expect.stringContaining('unknown model provider'),
    })
  })

  it('audits a provider it cannot reach as a network error', async () => {
    const models = new ProviderModels({ baseURLs: { 'openai-compatible': 'http://127.0.0.1:1/v1' } })
    const { ctx, audited } = context()
    expect(await callOnce(models, 'openai-compatible/m', ctx)).toBeInstanceOf(Error)
    expect(audited).toEqual([expect.objectContaining({ decision: 'error', code: 'NETWORK_ERROR' })])
  })
})
