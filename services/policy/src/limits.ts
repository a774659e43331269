import { z } from 'zod'

const MiB = 1024 * 1024

/**
 * Hard ceilings on what any profile may ask for. There is no "unlimited": every limit a profile
 * states must lie inside these bounds, and every resolved profile states all of them.
 */
export const LIMIT_CEILINGS = {
  cpuMs: 60_000,
  wallMs: 300_000,
  memoryMb: 1024,
  outputBytes: 16 * MiB,
  bindingCalls: 100_000,
  processes: 256,
  openFiles: 1024,
} as const

/** Engine limits a profile without `extends` may leave out; these are the values it then gets. */
export const ENGINE_LIMIT_DEFAULTS = { processes: 32, openFiles: 64 } as const

/** Ceilings on storage quotas (bytes). */
export const QUOTA_CEILINGS = { filesystemBytes: 1024 * MiB, kvBytes: 64 * MiB } as const

const bounded = (min: number, max: number, unit: string) =>
  z
    .number()
    .int(`must be a whole number of ${unit}`)
    .min(min, `must be at least ${min} ${unit}`)
    .max(max, `must be at most ${max} ${unit}`)

const LIMIT_FIELDS = {
  cpuMs: bounded(1, LIMIT_CEILINGS.cpuMs, 'ms'),
  wallMs: bounded(1, LIMIT_CEILINGS.wallMs, 'ms'),
  memoryMb: bounded(4, LIMIT_CEILINGS.memoryMb, 'MiB'),
  outputBytes: bounded(64, LIMIT_CEILINGS.outputBytes, 'bytes'),
  bindingCalls: bounded(0, LIMIT_CEILINGS.bindingCalls, 'calls'),
  processes: bounded(1, LIMIT_CEILINGS.processes, 'processes'),
  openFiles: bounded(8, LIMIT_CEILINGS.openFiles, 'files'),
}

/** Limits as written: each one optional (inherited from `extends`, or required in a root profile). */
export const LimitsInputSchema = z.strictObject({
  cpuMs: LIMIT_FIELDS.cpuMs.optional(),
  wallMs: LIMIT_FIELDS.wallMs.optional(),
  memoryMb: LIMIT_FIELDS.memoryMb.optional(),
  outputBytes: LIMIT_FIELDS.outputBytes.optional(),
  bindingCalls: LIMIT_FIELDS.bindingCalls.optional(),
  processes: LIMIT_FIELDS.processes.optional().describe('container engine: most processes at once'),
  openFiles: LIMIT_FIELDS.openFiles.optional().describe('container engine: most open files per process'),
})

/** Every resource limit of one execution, all explicit. */
export const LimitsSchema = z.strictObject(LIMIT_FIELDS)
export type Limits = z.infer<typeof LimitsSchema>

/** The limits a profile without a parent must state itself. */
export const CORE_LIMITS = ['cpuMs', 'wallMs', 'memoryMb', 'outputBytes', 'bindingCalls'] as const
export const LIMIT_NAMES = Object.keys(LIMIT_FIELDS) as (keyof Limits)[]
