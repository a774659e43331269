import type { FileStat } from './cordon-sandbox.ts'
import type { ShellResult } from './exec-result.ts'

/** Flue's live `Sandbox`, as `sandboxFromDriver` builds it (the structural part this package relies on). */
export interface FlueSandbox {
  cwd: string
  resolvePath(path: string): string
  exec(
    command: string,
    options?: {
      cwd?: string | undefined
      env?: Record<string, string> | undefined
      timeoutMs?: number | undefined
      signal?: AbortSignal | undefined
    },
  ): Promise<ShellResult>
  readFile(path: string): Promise<string>
  readFileBuffer(path: string): Promise<Uint8Array>
  writeFile(path: string, content: string | Uint8Array): Promise<void>
  stat(path: string): Promise<FileStat>
  readdir(path: string): Promise<string[]>
  exists(path: string): Promise<boolean>
  mkdir(path: string, options?: { recursive?: boolean }): Promise<void>
  rm(path: string, options?: { recursive?: boolean; force?: boolean }): Promise<void>
}

/** What this package takes from `@flue/runtime`. */
export interface FlueRuntime {
  sandboxFromDriver(driver: object, cwd: string): FlueSandbox
}

export const MISSING_RUNTIME =
  '@cordon/flue-sandbox: createSandbox() needs @flue/runtime (an optional peer dependency). ' +
  'Install it (npm install @flue/runtime), or use driver({ id }) for the sandbox API without Flue.'

let cached: Promise<FlueRuntime> | undefined

/**
 * `@flue/runtime`, imported on first use (the package works without it until then). A missing
 * package is reported as such; a version without `sandboxFromDriver` (2.1) or
 * `createSandboxSessionEnv` (its former name) is refused.
 */
export function loadFlueRuntime(importer?: () => Promise<unknown>): Promise<FlueRuntime> {
  if (importer !== undefined) return resolve(importer)
  // A literal specifier (the cast only hides the module's types) lets bundlers include Flue.
  cached ??= resolve(() => import('@flue/runtime' as string))
  return cached
}

async function resolve(importer: () => Promise<unknown>): Promise<FlueRuntime> {
  let runtime: unknown
  try {
    runtime = await importer()
  } catch (error) {
    if (notFound(error)) throw new Error(MISSING_RUNTIME, { cause: error })
    throw error
  }
  const exports = (runtime ?? {}) as Record<string, unknown>
  const fromDriver = exports.sandboxFromDriver ?? exports.createSandboxSessionEnv
  if (typeof fromDriver !== 'function') {
    throw new Error(
      '@cordon/flue-sandbox: this @flue/runtime exports neither sandboxFromDriver nor createSandboxSessionEnv (2.x does)',
    )
  }
  return { sandboxFromDriver: (driver, cwd) => fromDriver(driver, cwd) as FlueSandbox }
}

function notFound(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const { code, message } = error as { code?: unknown; message?: unknown }
  if (code === 'ERR_MODULE_NOT_FOUND') return true
  return typeof message === 'string' && /cannot find (module|package)|no such module/i.test(message)
}
