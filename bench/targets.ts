/** One HTTP endpoint under load: the request sent and the check every response body must pass. */
export interface Target {
  /** Key in the JSON results. */
  key: 'bare' | 'hop' | 'execution'
  /** Row label in the printed table. */
  label: string
  url: string
  method: 'POST'
  headers: Record<string, string>
  body: string
  /** True when a 2xx body is the expected answer; runs on every response, so it stays cheap. */
  verify(body: string): boolean
}

/** The trivial execution: `1 + 1` as the pre-installed `example` agent must answer `ok` / `2`. */
export const TRIVIAL_EXECUTION = JSON.stringify({ language: 'javascript', code: 'export default 1 + 1' })

/** The execution path: auth, body limit, validation, policy, SQLite, a worker round trip, QuickJS. */
export function executionTarget(baseURL: string, token: string): Target {
  return {
    key: 'execution',
    label: 'execution (POST /v1/agents/example/executions)',
    url: `${baseURL}/v1/agents/example/executions`,
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: TRIVIAL_EXECUTION,
    verify: (body) => {
      const record = parse(body)
      return record?.status === 'ok' && record.result === 2 && record.error === null
    },
  }
}

/** The bare Hono route, sent the same headers and body so the client does the same work. */
export function bareTarget(baseURL: string, token: string): Target {
  return {
    key: 'bare',
    label: 'bare Hono route (POST /)',
    url: `${baseURL}/`,
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: TRIVIAL_EXECUTION,
    verify: (body) => parse(body)?.ok === true,
  }
}

/**
 * The process-hop floor: HTTP plus a JSON IPC round trip to a worker process that answers at once,
 * with no engine, policy or store. Same headers and body as the other targets.
 */
export function hopTarget(baseURL: string, token: string): Target {
  return {
    key: 'hop',
    label: 'process hop floor (HTTP + IPC round trip, no engine)',
    url: `${baseURL}/`,
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: TRIVIAL_EXECUTION,
    verify: (body) => {
      const reply = parse(body)
      return reply?.status === 'ok' && reply.result === 2
    },
  }
}

/**
 * Sends one request outside the load run and throws unless it is a 200 JSON answer that passes the
 * target's check, so a misconfigured target fails before (and after) it is measured.
 */
export async function checkSample(target: Target): Promise<void> {
  const response = await fetch(target.url, {
    method: target.method,
    headers: target.headers,
    body: target.body,
    signal: AbortSignal.timeout(10_000),
  })
  const text = await response.text()
  const type = response.headers.get('content-type') ?? ''
  if (response.status !== 200 || !type.includes('application/json') || !target.verify(text)) {
    throw new Error(
      `${target.label}: sample request got ${response.status} (${type || 'no content-type'}): ${clip(text)}`,
    )
  }
}

export function clip(text: string, max = 300): string {
  return text.length <= max ? text : `${text.slice(0, max)}... (${text.length} chars)`
}

function parse(body: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(body)
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : null
  } catch {
    return null
  }
}
