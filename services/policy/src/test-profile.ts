import type { ResolvedProfile } from './profile.ts'
import { resolveProfile } from './resolve.ts'

/**
 * For tests: resolves a root profile named `p` (QuickJS, JavaScript, small limits) with `sections`
 * added, throwing with the issues when it does not resolve.
 */
export function testProfile(sections: object): ResolvedProfile {
  const limits = { cpuMs: 100, wallMs: 500, memoryMb: 16, outputBytes: 1024, bindingCalls: 10 }
  const result = resolveProfile({
    name: 'p',
    engines: ['quickjs'],
    languages: ['javascript'],
    limits,
    ...sections,
  })
  if (!result.ok) throw new Error(JSON.stringify(result.issues))
  return result.profile
}
