import { describe, expect, it } from 'vitest'
import { type AgentDeclaration, validateAgent } from './agent.ts'
import { allowedTools, decideRunTool } from './decide-run-tool.ts'
import { testProfile } from './test-profile.ts'

function agent(extra: object): AgentDeclaration {
  const result = validateAgent({ name: 'a', sandbox: 'p', ...extra })
  if (!result.ok) throw new Error(JSON.stringify(result.issues))
  return result.agent
}

const tool = (name: string) => ({ name, description: name, language: 'javascript', code: 'export default 1' })
const withTools = agent({
  tools: [tool('read'), tool('write')],
  skills: [
    { name: 'reader', description: 'reads', 'allowed-tools': 'read execute_code' },
    { name: 'free', description: 'no narrowing' },
  ],
})

describe('decideRunTool', () => {
  it('allows a declared tool only when the profile grants it', () => {
    const profile = testProfile({ tools: ['read'] })
    expect(decideRunTool(withTools, profile, 'read', [])).toMatchObject({
      effect: 'allow',
      rule: 'profiles/p#/tools/0',
    })
    expect(decideRunTool(withTools, profile, 'write', [])).toMatchObject({
      effect: 'deny',
      code: 'TOOL_NOT_ALLOWED',
      rule: 'profiles/p#/tools',
    })
  })

  it('denies a tool the agent does not declare, whatever the profile grants (attack: a model naming an undeclared tool)', () => {
    const profile = testProfile({ tools: ['*'] })
    expect(decideRunTool(withTools, profile, 'rm_rf', [])).toMatchObject({
      effect: 'deny',
      code: 'TOOL_NOT_DECLARED',
    })
    expect(decideRunTool(withTools, profile, '*', [])).toMatchObject({
      effect: 'deny',
      code: 'TOOL_NOT_DECLARED',
    })
  })

  it('always offers execute_code under the profile, and activate_skill only to agents with skills', () => {
    const profile = testProfile({})
    expect(decideRunTool(withTools, profile, 'execute_code', [])).toMatchObject({ effect: 'allow' })
    expect(decideRunTool(withTools, profile, 'activate_skill', [])).toMatchObject({ effect: 'allow' })
    expect(decideRunTool(agent({}), profile, 'activate_skill', [])).toMatchObject({
      effect: 'deny',
      code: 'NO_SKILLS',
    })
  })

  it("narrows to an active skill's allowed-tools, which never grant what the profile does not", () => {
    const profile = testProfile({ tools: ['read'] })
    expect(decideRunTool(withTools, profile, 'read', ['reader'])).toMatchObject({ effect: 'allow' })
    expect(decideRunTool(withTools, profile, 'write', ['reader'])).toMatchObject({
      effect: 'deny',
      code: 'SKILL_TOOL_NOT_ALLOWED',
      rule: 'agents/a#/skills/0/allowed-tools',
    })
    expect(decideRunTool(withTools, profile, 'execute_code', ['reader'])).toMatchObject({ effect: 'allow' })
    expect(decideRunTool(withTools, profile, 'activate_skill', ['reader'])).toMatchObject({ effect: 'allow' })
    // A skill without allowed-tools narrows nothing.
    expect(decideRunTool(withTools, testProfile({ tools: ['write'] }), 'write', ['free'])).toMatchObject({
      effect: 'allow',
    })
    // allowed-tools naming a tool the profile refuses: still refused.
    const narrow = testProfile({ tools: [] })
    expect(decideRunTool(withTools, narrow, 'read', ['reader'])).toMatchObject({
      effect: 'deny',
      code: 'TOOL_NOT_ALLOWED',
    })
  })

  it('reads allowed-tools as SKILL.md writes it: space-delimited', () => {
    expect(allowedTools('  read\twrite\nexecute_code ')).toEqual(['read', 'write', 'execute_code'])
    expect(allowedTools(undefined)).toEqual([])
  })
})
