import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { stripTypes } from '../../typescript.ts'
import { type CpuMeter, THREAD_CPU_METER } from './cpu-meter.ts'
import { readLayout } from './memory-image.ts'
import type { QuickJSBuild } from './quickjs-build.ts'

/**
 * V8's `gc()`, taken from a throwaway context with the flag on only while that context is made: with
 * `--expose-gc` on the command line every context would get a `gc` global, guest isolates included.
 */
const collectGarbage: (() => void) | undefined = (() => {
  try {
    setFlagsFromString('--expose-gc')
    const gc: unknown = runInNewContext('gc')
    return typeof gc === 'function' ? (gc as () => void) : undefined
  } catch {
    return undefined
  } finally {
    setFlagsFromString('--no-expose-gc')
  }
})()

let build: QuickJSBuild | null = null

/** The QuickJS build on disk, compiled once per process, its layout read from the binary. */
export function nodeQuickJSBuild(): QuickJSBuild {
  if (build === null) {
    const require = createRequire(import.meta.url)
    const binary = readFileSync(require.resolve('@jitl/quickjs-wasmfile-release-sync/wasm'))
    build = {
      wasm: new WebAssembly.Module(binary),
      layout: readLayout(binary),
      ...(collectGarbage === undefined ? {} : { collectGarbage }),
    }
  }
  return build
}

/** What the engine takes on Node: the build on disk, the thread's CPU clock and Node's type stripper. */
export function nodeQuickJSOptions(): {
  build: QuickJSBuild
  meter: CpuMeter
  stripTypes: typeof stripTypes
} {
  return { build: nodeQuickJSBuild(), meter: THREAD_CPU_METER, stripTypes }
}
