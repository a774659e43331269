import type { LanguageModelV4StreamPart } from '@ai-sdk/provider'
import type { Harness, ModelCatalog } from '@cordon/harness'
import { MockLanguageModelV4, simulateReadableStream } from 'ai/test'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestHarness, type TestHarness } from './helpers/harness.ts'

// Runs through the harness with the AI SDK's own test model (MockLanguageModelV4) in place of a
// provider, for what needs more than one tenant: a run, its conversation and its stream belong to the
// tenant that started it, and no other tenant can read, continue or stop them.

function turn(text: string): LanguageModelV4StreamPart[] {
  return [
    { type: 'stream-start', warnings: [] },
    { type: 'text-start', id: 't' },
    { type: 'text-delta', id: 't', delta: text },
    { type: 'text-end', id: 't' },
    {
      type: 'finish',
      finishReason: { unified: 'stop', raw: 'stop' },
      usage: {
        inputTokens: { total: 3, noCache: 3, cacheRead: 0, cacheWrite: 0 },
        outputTokens: { total: 2, text: 2, reasoning: 0 },
      },
    },
  ]
}

const mock = new MockLanguageModelV4({
  doStream: async (options) => {
    const last = options.prompt.at(-1)
    const said = last?.role === 'user' && last.content[0]?.type === 'text' ? last.content[0].text : ''
    return { stream: simulateReadableStream({ chunks: turn(`you said: ${said}`) }) }
  },
})
const models: ModelCatalog = { open: () => ({ ok: true, model: mock }) }

let test: TestHarness
let harness: Harness

beforeAll(async () => {
  test = await startTestHarness({ models })
  harness = test.harness
  for (const tenant of ['default', 'mallory']) {
    harness.putAgent(tenant, 'a', JSON.stringify({ sandbox: 'strict', model: 'mock/model' }), 'json')
  }
})
afterAll(() => test.close())

describe('runs belong to their tenant', () => {
  it('runs with the AI SDK test model, and continues the conversation', async () => {
    const first = await harness.runs.start('default', 'a', { message: 'hello' })
    expect(first).toMatchObject({
      status: 'completed',
      output: 'you said: hello',
      usage: { inputTokens: 3, outputTokens: 2 },
    })
    const second = await harness.runs.start('default', 'a', {
      message: 'again',
      conversation: first.conversation,
    })
    expect(second.output).toBe('you said: again')
    expect(mock.doStreamCalls.at(-1)?.prompt.map((message) => message.role)).toEqual([
      'user',
      'assistant',
      'user',
    ])
  })

  it("attack: another tenant reads, streams, continues or cancels a tenant's run", async () => {
    const run = await harness.runs.start('default', 'a', { message: 'private' })
    expect(() => harness.runs.get('mallory', run.id)).toThrow(
      expect.objectContaining({ code: 'RUN_NOT_FOUND' }),
    )
    expect(harness.runs.events('mallory', run.id)).toBeUndefined()
    await expect(harness.runs.cancel('mallory', run.id)).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' })
    // Its conversation is not mallory's, though mallory's agent has the same name.
    await expect(
      harness.runs.start('mallory', 'a', { message: 'what did they say?', conversation: run.conversation }),
    ).rejects.toMatchObject({ code: 'CONVERSATION_NOT_FOUND' })
    expect(JSON.stringify(mock.doStreamCalls.at(-1)?.prompt)).not.toContain('what did they say')
  })

  it('attack: a conversation continued through another agent of the same tenant', async () => {
    harness.putAgent('default', 'b', JSON.stringify({ sandbox: 'strict', model: 'mock/model' }), 'json')
    const run = await harness.runs.start('default', 'a', { message: 'for a only' })
    await expect(
      harness.runs.start('default', 'b', { message: 'peek', conversation: run.conversation }),
    ).rejects.toMatchObject({ code: 'CONVERSATION_NOT_FOUND' })
  })
})
