import { Buffer } from 'node:buffer'
import { fileURLToPath } from 'node:url'
import {
  EXECUTION_STATUSES,
  type ExecutionStatus,
  type GuestErrorCode,
  type JsonValue,
} from '@cordon/contracts'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { workerChildren } from '../helpers/processes.ts'
import { type Body, startTestServer, TEST_TOKEN, type TestServer } from '../helpers/server.ts'

/**
 * Limits of the profile every attack runs under. CPU and memory are small so that each limit is
 * reached quickly; wall time leaves room for one slow native call to end by itself, so that a wall
 * kill means the guest really could not be interrupted. CPU leaves room for the memory bombs, whose
 * garbage collection near a full heap costs up to about 350 ms of CPU before the heap limit hits,
 * and stays well below the ~950 ms that QuickJS's quadratic JSON.stringify of deep nesting needs
 * before its own stack limit (those attacks must end on the CPU line).
 */
export const LIMITS = { cpuMs: 500, wallMs: 4000, memoryMb: 16, outputBytes: 65536, bindingCalls: 0 } as const

const AGENT = 'attacker'
const profileYaml = (engine: JsEngine) => `name: attack
engines: [${engine}]
languages: [javascript, typescript]
limits: { cpuMs: ${LIMITS.cpuMs}, wallMs: ${LIMITS.wallMs}, memoryMb: ${LIMITS.memoryMb}, outputBytes: ${LIMITS.outputBytes}, bindingCalls: ${LIMITS.bindingCalls} }
`

/** The engines that run JavaScript: every attack of the catalogue runs on each. */
export type JsEngine = 'quickjs' | 'isolate'

/** Checks one execution record (the JSON body answered by the API). */
export type RecordCheck = (record: Body) => void

/** One named attack: guest code and the safe outcome its execution record must show. */
export interface Attack {
  name: string
  code: string
  input?: JsonValue
  expect: RecordCheck
  /**
   * Where an engine's safe outcome differs (V8 words an error differently, or ends a bomb one limit
   * earlier), its own check; every other engine must pass `expect`.
   */
  on?: Partial<Record<JsEngine, RecordCheck>>
  /** A later, separate execution that must see nothing the attack left behind. */
  next?: { code: string; expect: RecordCheck }
}

/** The run ended normally with exactly this result. */
export const ok =
  (result: JsonValue): RecordCheck =>
  (record) => {
    expect({ status: record.status, error: record.error }, describeRecord(record)).toEqual({
      status: 'ok',
      error: null,
    })
    expect(record.result).toEqual(result)
  }

/** The guest failed with this code (status `error`) and a message matching `message`. */
export const failed =
  (code: GuestErrorCode, message: RegExp): RecordCheck =>
  (record) => {
    expect({ status: record.status, code: record.error?.code }, describeRecord(record)).toEqual({
      status: 'error',
      code,
    })
    expect(record.error.message).toMatch(message)
  }

/** The host stopped the run for a limit: exact status and code. */
export const stopped =
  (status: Exclude<ExecutionStatus, 'ok' | 'error'>, code: GuestErrorCode): RecordCheck =>
  (record) => {
    expect({ status: record.status, code: record.error?.code }, describeRecord(record)).toEqual({
      status,
      code,
    })
  }

/**
 * The host stopped the run on one of these limits (`status/CODE`): for bombs that reach two limits at
 * about the same time, where which comes first depends on the engine's heap layout and the machine.
 */
export const endedOnEither =
  (...outcomes: `${ExecutionStatus}/${GuestErrorCode}`[]): RecordCheck =>
  (record) => {
    expect(outcomes, describeRecord(record)).toContain(`${record.status}/${record.error?.code}`)
  }

/** The parts of a record that explain a failed expectation (usage shows a limit overrun). */
function describeRecord(record: Body): string {
  return JSON.stringify({ status: record.status, error: record.error, usage: record.usage })
}

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '')

