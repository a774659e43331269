import { join } from 'node:path'
import { type ChildServer, spawnChildServer } from '../../bench/child-server.ts'
import type { Body } from './server.ts'

const REPO_ROOT = new URL('../../', import.meta.url).pathname

/**
 * The real service as a child process (`services/gateway/src/adapters/node.ts`, as `./cordon start`
 * runs it), for tests that kill it: on an ephemeral port, with `dataDir` and `token`, none of this
 * process's CORDON_ settings, and `env` on top. Its `ready` resolves with its base URL once it listens.
 */
export function spawnService(options: {
  dataDir: string
  token: string
  env?: Record<string, string>
}): ChildServer {
  return spawnChildServer({
    name: 'cordon',
    args: ['--disable-warning=ExperimentalWarning', join(REPO_ROOT, 'services/gateway/src/adapters/node.ts')],
    env: {
      ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('CORDON_'))),
      PORT: '0',
      HOST: '127.0.0.1',
      CORDON_DATA_DIR: options.dataDir,
      CORDON_ADMIN_TOKEN: options.token,
      ...options.env,
    },
    readyLine: /^cordon: listening on (http:\/\/\S+)/,
    readyTimeoutMs: 60_000,
  })
}

/** Calls the service at `base` with `token`: the status and the parsed JSON body. */
export function serviceApi(token: string) {
  return async (base: string, method: string, path: string, body?: unknown, headers = {}) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    return { status: response.status, body: (await response.json()) as Body }
  }
}
