import { describe, expect, it } from 'vitest'
import { decideSecret, decideTool } from './decide-grants.ts'
import { decideEgress } from './egress.ts'
import { testProfile } from './test-profile.ts'

const profile = testProfile

describe('decideTool', () => {
  it('allows listed tools and denies others', () => {
    const p = profile({ tools: ['search', 'summarize'] })
    expect(decideTool(p, 'summarize')).toEqual({
      effect: 'allow',
      code: 'ALLOWED',
      rule: 'profiles/p#/tools/1',
    })
    expect(decideTool(p, 'shell')).toMatchObject({
      effect: 'deny',
      code: 'TOOL_NOT_ALLOWED',
      rule: 'profiles/p#/tools',
    })
    expect(decideTool(p, '*')).toMatchObject({ effect: 'deny' })
  })

  it('allows any tool when the profile grants "*", and none without tools', () => {
    expect(decideTool(profile({ tools: ['*'] }), 'anything')).toMatchObject({
      effect: 'allow',
      rule: 'profiles/p#/tools/0',
    })
    expect(decideTool(profile({}), 'anything')).toMatchObject({ effect: 'deny' })
  })
})

describe('decideSecret', () => {
  const p = profile({
    network: { allow: [{ host: 'api.example.com', schemes: ['https', 'http'] }, { host: 'other.example' }] },
    secrets: { TOKEN: { from: 'env:TOKEN', hosts: ['api.example.com'] } },
  })
  const checked = (url: string) => {
    const decision = decideEgress(p, { url })
    if (decision.effect !== 'allow') throw new Error(decision.message)
    return decision.request
  }

  it('allows a granted secret to its host over https, naming the source', () => {
    expect(decideSecret(p, 'TOKEN', checked('https://API.example.com./x'))).toMatchObject({
      effect: 'allow',
      rule: 'profiles/p#/secrets/TOKEN/hosts/0',
      source: 'env:TOKEN',
    })
  })

  it.each([
    ['to another allowed host', 'TOKEN', 'https://other.example/', 'SECRET_HOST_NOT_ALLOWED'],
    ['over plain http', 'TOKEN', 'http://api.example.com/', 'SECRET_PLAINTEXT'],
    ['that was never granted', 'OTHER', 'https://api.example.com/', 'SECRET_NOT_GRANTED'],
    [
      'named like an Object.prototype member',
      'constructor',
      'https://api.example.com/',
      'SECRET_NOT_GRANTED',
    ],
  ])('denies a secret %s', (_what, name, url, code) => {
    expect(decideSecret(p, name, checked(url))).toMatchObject({ effect: 'deny', code })
  })
})
