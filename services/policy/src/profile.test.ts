import { describe, expect, it } from 'vitest'
import { decideRun } from './decide-run.ts'
import { type ResolvedProfile, resolveProfile } from './profile.ts'

const limits = { cpuMs: 100, wallMs: 500, memoryMb: 16, outputBytes: 1024, bindingCalls: 0 }
const valid = { name: 'p', engines: ['quickjs', 'container'], languages: ['javascript', 'python'], limits }

function profile(document: unknown = valid): ResolvedProfile {
  const result = resolveProfile(document)
  if (!result.ok) throw new Error(JSON.stringify(result.issues))
  return result.profile
}

describe('resolveProfile', () => {
  it('resolves a valid profile with every limit explicit, frozen', () => {
    const p = profile()
    expect(p.limits).toEqual(limits)
    expect(Object.isFrozen(p) && Object.isFrozen(p.limits)).toBe(true)
  })

  it.each([
    ['an unknown top-level key', { ...valid, network: {} }, '$'],
    ['an unknown limit', { ...valid, limits: { ...limits, gpuMs: 1 } }, '$.limits'],
    ['a missing limit', { ...valid, limits: { cpuMs: 1 } }, '$.limits.wallMs'],
    ['a limit above its ceiling', { ...valid, limits: { ...limits, cpuMs: 10_000_000 } }, '$.limits.cpuMs'],
    ['a fractional limit', { ...valid, limits: { ...limits, memoryMb: 1.5 } }, '$.limits.memoryMb'],
    ['a negative limit', { ...valid, limits: { ...limits, bindingCalls: -1 } }, '$.limits.bindingCalls'],
    ['an engine listed twice', { ...valid, engines: ['quickjs', 'quickjs'] }, '$.engines'],
    ['no engines', { ...valid, engines: [] }, '$.engines'],
    ['an unknown engine', { ...valid, engines: ['docker'] }, '$.engines[0]'],
    ['a bad name', { ...valid, name: '../etc' }, '$.name'],
  ])('refuses %s, naming the field', (_what, document, path) => {
    const result = resolveProfile(document)
    expect(result.ok).toBe(false)
    if (!result.ok) expect(result.issues.map((i) => i.path)).toContain(path)
  })
})

describe('decideRun', () => {
  it('allows a listed language on the first engine that can run it', () => {
    expect(decideRun(profile(), { language: 'python' })).toMatchObject({
      effect: 'allow',
      engine: 'container',
    })
    expect(decideRun(profile(), { language: 'javascript' })).toMatchObject({
      effect: 'allow',
      engine: 'quickjs',
    })
  })

  it('denies a language the profile does not list, pointing at the rule', () => {
    expect(decideRun(profile(), { language: 'bash' })).toMatchObject({
      effect: 'deny',
      code: 'LANGUAGE_NOT_ALLOWED',
      rule: 'profiles/p#/languages',
    })
  })

  it('denies an engine the profile does not list', () => {
    expect(decideRun(profile(), { language: 'javascript', engine: 'isolate' })).toMatchObject({
      effect: 'deny',
      code: 'ENGINE_NOT_ALLOWED',
    })
  })

  it('denies an allowed engine that cannot run the language', () => {
    expect(decideRun(profile(), { language: 'python', engine: 'quickjs' })).toMatchObject({
      effect: 'deny',
      code: 'LANGUAGE_UNSUPPORTED',
    })
  })

  it('denies when no allowed engine can run an allowed language', () => {
    const jsOnlyEngines = profile({ ...valid, engines: ['quickjs'] })
    expect(decideRun(jsOnlyEngines, { language: 'python' })).toMatchObject({ code: 'LANGUAGE_UNSUPPORTED' })
  })
})
