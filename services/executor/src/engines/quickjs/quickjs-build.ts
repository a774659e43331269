import type { MemoryLayout } from './memory-image.ts'

/**
 * The compiled QuickJS build the engine runs, and what it needs to know of it. On Node it is read
 * from the package on disk (`nodeQuickJSBuild`); on Workers the wasm arrives as a module import,
 * since compiling wasm from bytes at run time is not allowed there (`prebuiltQuickJS`).
 */
export interface QuickJSBuild {
  readonly wasm: WebAssembly.Module
  /** Where the build keeps its static data, stack and heap (see `memory-image.ts`). */
  readonly layout: MemoryLayout
  /** Collects garbage now, where the runtime allows it: a dropped module's large heap goes back at once. */
  readonly collectGarbage?: () => void
}

/**
 * The layout of the pinned build (`@jitl/quickjs-wasmfile-release-sync` 0.32.0), for runtimes that get
 * the compiled module without its bytes. A test reads it from the binary and must find exactly this;
 * every module is still checked against it when made (`verifyLayout`), so a build that differs is
 * refused instead of being restored wrongly.
 */
export const PINNED_LAYOUT: MemoryLayout = Object.freeze({ dataEnd: 90_208, stackTop: 5_333_088 })

/** A build from a precompiled module (a Worker's wasm import) of the pinned package version. */
export function prebuiltQuickJS(wasm: WebAssembly.Module): QuickJSBuild {
  return { wasm, layout: PINNED_LAYOUT }
}
