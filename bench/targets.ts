/** The measured targets, in the order the table prints them. */
export const TARGET_KEYS = ['bare', 'hop', 'execution', 'isolate', 'quickjsFib', 'isolateFib'] as const
export type TargetKey = (typeof TARGET_KEYS)[number]

/** One HTTP endpoint under load: the request sent and the check every response body must pass. */
export interface Target {
  /** Key in the JSON results. */
  key: TargetKey
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

/** The agent the engine targets run as: created by the bench under the built-in `tool-runner` profile. */
export const BENCH_AGENT = 'bench'

/** CPU-bound guest work: about 630 000 calls, the same on both engines. */
const FIB_27 = 'const fib = (n) => (n < 2 ? n : fib(n - 1) + fib(n - 2))\nexport default fib(27)'
const FIB_27_RESULT = 196418

/**
 * An execution on a named engine as the bench agent: the trivial `1 + 1`, or fib(27). The label
 * names the engine and the work; the check is the same record check as the execution path's.
 */
export function engineTarget(
  baseURL: string,
  token: string,
  key: 'isolate' | 'quickjsFib' | 'isolateFib',
): Target {
  const engine = key === 'quickjsFib' ? 'quickjs' : 'isolate'
  const fib = key !== 'isolate'
  const expected = fib ? FIB_27_RESULT : 2
  return {
    key,
    label: `${engine} ${fib ? 'fib(27)' : '1 + 1'} (POST /v1/agents/${BENCH_AGENT}/executions)`,
    url: `${baseURL}/v1/agents/${BENCH_AGENT}/executions`,
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ language: 'javascript', engine, code: fib ? FIB_27 : 'export default 1 + 1' }),
    verify: (body) => {
      const record = parse(body)
      return record?.status === 'ok' && record.result === expected && record.engine === engine
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
