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

/**
 * Where a document holds an own `__proto__` key (JSON.parse and YAML keep one as data). Validation
 * would drop it silently, and a dropped key is an ignored one; it is refused instead.
 */
export function protoKeyPath(value: unknown, path = '$', depth = 0): string | null {
  if (value === null || typeof value !== 'object' || depth > 64) return null
  for (const [key, inner] of Object.entries(value)) {
    const at = Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`
    if (key === '__proto__') return at
    const found = protoKeyPath(inner, at, depth + 1)
    if (found !== null) return found
  }
  return null
}
