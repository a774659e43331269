import { z } from 'zod'

/**
 * Hard ceilings on what any profile may ask for. There is no "unlimited": every limit a profile
 * states must lie inside these bounds, and every resolved profile states all of them.
 */
export const LIMIT_CEILINGS = {
  cpuMs: 60_000,
  wallMs: 300_000,
  memoryMb: 1024,
  outputBytes: 16 * 1024 * 1024,
  bindingCalls: 100_000,
} as const

const bounded = (min: number, max: number, unit: string) =>
  z
    .number()
    .int(`must be a whole number of ${unit}`)
    .min(min, `must be at least ${min} ${unit}`)
    .max(max, `must be at most ${max} ${unit}`)

export const LimitsSchema = z.strictObject({
  cpuMs: bounded(1, LIMIT_CEILINGS.cpuMs, 'ms'),
  wallMs: bounded(1, LIMIT_CEILINGS.wallMs, 'ms'),
  memoryMb: bounded(4, LIMIT_CEILINGS.memoryMb, 'MiB'),
  outputBytes: bounded(64, LIMIT_CEILINGS.outputBytes, 'bytes'),
  bindingCalls: bounded(0, LIMIT_CEILINGS.bindingCalls, 'calls'),
})

/** Every resource limit of one execution, all explicit. */
export type Limits = z.infer<typeof LimitsSchema>
