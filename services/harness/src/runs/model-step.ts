import type { JsonValue, RunToolCall } from '@cordon/contracts'
import { type LanguageModel, type ModelMessage, streamText, type ToolSet } from 'ai'

/** One model call's outcome: the assistant's text and tool calls, and the messages it adds. */
export type ModelStepResult =
  | {
      ok: true
      text: string
      toolCalls: RunToolCall[]
      finishReason: string
      usage: { inputTokens: number; outputTokens: number }
      messages: ModelMessage[]
    }
  | { ok: false; message: string }

/** Most tool calls taken from one model answer; more are an error of the model's. */
const MAX_TOOL_CALLS_PER_STEP = 32

/**
 * Calls the model once (streamed; `onText` hears each text delta) with the tools it may call, none of
 * which the SDK runs: the caller decides and runs every call. A provider failure is a value; its
 * message names the error and the HTTP status, never a key, a header or a response body.
 */
export async function modelStep(options: {
  model: LanguageModel
  system: string
  messages: ModelMessage[]
  tools: ToolSet
  maxOutputTokens: number
  signal: AbortSignal
  onText: (delta: string) => void
}): Promise<ModelStepResult> {
  let failure: unknown = null
  try {
    const result = streamText({
      model: options.model,
      ...(options.system === '' ? {} : { system: options.system }),
      messages: options.messages,
      tools: options.tools,
      maxOutputTokens: options.maxOutputTokens,
      maxRetries: 2,
      abortSignal: options.signal,
      onError: ({ error }) => {
        failure ??= error
      },
    })
    let text = ''
    // The calls as the stream reports them: an invalid one (an unknown tool, arguments that do not
    // parse or fit its schema) is flagged, and answered by the caller with an error, never run.
    const toolCalls: RunToolCall[] = []
    for await (const part of result.fullStream) {
      if (part.type === 'text-delta') {
        text += part.text
        options.onText(part.text)
      } else if (part.type === 'tool-call') {
        const invalid = 'invalid' in part && part.invalid === true
        toolCalls.push({
          id: part.toolCallId,
          name: part.toolName,
          input: invalid ? null : ((part.input ?? null) as JsonValue),
          ...(invalid ? { invalid: invalidReason(part.error) } : {}),
        })
      } else if (part.type === 'error') {
        failure ??= part.error
      }
    }
    if (failure !== null) return { ok: false, message: describe(failure) }
    const response = await result.response
    const usage = await result.usage
    const finishReason = await result.finishReason
    if (toolCalls.length > MAX_TOOL_CALLS_PER_STEP) {
      return {
        ok: false,
        message: `the model made ${toolCalls.length} tool calls in one answer (at most ${MAX_TOOL_CALLS_PER_STEP})`,
      }
    }
    return {
      ok: true,
      text,
      toolCalls,
      finishReason,
      usage: { inputTokens: usage.inputTokens ?? 0, outputTokens: usage.outputTokens ?? 0 },
      // Only what the model said: the SDK's own answers to invalid calls are left out (the caller
      // answers every call, once).
      messages: response.messages.filter((message) => message.role === 'assistant'),
    }
  } catch (error) {
    return { ok: false, message: describe(failure ?? error) }
  }
}

/** Why the SDK found a tool call invalid, in a few words (the error's name and message, bounded). */
function invalidReason(error: unknown): string {
  if (!(error instanceof Error)) return 'the tool call is invalid'
  return `${error.name}: ${error.message}`.slice(0, 300)
}

/** A provider error in words fit for a record: its name and HTTP status, nothing the provider sent. */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return 'the model call failed'
  const status = (error as { statusCode?: unknown }).statusCode
  const cause = (error as { lastError?: unknown }).lastError
  if (cause instanceof Error && cause !== error) return `${error.name.slice(0, 64)}: ${describe(cause)}`
  return typeof status === 'number'
    ? `${error.name.slice(0, 64)}: the provider answered HTTP ${status}`
    : `${error.name.slice(0, 64)}: the model call failed`
}
