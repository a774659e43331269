import { describe, expect, it } from 'vitest'
import { loadFlueRuntime, MISSING_RUNTIME } from './flue-runtime.ts'

describe('loadFlueRuntime', () => {
  it('says plainly that @flue/runtime is missing', async () => {
    const missing = Object.assign(new Error("Cannot find package '@flue/runtime'"), {
      code: 'ERR_MODULE_NOT_FOUND',
    })
    await expect(loadFlueRuntime(() => Promise.reject(missing))).rejects.toThrow(MISSING_RUNTIME)
  })

  it('refuses a @flue/runtime without sandboxFromDriver or its former name', async () => {
    await expect(loadFlueRuntime(() => Promise.resolve({}))).rejects.toThrow(/neither sandboxFromDriver/)
  })

  it('takes createSandboxSessionEnv where sandboxFromDriver is absent', async () => {
    const runtime = await loadFlueRuntime(() =>
      Promise.resolve({ createSandboxSessionEnv: (driver: object, cwd: string) => ({ driver, cwd }) }),
    )
    expect(runtime.sandboxFromDriver({}, '/workspace')).toMatchObject({ cwd: '/workspace' })
  })

  it('loads the installed @flue/runtime', async () => {
    const runtime = await loadFlueRuntime()
    expect(typeof runtime.sandboxFromDriver).toBe('function')
  })
})
