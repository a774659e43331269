import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { SandboxSessions, Supervisor } from '@cordon/executor'
import { Harness, type HarnessOptions } from '@cordon/harness'
import { loadBuiltinProfiles, SqliteStore } from '@cordon/harness/node'

const REPO = fileURLToPath(new URL('../../', import.meta.url))

export interface TestHarness {
  harness: Harness
  close(): Promise<void>
}

/**
 * A Harness without the HTTP layer, for tests that need more than the one tenant the server's token
 * acts for: real worker processes (one), an in-memory SQLite store, the built-in profiles, container
 * sessions.
 */
export async function startTestHarness(
  options: Partial<Omit<HarnessOptions, 'store' | 'supervisor'>> = {},
): Promise<TestHarness> {
  const supervisor = new Supervisor({ workers: 1 })
  await supervisor.start()
  const store = new SqliteStore(':memory:')
  const harness = new Harness({
    store,
    supervisor,
    builtinProfiles: loadBuiltinProfiles(join(REPO, 'sandbox-profiles')),
    engines: ['quickjs'],
    ...options,
    // Container sessions, as the service has them (the container engine's sandboxes).
    sessions: { sandboxes: new SandboxSessions(), ...options.sessions },
  })
  return {
    harness,
    async close() {
      await supervisor.stop()
      store.close()
    },
  }
}

/** Stores, for `tenant`, a QuickJS profile `p` and an agent `a` under it (for tests of several tenants). */
export function deployQuickAgent(harness: Harness, tenant: string): void {
  const profile = {
    engines: ['quickjs'],
    languages: ['javascript'],
    limits: { cpuMs: 1000, wallMs: 5000, memoryMb: 32, outputBytes: 4096, bindingCalls: 0 },
  }
  harness.putProfile(tenant, 'p', JSON.stringify(profile), 'json')
  harness.putAgent(tenant, 'a', JSON.stringify({ sandbox: 'p' }), 'json')
}
