import type { AgentDeclaration, ResolvedProfile, Skill } from '@cordon/policy'
import { RUN_TOOLS } from '@cordon/policy'
import { jsonSchema, type ToolSet } from 'ai'

/**
 * The system prompt of a run: the agent's instructions, then its skills by name and description only
 * (Agent Skills' progressive disclosure: a skill's body reaches the model when it activates it).
 */
export function systemPrompt(agent: AgentDeclaration): string {
  const parts: string[] = []
  if (agent.instructions !== undefined && agent.instructions.trim() !== '')
    parts.push(agent.instructions.trim())
  const skills = agent.skills ?? []
  if (skills.length > 0) {
    parts.push(
      [
        `You have skills. To use one, call ${RUN_TOOLS.activateSkill} with its name: its instructions are then loaded.`,
        '<available_skills>',
        ...skills.map((skill) => `- ${skill.name}: ${skill.description}`),
        '</available_skills>',
      ].join('\n'),
    )
  }
  return parts.join('\n\n')
}

/**
 * The tools a run offers the model: the agent's declared tools (their JSON Schemas), `execute_code`
 * (code in one of the profile's languages, run under the agent's profile) and, when the agent has
 * skills, `activate_skill`. None has an `execute`: the run decides and runs every call itself.
 */
export function runTools(agent: AgentDeclaration, profile: ResolvedProfile): ToolSet {
  const tools: ToolSet = {}
  for (const tool of agent.tools ?? []) {
    tools[tool.name] = { description: tool.description, inputSchema: jsonSchema(tool.input as object) }
  }
  // A declared tool of a built-in's name is the agent's own (as on MCP).
  if (tools[RUN_TOOLS.executeCode] === undefined)
    tools[RUN_TOOLS.executeCode] = {
      description: [
        `Run code in this agent's sandbox (profile "${profile.name}": languages ${profile.languages.join(', ')};`,
        `${profile.limits.cpuMs} ms of CPU, ${profile.limits.wallMs} ms wall time, ${profile.limits.memoryMb} MiB).`,
        'JavaScript and TypeScript run as an ES module: its default export is the result (a function is called with `input`).',
        'Python and bash run as a program: print what you need. Returns status, result, stdout and stderr.',
      ].join(' '),
      inputSchema: jsonSchema({
        type: 'object',
        properties: {
          language: { type: 'string', enum: [...profile.languages] },
          code: { type: 'string' },
          input: { description: 'JSON passed to the code as `input`' },
        },
        required: ['language', 'code'],
        additionalProperties: false,
      }),
    }
  const skills = agent.skills ?? []
  if (skills.length > 0 && tools[RUN_TOOLS.activateSkill] === undefined) {
    tools[RUN_TOOLS.activateSkill] = {
      description:
        "Load a skill's instructions (and the list of its files). Give `file` to read one of its files instead.",
      inputSchema: jsonSchema({
        type: 'object',
        properties: {
          name: { type: 'string', enum: skills.map((skill) => skill.name) },
          file: { type: 'string', description: "a path from the skill's file list" },
        },
        required: ['name'],
        additionalProperties: false,
      }),
    }
  }
  return tools
}

/** Largest skill file text handed to the model at once. */
const MAX_SKILL_FILE_CHARS = 64 * 1024

/** What `activate_skill` answers: the skill's body and its files, or one file's text. */
export function skillOutput(skill: Skill, file: string | undefined): { ok: boolean; value: unknown } {
  const files = skill.files ?? []
  if (file === undefined) {
    return {
      ok: true,
      value: {
        name: skill.name,
        instructions: skill.body ?? '',
        files: files.map((entry) => entry.path),
        ...(skill['allowed-tools'] === undefined ? {} : { allowedTools: skill['allowed-tools'] }),
      },
    }
  }
  const entry = files.find((candidate) => candidate.path === file)
  if (entry === undefined)
    return { ok: false, value: { error: `skill "${skill.name}" has no file "${file.slice(0, 200)}"` } }
  if (entry.encoding === 'base64') {
    return { ok: false, value: { error: `"${entry.path}" is a binary file and is not shown` } }
  }
  return { ok: true, value: { path: entry.path, content: entry.content.slice(0, MAX_SKILL_FILE_CHARS) } }
}
