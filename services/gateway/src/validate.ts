import { CordonError, ErrorCode } from '@cordon/contracts'
import { jsonPath } from '@cordon/policy'
import type { z } from 'zod'

/** Validates request data with a zod schema; failures are 422 VALIDATION_FAILED with every issue's path. */
export function validated<T extends z.ZodType>(schema: T, value: unknown, what: string): z.infer<T> {
  const result = schema.safeParse(value)
  if (result.success) return result.data
  const issues = result.error.issues
    .slice(0, 20)
    .map((issue) => ({ path: jsonPath(issue.path), message: issue.message }))
  const first = issues[0]
  throw new CordonError(
    ErrorCode.VALIDATION_FAILED,
    `invalid ${what}${first === undefined ? '' : `: ${first.path} ${first.message}`}`,
    issues,
  )
}
