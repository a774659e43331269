import type { AgentDeclaration } from './agent.ts'
import { decideTool } from './decide-grants.ts'
import { type Decision, deny } from './decision.ts'
import { type ResolvedProfile, ruleRef } from './profile.ts'

/** The tools every run offers the model besides the agent's own. */
export const RUN_TOOLS = { executeCode: 'execute_code', activateSkill: 'activate_skill' } as const

export type RunToolDenyCode =
  | 'TOOL_NOT_ALLOWED'
  | 'TOOL_NOT_DECLARED'
  | 'SKILL_TOOL_NOT_ALLOWED'
  | 'NO_SKILLS'

/**
 * Decides whether the model may call the tool `name` in a run of `agent` under `profile`, with the
 * skills in `activeSkills` activated. Deny by default:
 * - a declared tool must be granted by the profile's `tools` (as for guest code, `decideTool`);
 * - `execute_code` runs code under the agent's own profile (its languages, engines and limits decide
 *   the rest when it runs);
 * - `activate_skill` exists only when the agent has skills;
 * - a tool the agent declares under the name of a built-in one is the agent's (as on MCP);
 * - while an activated skill lists `allowed-tools`, only the tools those lists name (together) and
 *   `activate_skill` may be called; `allowed-tools` never grants what the profile does not.
 */
export function decideRunTool(
  agent: AgentDeclaration,
  profile: ResolvedProfile,
  name: string,
  activeSkills: readonly string[],
): Decision<RunToolDenyCode> {
  const skills = agent.skills ?? []
  const declared = (agent.tools ?? []).some((tool) => tool.name === name)
  if (name === RUN_TOOLS.activateSkill && !declared) {
    if (skills.length === 0) {
      return deny(
        'NO_SKILLS',
        `agents/${agent.name}#/skills`,
        `agent "${agent.name}" has no skills to activate`,
      )
    }
    return { effect: 'allow', code: 'ALLOWED', rule: `agents/${agent.name}#/skills` }
  }
  const narrowing = skills
    .map((skill, index) => ({ skill, index }))
    .filter(({ skill }) => activeSkills.includes(skill.name) && skill['allowed-tools'] !== undefined)
  if (narrowing.length > 0) {
    const allowed = narrowing.some(({ skill }) => allowedTools(skill['allowed-tools']).includes(name))
    if (!allowed) {
      const { skill, index } = narrowing[0] as (typeof narrowing)[number]
      return deny(
        'SKILL_TOOL_NOT_ALLOWED',
        `agents/${agent.name}#/skills/${index}/allowed-tools`,
        `tool "${name.slice(0, 64)}" is not in the allowed-tools of the active skill "${skill.name}"`,
      )
    }
  }
  if (name === RUN_TOOLS.executeCode && !declared) {
    return { effect: 'allow', code: 'ALLOWED', rule: ruleRef(profile, '/languages') }
  }
  if (!declared) {
    return deny(
      'TOOL_NOT_DECLARED',
      `agents/${agent.name}#/tools`,
      `agent "${agent.name}" declares no tool "${name.slice(0, 64)}"`,
    )
  }
  return decideTool(profile, name)
}

/** The tool names of an `allowed-tools` field (space-delimited, as in SKILL.md). */
export function allowedTools(field: string | undefined): string[] {
  return (field ?? '').split(/\s+/).filter((name) => name.length > 0)
}
