import { ENGINE_LANGUAGES, type EngineName, type Language } from '@cordon/contracts'
import type { Decision } from './decision.ts'
import { type ResolvedProfile, ruleRef } from './profile.ts'

export type RunDenyCode = 'LANGUAGE_NOT_ALLOWED' | 'ENGINE_NOT_ALLOWED' | 'LANGUAGE_UNSUPPORTED'

export interface RunRequest {
  language: Language
  engine?: EngineName | undefined
}

/**
 * Decides whether a run of `language` (optionally on a named engine) is allowed by `profile`, and on
 * which engine. Without a named engine the profile's first allowed engine that can run the language
 * is chosen. Deny by default: anything not listed by the profile is refused.
 */
export function decideRun(
  profile: ResolvedProfile,
  request: RunRequest,
): Decision<RunDenyCode, { engine: EngineName }> {
  const at = (field: string) => ruleRef(profile, `/${field}`)
  if (!profile.languages.includes(request.language)) {
    return {
      effect: 'deny',
      code: 'LANGUAGE_NOT_ALLOWED',
      rule: at('languages'),
      message: `profile "${profile.name}" does not allow language "${request.language}" (allowed: ${profile.languages.join(', ')})`,
    }
  }
  if (request.engine !== undefined) {
    if (!profile.engines.includes(request.engine)) {
      return {
        effect: 'deny',
        code: 'ENGINE_NOT_ALLOWED',
        rule: at('engines'),
        message: `profile "${profile.name}" does not allow engine "${request.engine}" (allowed: ${profile.engines.join(', ')})`,
      }
    }
    if (!ENGINE_LANGUAGES[request.engine].includes(request.language)) {
      return {
        effect: 'deny',
        code: 'LANGUAGE_UNSUPPORTED',
        rule: at('engines'),
        message: `engine "${request.engine}" cannot run ${request.language}`,
      }
    }
    return {
      effect: 'allow',
      code: 'ALLOWED',
      rule: at(`engines/${profile.engines.indexOf(request.engine)}`),
      engine: request.engine,
    }
  }
  const engine = profile.engines.find((candidate) => ENGINE_LANGUAGES[candidate].includes(request.language))
  if (engine === undefined) {
    return {
      effect: 'deny',
      code: 'LANGUAGE_UNSUPPORTED',
      rule: at('engines'),
      message: `none of the engines of profile "${profile.name}" (${profile.engines.join(', ')}) can run ${request.language}`,
    }
  }
  return { effect: 'allow', code: 'ALLOWED', rule: at(`engines/${profile.engines.indexOf(engine)}`), engine }
}
