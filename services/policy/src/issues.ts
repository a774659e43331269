import type { Issue } from '@cordon/contracts'
import type { z } from 'zod'

/** Turns zod issues into `{ path, message }` pairs with JSON-path style locations (`$.limits.cpuMs`). */
export function toIssues(error: z.ZodError): Issue[] {
  return error.issues.slice(0, 20).map((issue) => ({ path: jsonPath(issue.path), message: issue.message }))
}

export function jsonPath(path: readonly PropertyKey[]): string {
  let out = '$'
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : `.${String(key)}`
  return out
}
