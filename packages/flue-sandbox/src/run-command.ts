import {
  ENDING_STATUSES,
  type ExecutionRecord,
  type ShellResult,
  shellResult,
  withNotes,
} from './exec-result.ts'
import type { SessionClient } from './session-client.ts'
import { commandScript, ENV_NAME } from './shell-scripts.ts'
import { commandDirectory } from './workspace-paths.ts'

/** `exec`'s options: Flue 2.1's `timeoutMs`, and `timeout` (milliseconds too) as older connectors named it. */
export interface ExecOptions {
  cwd?: string | undefined
  env?: Readonly<Record<string, string>> | undefined
  timeoutMs?: number | undefined
  timeout?: number | undefined
  signal?: AbortSignal | undefined
}

/** How long past a deadline the client waits for Cordon's answer before it gives up on it. */
const ANSWER_GRACE_MS = 15_000
/** The largest delay `setTimeout` honours. */
const MAX_TIMER_MS = 2 ** 31 - 1
/** An abort this close to the command's own deadline is left to the deadline (the session survives). */
const DEFER_MS = 2000
/** How long after the deadline's kill a deferred abort waits for the answer. */
const ANSWER_MS = 1500
/** The reason the client gave up waiting. */
const NO_ANSWER = new Error('no answer in time')

/**
 * Runs one script in the session. `code` is built once the session is open (so it can use the
 * profile's wall-time limit). A record whose status ends the session's sandbox (timeout, memory,
 * killed) is followed by a check, and a session Cordon no longer has is dropped: the next
 * operation opens a new one.
 */
export async function runScript(
  client: SessionClient,
  code: () => string,
  signal?: AbortSignal,
): Promise<{ record: ExecutionRecord; ended: boolean }> {
  let session = ''
  const record = await client.withSession((id) => {
    session = id
    return client.execute(id, code(), signal)
  })
  let ended = false
  if (ENDING_STATUSES.has(record.status)) {
    ended = !(await client.alive(session).catch(() => true))
    if (ended) client.forget(session, `a command ended it: ${record.error?.message ?? record.status}`)
  }
  return { record, ended }
}

/**
 * `exec`: the command runs under bash in the session's sandbox, in `cwd` (default `/workspace`)
 * with `env` exported (names must be shell identifiers; values are single-quoted, never expanded).
 * A deadline (`timeoutMs`) stops it with `timeout(1)` inside the sandbox: exit 124 and a stderr
 * note. When the agent's wall-time limit is known the command is also stopped just before it, so
 * that Cordon's own limit (which ends the session and its /workspace) is not reached.
 *
 * `signal` aborts the HTTP request, and Cordon then cancels the command and ends the session's
 * sandbox (the next call opens a new session). One exception keeps the workspace: when the
 * command's own deadline stops it within `DEFER_MS` anyway (Flue's bash tool aborts exactly at its
 * timeout), the request is left to that deadline. Either way the call rejects with the signal's reason.
 */
export async function runCommand(
  client: SessionClient,
  command: string,
  options: ExecOptions = {},
): Promise<ShellResult> {
  if (typeof command !== 'string') throw new TypeError('exec: the command must be a string')
  if (command.includes('\0')) throw new TypeError('exec: the command holds NUL')
  const cwd = commandDirectory(options.cwd)
  const env = options.env ?? {}
  for (const [name, value] of Object.entries(env)) {
    if (!ENV_NAME.test(name))
      throw new TypeError(`exec: "${name.slice(0, 64)}" is not a valid environment name`)
    if (typeof value !== 'string' || value.includes('\0'))
      throw new TypeError(`exec: the value of ${name} must be a string without NUL`)
  }
  const requested = positive(options.timeoutMs ?? options.timeout)
  const caller = options.signal
  caller?.throwIfAborted()
  const request = new AbortController()
  let plan: Deadline = { deadlineMs: null, killAfterMs: 1000, byLimit: false }
  let startedAt = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  const abortIn = (ms: number, reason: unknown) => {
    clearTimeout(timer)
    // Past the largest delay a timer takes (2^31 - 1 ms, about 24 days) there is no client deadline:
    // Node would fire it at once.
    if (ms > MAX_TIMER_MS) return
    timer = setTimeout(() => request.abort(reason), Math.max(0, ms))
  }
  const onAbort = () => {
    const stops = plan.deadlineMs === null ? null : startedAt + plan.deadlineMs + plan.killAfterMs
    if (stops !== null && stops - Date.now() <= DEFER_MS)
      abortIn(stops + ANSWER_MS - Date.now(), caller?.reason)
    else request.abort(caller?.reason)
  }
  caller?.addEventListener('abort', onAbort, { once: true })
  const build = () => {
    plan = deadline(requested, client.wallMs)
    startedAt = Date.now()
    if (plan.deadlineMs !== null && caller?.aborted !== true)
      abortIn(plan.deadlineMs + plan.killAfterMs + ANSWER_GRACE_MS, NO_ANSWER)
    return commandScript({ command, cwd, env, ...plan })
  }
  let outcome: Awaited<ReturnType<typeof runScript>>
  try {
    outcome = await runScript(client, build, request.signal)
  } catch (error) {
    if (caller?.aborted) throw caller.reason
    if (request.signal.reason !== NO_ANSWER) throw error
    const note = `no answer from Cordon within ${ANSWER_GRACE_MS} ms of the deadline; the command was abandoned`
    return { stdout: '', stderr: withNotes('', [note]), exitCode: 124 }
  } finally {
    clearTimeout(timer)
    caller?.removeEventListener('abort', onAbort)
  }
  if (caller?.aborted) throw caller.reason
  const { record, ended } = outcome
  const notes: string[] = []
  const notice = client.takeNotice()
  if (notice !== null) notes.push(notice)
  const wall = record.usage?.wallMs ?? 0
  if (record.exitCode === 124 && plan.deadlineMs !== null && wall >= plan.deadlineMs * 0.9) {
    notes.push(
      plan.byLimit
        ? `the command was stopped after ${plan.deadlineMs} ms, before the agent's wall-time limit (${client.wallMs} ms) would end the session`
        : `the command timed out after ${plan.deadlineMs} ms`,
    )
  }
  if (ended) {
    notes.push(
      "the session's sandbox ended with this command; the next call opens a new session whose /workspace starts empty",
    )
  }
  return shellResult(record, notes)
}

interface Deadline {
  deadlineMs: number | null
  killAfterMs: number
  /** The deadline is the profile's wall-time limit, less a margin, rather than the caller's. */
  byLimit: boolean
}

/** The caller's deadline, held under the profile's wall-time limit less a margin for the kill. */
export function deadline(requested: number | null, wallMs: number | null): Deadline {
  if (wallMs === null) return { deadlineMs: requested, killAfterMs: 1000, byLimit: false }
  const margin = Math.min(2000, Math.max(200, wallMs * 0.2))
  const limit = Math.max(100, Math.floor(wallMs - margin))
  const killAfterMs = Math.floor(Math.min(1000, margin / 2))
  if (requested !== null && requested <= limit) return { deadlineMs: requested, killAfterMs, byLimit: false }
  return { deadlineMs: limit, killAfterMs, byLimit: true }
}

function positive(value: number | undefined): number | null {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.ceil(value) : null
}