/** Strings that only the host knows; none may appear in anything a guest run answers. */
function hostMarkers(t: TestServer): string[] {
  const markers = [REPO_ROOT, t.dataDir, 'node_modules', TEST_TOKEN, 'file://', '.ts:', process.env.PATH]
  return markers.filter((m): m is string => typeof m === 'string' && m.length > 3)
}

/** What must hold for every record, whatever the guest did. */
async function expectContained(t: TestServer, response: { status: number; body: Body }): Promise<void> {
  expect(response.status).toBe(200)
  const record = response.body
  expect(EXECUTION_STATUSES).toContain(record.status)
  if (record.status === 'ok') expect(record.error).toBeNull()
  else expect(record.result).toBeNull()
  const outputBytes = Buffer.byteLength(record.stdout) + Buffer.byteLength(record.stderr)
  expect(outputBytes).toBeLessThanOrEqual(LIMITS.outputBytes)
  const visible = JSON.stringify([record.result, record.stdout, record.stderr, record.error])
  expect(hostMarkers(t).filter((marker) => visible.includes(marker))).toEqual([])
  const stored = await t.request('GET', `/v1/executions/${record.id}`)
  expect(stored.status).toBe(200)
  expect(stored.body).toMatchObject({
    status: record.status,
    error: record.error,
    result: record.result,
    stdout: record.stdout,
    stderr: record.stderr,
  })
}

/**
 * Registers one test per attack against a real server (its own temp data dir and worker processes).
 * After every attack a fresh, trivial execution must answer 2 and no worker may be left busy; after
 * the catalogue every worker must be running again, and after shutdown none may be left.
 */
export function describeAttacks(title: string, catalogue: readonly Attack[], engine: JsEngine): void {
  describe(`${title} (${engine})`, () => {
    let t: TestServer
    const seen = new Set<string>()

    beforeAll(async () => {
      t = await startTestServer()
      const profile = await t.request('PUT', '/v1/profiles/attack', {
        raw: profileYaml(engine),
        contentType: 'application/yaml',
      })
      expect(profile.status).toBe(200)
      const agent = await t.request('PUT', `/v1/agents/${AGENT}`, {
        body: { name: AGENT, sandbox: 'attack' },
      })
      expect(agent.status).toBe(200)
    })

    afterAll(async () => {
      const supervisor = t.server.supervisor
      await vi.waitFor(() => expect(supervisor.stats()).toMatchObject({ workers: 2, ready: 2, busy: 0 }), {
        timeout: 5000,
      })
      await t.close()
      expect(supervisor.stats()).toMatchObject({ workers: 0, busy: 0, queued: 0 })
      await vi.waitFor(() => expect(workerChildren()).toEqual([]), { timeout: 5000 })
    })

    const expectHealthy = async () => {
      const health = await t.request('GET', '/healthz', { auth: null })
      expect(health.status).toBe(200)
      const res = await t.execute('export default 1 + 1', {}, AGENT)
      expect(res.status).toBe(200)
      expect(res.body).toMatchObject({ status: 'ok', result: 2, error: null })
      expect(seen.has(res.body.id)).toBe(false)
      seen.add(res.body.id)
      expect(t.server.supervisor.stats()).toMatchObject({ busy: 0, queued: 0 })
      // No worker left over: exactly the supervisor's two, counted from /proc.
      await vi.waitFor(
        () => {
          expect(t.server.supervisor.stats()).toMatchObject({ workers: 2, ready: 2 })
          expect(workerChildren()).toHaveLength(2)
        },
        { timeout: 5000 },
      )
    }

    for (const attack of catalogue) {
      it(attack.name, async () => {
        try {
          const res = await t.execute(
            attack.code,
            attack.input === undefined ? {} : { input: attack.input },
            AGENT,
          )
          await expectContained(t, res)
          seen.add(res.body.id)
          expect(res.body.engine).toBe(engine)
          ;(attack.on?.[engine] ?? attack.expect)(res.body)
          if (attack.next !== undefined) {
            const next = await t.execute(attack.next.code, {}, AGENT)
            await expectContained(t, next)
            attack.next.expect(next.body)
          }
        } finally {
          await expectHealthy()
        }
      })
    }
  })
}
