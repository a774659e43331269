import { describe, expect, it } from 'vitest'
import { HEAP_OVERHEAD_BYTES, ModulePool } from './module-pool.ts'
import { nodeQuickJSBuild } from './quickjs-node-build.ts'

describe('ModulePool', () => {
  it('never hands one tenant the module (and freed heap) of another', async () => {
    const pool = new ModulePool({ maxRunsPerModule: 100, build: nodeQuickJSBuild(), warmSpare: true })
    const a = await pool.acquire('tenant-a', 16)
    pool.release(a, false)
    const b = await pool.acquire('tenant-b', 16)
    pool.release(b, false)
    expect(b.module).not.toBe(a.module)
    const a2 = await pool.acquire('tenant-a', 16)
    expect(a2.module).not.toBe(a.module) // a's module was retired when b took the slot
    pool.dispose()
  })

  it('reuses a module for the same tenant and size until maxRunsPerModule', async () => {
    const pool = new ModulePool({ maxRunsPerModule: 2, build: nodeQuickJSBuild(), warmSpare: true })
    const first = await pool.acquire('t', 16)
    pool.release(first, false)
    const second = await pool.acquire('t', 16)
    pool.release(second, false)
    const third = await pool.acquire('t', 16)
    expect(second.module).toBe(first.module)
    expect(third.module).not.toBe(first.module)
    pool.dispose()
  })

  it('drops a tainted module instead of reusing it', async () => {
    const pool = new ModulePool({ maxRunsPerModule: 100, build: nodeQuickJSBuild(), warmSpare: true })
    const first = await pool.acquire('t', 16)
    pool.release(first, true)
    const next = await pool.acquire('t', 16)
    expect(next.module).not.toBe(first.module)
    pool.dispose()
  })

  it('caps linear memory at the memory limit plus overhead', async () => {
    const pool = new ModulePool({ maxRunsPerModule: 100, build: nodeQuickJSBuild(), warmSpare: true })
    const lease = await pool.acquire('t', 8)
    const memory = lease.module.getWasmMemory()
    expect(() => memory.grow((8 * 1024 * 1024 + HEAP_OVERHEAD_BYTES) / 65536)).toThrow(RangeError)
    pool.dispose()
  })
})
