import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import { interruptCountMeter } from './cpu-meter.ts'
import { readLayout } from './memory-image.ts'
import { PINNED_LAYOUT } from './quickjs-build.ts'
import { QuickJSEngine } from './quickjs-engine.ts'
import { nodeQuickJSBuild } from './quickjs-node-build.ts'

const limits = {
  cpuMs: 100,
  wallMs: 1000,
  memoryMb: 16,
  outputBytes: 1024,
  bindingCalls: 0,
  processes: 1,
  openFiles: 1,
}

describe('the QuickJS build a Worker gets as a compiled module', () => {
  it('has exactly the pinned layout (read here from the binary a Worker cannot read)', () => {
    const binary = readFileSync(
      createRequire(import.meta.url).resolve('@jitl/quickjs-wasmfile-release-sync/wasm'),
    )
    expect(readLayout(binary)).toEqual(PINNED_LAYOUT)
  })

  it('refuses to run on a layout whose heap is not where the module has it, instead of restoring it wrongly', async () => {
    const { wasm } = nodeQuickJSBuild()
    const wrong = {
      wasm,
      layout: { dataEnd: PINNED_LAYOUT.dataEnd, stackTop: PINNED_LAYOUT.stackTop - 2 * 1024 * 1024 },
    }
    const engine = new QuickJSEngine({ build: wrong, meter: interruptCountMeter(), warmSpare: false })
    await expect(
      engine.run({
        engine: 'quickjs',
        language: 'javascript',
        code: 'export default 1',
        inputJSON: 'null',
        limits,
        tenantKey: 't',
      }),
    ).rejects.toThrow(/unexpected QuickJS memory layout/)
    engine.dispose()
  })
})
