import { CordonError, ErrorCode } from '@cordon/contracts'
import type { SecretInfo, Store } from './storage/store.ts'

/** Names a `store:NAME` secret source can take. */
export const SECRET_STORE_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/
/** Largest secret value (UTF-8 bytes). */
export const MAX_SECRET_BYTES = 16 * 1024

/**
 * The tenant's secrets store, write-only: a value goes in and is never answered by any method here
 * (only the egress binding reads values, to put them into requests to hosts they are granted for).
 * Every change is audited, without the value.
 */
export class SecretsAdmin {
  readonly #store: Store

  constructor(store: Store) {
    this.#store = store
  }

  put(tenant: string, name: string, value: string): SecretInfo {
    checkName(name)
    if (value.length === 0 || Buffer.byteLength(value) > MAX_SECRET_BYTES) {
      throw new CordonError(
        ErrorCode.VALIDATION_FAILED,
        `a secret's value must be 1 to ${MAX_SECRET_BYTES} bytes`,
        [{ path: '$.value', message: `must be 1 to ${MAX_SECRET_BYTES} bytes` }],
      )
    }
    const info = this.#store.secrets.put(tenant, name, value)
    this.#audit(tenant, 'secret.put', name)
    return info
  }

  get(tenant: string, name: string): SecretInfo {
    checkName(name)
    const found = this.#store.secrets.list(tenant).find((info) => info.name === name)
    if (found === undefined) throw new CordonError(ErrorCode.SECRET_NOT_FOUND, `no secret named "${name}"`)
    return found
  }

  list(tenant: string): SecretInfo[] {
    return this.#store.secrets.list(tenant)
  }

  delete(tenant: string, name: string): void {
    checkName(name)
    if (!this.#store.secrets.delete(tenant, name)) {
      throw new CordonError(ErrorCode.SECRET_NOT_FOUND, `no secret named "${name}"`)
    }
    this.#audit(tenant, 'secret.delete', name)
  }

  #audit(tenant: string, kind: string, name: string): void {
    this.#store.audit.append(tenant, {
      kind,
      agent: null,
      execution: null,
      decision: 'info',
      code: 'CHANGED',
      rule: null,
      detail: { name },
    })
  }
}

function checkName(name: string): void {
  if (!SECRET_STORE_NAME.test(name)) {
    throw new CordonError(
      ErrorCode.BAD_REQUEST,
      'invalid secret name: use 1-128 characters of A-Z, a-z, 0-9, "_", "." or "-", starting with a letter or "_"',
    )
  }
}
