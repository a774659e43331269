// A Worker for tests/worker-gateway.test.ts: the gateway's Hono app and the Harness inside a Durable
// Object, on the object's SQLite storage (SqlStore). No engine runs here yet: executions are refused
// as ENGINE_UNAVAILABLE. Bundled by the test and run in workerd (Miniflare).

import { CordonError, ErrorCode } from '@cordon/contracts'
import type { JobRunner } from '@cordon/executor/portable'
import { Harness } from '@cordon/harness'
import { DurableObjectSqlDatabase, type DurableObjectStorageLike, SqlStore } from '@cordon/harness/store'
import { createApp } from '../../services/gateway/src/app.ts'
import { TokenAuthenticator } from '../../services/gateway/src/auth.ts'

export const TOKENS = { acme: 'acme-token-0123456789abcdef', umbrella: 'umbrella-token-0123456789abc' }

const NO_ENGINE: JobRunner = {
  run: () => {
    throw new CordonError(ErrorCode.ENGINE_UNAVAILABLE, 'no engine runs in this probe')
  },
}

export class GatewayProbe {
  readonly #app: ReturnType<typeof createApp>

  constructor(ctx: { storage: DurableObjectStorageLike }) {
    const store = new SqlStore(new DurableObjectSqlDatabase(ctx.storage), { auditKey: Buffer.alloc(32, 9) })
    const harness = new Harness({ store, supervisor: NO_ENGINE, builtinProfiles: new Map(), engines: [] })
    this.#app = createApp({
      harness,
      auth: new TokenAuthenticator([
        { token: TOKENS.acme, principal: { tenant: 'acme', scopes: ['admin'] } },
        { token: TOKENS.umbrella, principal: { tenant: 'umbrella', scopes: ['admin'] } },
      ]),
    })
  }

  fetch(request: Request): Response | Promise<Response> {
    return this.#app.fetch(request)
  }
}

interface Env {
  GATEWAY: {
    idFromName(name: string): unknown
    get(id: unknown): { fetch(request: Request): Promise<Response> }
  }
}

export default {
  fetch(request: Request, env: Env): Promise<Response> {
    return env.GATEWAY.get(env.GATEWAY.idFromName('one')).fetch(request)
  },
}
