import { type Decision, deny } from './decision.ts'
import type { CheckedEgress } from './egress.ts'
import { hostMatches, hostPatternOf } from './hosts.ts'
import { type ResolvedProfile, ruleRef } from './profile.ts'

export type ToolDenyCode = 'TOOL_NOT_ALLOWED'

/**
 * Decides whether guest code may call the tool `name`: only tools the profile lists by name, or every
 * tool when it lists `*` (the harness offers only tools the agent declares).
 */
export function decideTool(profile: ResolvedProfile, name: string): Decision<ToolDenyCode> {
  const named = profile.tools.indexOf(name)
  const index = named >= 0 || name === '*' ? named : profile.tools.indexOf('*')
  if (index < 0) {
    return deny('TOOL_NOT_ALLOWED', ruleRef(profile, '/tools'), `tool "${name.slice(0, 64)}" is not granted`)
  }
  return { effect: 'allow', code: 'ALLOWED', rule: ruleRef(profile, `/tools/${index}`) }
}

export type SecretDenyCode = 'SECRET_NOT_GRANTED' | 'SECRET_HOST_NOT_ALLOWED' | 'SECRET_PLAINTEXT'

/**
 * Decides whether the host may put the secret `name` into an egress request that the egress policy
 * already allowed. The request's host must match one of the secret's hosts, and it must be https:
 * a secret never travels in clear text, whatever the network rules allow.
 */
export function decideSecret(
  profile: ResolvedProfile,
  name: string,
  request: CheckedEgress,
): Decision<SecretDenyCode, { source: string }> {
  const secret = Object.hasOwn(profile.secrets, name) ? profile.secrets[name] : undefined
  if (secret === undefined) {
    return deny(
      'SECRET_NOT_GRANTED',
      ruleRef(profile, '/secrets'),
      `secret "${name.slice(0, 64)}" is not granted`,
    )
  }
  const at = (pointer: string) => ruleRef(profile, `/secrets/${name}${pointer}`)
  const index = secret.hosts.findIndex((text) => {
    const pattern = hostPatternOf(text)
    return pattern !== null && hostMatches(pattern, request.host)
  })
  if (index < 0) {
    return deny(
      'SECRET_HOST_NOT_ALLOWED',
      at('/hosts'),
      `secret "${name}" may not be sent to ${request.host}`,
    )
  }
  if (request.scheme !== 'https') {
    return deny('SECRET_PLAINTEXT', at(`/hosts/${index}`), `secret "${name}" is only sent over https`)
  }
  return { effect: 'allow', code: 'ALLOWED', rule: at(`/hosts/${index}`), source: secret.from }
}
