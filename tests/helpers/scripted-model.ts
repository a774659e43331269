import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/** One answer of the scripted model: text, tool calls, the usage it reports. */
export interface ScriptedTurn {
  text?: string
  /** Tool calls; `raw` sends these exact argument bytes instead of `input` as JSON. */
  toolCalls?: { name: string; input: unknown; id?: string; raw?: string }[]
  usage?: { input: number; output: number }
  /** Answered only once this settles (the request stays open until then). */
  hold?: Promise<void>
  /** An HTTP error instead of an answer. */
  status?: number
}

/** A request the scripted model received: its parsed body and the headers that matter to tests. */
export interface ScriptedRequest {
  // biome-ignore lint/suspicious/noExplicitAny: the body is asserted on by tests
  body: any
  authorization: string | undefined
  path: string
}

export interface ScriptedModel {
  /** The OpenAI-compatible base URL (`.../v1`). */
  url: string
  requests: ScriptedRequest[]
  close(): Promise<void>
}

/**
 * A local HTTP server speaking the OpenAI chat completions protocol (streamed and not), and Anthropic's
 * Messages protocol (streamed), that answers
 * from a script: turn `n` answers the `n`th request, or `script` computes the answer from the request.
 * It runs in the test's process, so it outlives a service under test that is killed.
 */
export async function startScriptedModel(
  script: ScriptedTurn[] | ((request: ScriptedRequest, index: number) => ScriptedTurn),
): Promise<ScriptedModel> {
  const requests: ScriptedRequest[] = []
  const server: Server = createServer((req, res) => {
    void answer(req, res)
  })
  const answer = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    for await (const chunk of req) chunks.push(chunk as Buffer)
    const text = Buffer.concat(chunks).toString('utf8')
    const request: ScriptedRequest = {
      body: text.length > 0 ? JSON.parse(text) : null,
      authorization: req.headers.authorization,
      path: req.url ?? '',
    }
    const index = requests.length
    requests.push(request)
    const anthropic = request.path.endsWith('/messages')
    if (req.method !== 'POST' || !(anthropic || request.path.endsWith('/chat/completions'))) {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: { message: 'not found' } }))
      return
    }
    const turn = typeof script === 'function' ? script(request, index) : script[index]
    if (turn === undefined) {
      res.writeHead(500, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: { message: `the script has no turn ${index}` } }))
      return
    }
    if (turn.hold !== undefined) await turn.hold
    if (turn.status !== undefined) {
      res.writeHead(turn.status, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: { message: 'scripted failure', type: 'server_error' } }))
      return
    }
    if (anthropic) {
      answerAnthropic(res, turn, index)
      return
    }
    const calls = (turn.toolCalls ?? []).map((call, i) => ({
      id: call.id ?? `call_${index}_${i}`,
      type: 'function' as const,
      function: { name: call.name, arguments: call.raw ?? JSON.stringify(call.input) },
    }))
    const usage = {
      prompt_tokens: turn.usage?.input ?? 10,
      completion_tokens: turn.usage?.output ?? 5,
      total_tokens: (turn.usage?.input ?? 10) + (turn.usage?.output ?? 5),
    }
    const finish = calls.length > 0 ? 'tool_calls' : 'stop'
    const base = { id: `chatcmpl-${index}`, created: 1_700_000_000, model: request.body?.model ?? 'scripted' }
    if (request.body?.stream !== true) {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          ...base,
          object: 'chat.completion',
          choices: [
            {
              index: 0,
              message: {
                role: 'assistant',
                content: turn.text ?? null,
                ...(calls.length > 0 ? { tool_calls: calls } : {}),
              },
              finish_reason: finish,
            },
          ],
          usage,
        }),
      )
      return
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    const send = (delta: unknown, finishReason: string | null = null, extra = {}) =>
      res.write(
        `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finishReason }], ...extra })}\n\n`,
      )
    send({ role: 'assistant', content: '' })
    // Text in a few pieces, so that deltas are deltas.
    const words = (turn.text ?? '').match(/\S+\s*|\s+/g) ?? []
    for (const word of words) send({ content: word })
    calls.forEach((call, i) => {
      send({ tool_calls: [{ index: i, ...call }] })
    })
    send({}, finish)
    res.write(`data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [], usage })}\n\n`)
    res.end('data: [DONE]\n\n')
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** The same turn in Anthropic's Messages streaming protocol (`POST .../messages`, always streamed). */
function answerAnthropic(res: ServerResponse, turn: ScriptedTurn, index: number): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  const send = (event: string, data: object) =>
    res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`)
  const input = turn.usage?.input ?? 10
  const output = turn.usage?.output ?? 5
  send('message_start', {
    message: {
      id: `msg_${index}`,
      type: 'message',
      role: 'assistant',
      content: [],
      model: 'scripted',
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: input, output_tokens: 1 },
    },
  })
  let block = 0
  if (turn.text !== undefined) {
    send('content_block_start', { index: block, content_block: { type: 'text', text: '' } })
    for (const word of turn.text.match(/\S+\s*|\s+/g) ?? []) {
      send('content_block_delta', { index: block, delta: { type: 'text_delta', text: word } })
    }
    send('content_block_stop', { index: block })
    block++
  }
  for (const [i, call] of (turn.toolCalls ?? []).entries()) {
    const id = call.id ?? `toolu_${index}_${i}`
    send('content_block_start', {
      index: block,
      content_block: { type: 'tool_use', id, name: call.name, input: {} },
    })
    send('content_block_delta', {
      index: block,
      delta: { type: 'input_json_delta', partial_json: JSON.stringify(call.input) },
    })
    send('content_block_stop', { index: block })
    block++
  }
  const stop = (turn.toolCalls ?? []).length > 0 ? 'tool_use' : 'end_turn'
  send('message_delta', {
    delta: { stop_reason: stop, stop_sequence: null },
    usage: { output_tokens: output },
  })
  send('message_stop', {})
  res.end()
}
