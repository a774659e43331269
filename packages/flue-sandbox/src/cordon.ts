import { CordonSandbox } from './cordon-sandbox.ts'
import { sharedDriver, takeDriver, takeDrivers } from './driver-registry.ts'
import { type FlueSandbox, loadFlueRuntime } from './flue-runtime.ts'
import { SessionClient, type SessionClientOptions } from './session-client.ts'
import { WORKSPACE } from './workspace-paths.ts'

/** `cordon(options)`: where Cordon is, the API key, and the agent whose sessions Flue works in. */
export type CordonOptions = SessionClientOptions

/** A Flue `SandboxFactory` over Cordon sessions, plus what Flue's contract leaves to the application. */
export interface CordonSandboxFactory {
  /**
   * Flue's `SandboxFactory.createSandbox` (2.1): the live sandbox for one agent instance, rooted at
   * `/workspace`. Needs `@flue/runtime`, imported on first call.
   */
  createSandbox(options: { id: string }): Promise<FlueSandbox>
  /** The same under the method's former name (Flue calls it only when `createSandbox` is absent). */
  createSessionEnv(options: { id: string }): Promise<FlueSandbox>
  /** The sandbox driver behind an instance id, without Flue: one per id, its session opened on first use. */
  driver(options: { id: string }): CordonSandbox
  /** Ends the session behind an id (its /workspace with it); a later call for the id starts afresh. */
  close(options: { id: string }): Promise<void>
  /** Ends every session opened for this factory's service, agent and key (by any factory of the same options). */
  closeAll(): Promise<void>
}

/**
 * Flue's sandbox over Cordon: `useSandbox(cordon({ url, token, agent }))`. Each Flue instance id
 * gets one Cordon container session, opened lazily and reopened when Cordon ended it (a reopened
 * session starts with an empty /workspace). The mapping is kept per process, not per factory
 * object: Flue builds a new factory on every render and calls `createSandbox` for every message,
 * and each call for an id finds the same session. The options are checked here; the token is kept
 * private and sent only as the bearer token. Flue never ends sandboxes: sessions end on their idle
 * timeout, or when the application calls `close` / `closeAll`.
 */
export function cordon(options: CordonOptions): CordonSandboxFactory {
  const settings: CordonOptions = { ...options }
  new SessionClient(settings)
  // Drivers are shared only by factories with the same service, agent, key, idle timeout and fetch.
  const scope = [
    settings.url,
    settings.agent,
    settings.token,
    settings.idleTimeoutSeconds ?? '',
    fetchIdentity(settings.fetch),
  ].join('\0')
  const driver = ({ id }: { id: string }): CordonSandbox => {
    if (typeof id !== 'string' || id === '') throw new TypeError('cordon: the instance id must be a string')
    return sharedDriver(scope, id, () => new CordonSandbox(settings))
  }
  const createSandbox = async (request: { id: string }): Promise<FlueSandbox> => {
    const sandbox = driver(request)
    const runtime = await loadFlueRuntime()
    return runtime.sandboxFromDriver(sandbox, WORKSPACE)
  }
  return {
    createSandbox,
    createSessionEnv: createSandbox,
    driver,
    async close({ id }) {
      await takeDriver(scope, id)?.close()
    },
    async closeAll() {
      await Promise.all(takeDrivers(scope).map((found) => found.close()))
    },
  }
}

/** A number per `fetch` function given (none: 0), so that factories with other transports never share drivers. */
const fetchIds = new WeakMap<object, number>()
let lastFetchId = 0
function fetchIdentity(fetch: unknown): number {
  if (typeof fetch !== 'function') return 0
  let id = fetchIds.get(fetch)
  if (id === undefined) {
    id = ++lastFetchId
    fetchIds.set(fetch, id)
  }
  return id
}
