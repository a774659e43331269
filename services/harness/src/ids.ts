import { randomFillSync } from 'node:crypto'

const ID_RANDOM_BYTES = 10
/** Random bytes drawn from the CSPRNG in batches: one call per 409 ids instead of one per id. */
const pool = Buffer.alloc(ID_RANDOM_BYTES * 409)
let used = pool.length

/** A new execution id: time-ordered prefix plus 80 random bits, URL-safe. */
export function newExecutionId(): string {
  return newId('ex')
}

/** A new id of a kind (`ex`, `run`, `conv`): time-ordered prefix plus 80 random bits, URL-safe. */
export function newId(kind: 'ex' | 'run' | 'conv'): string {
  if (used + ID_RANDOM_BYTES > pool.length) {
    randomFillSync(pool)
    used = 0
  }
  const random = pool.toString('base64url', used, used + ID_RANDOM_BYTES)
  used += ID_RANDOM_BYTES
  return `${kind}_${Date.now().toString(36)}${random}`
}
