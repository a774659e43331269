import { randomBytes } from 'node:crypto'

/** A new execution id: time-ordered prefix plus 80 random bits, URL-safe. */
export function newExecutionId(): string {
  return `ex_${Date.now().toString(36)}${randomBytes(10).toString('base64url')}`
}
