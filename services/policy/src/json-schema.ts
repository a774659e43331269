import { z } from 'zod'
import { AgentSchema } from './agent.ts'
import { ProfileSchema } from './profile-schema.ts'

/**
 * The JSON Schema (draft 2020-12) of a sandbox profile document, generated from the zod schema that
 * validates it. `specs/profile.schema.json` is this value; a test fails when the committed copy is stale.
 * The schema checks shape and bounds; `resolveProfile` also checks what a schema cannot (hosts, globs,
 * narrowing against the parent).
 */
export function profileJSONSchema(): Record<string, unknown> {
  return described(z.toJSONSchema(ProfileSchema, { io: 'input' }), 'profile', 'Cordon sandbox profile')
}

/** The JSON Schema of an agent declaration; committed as `specs/agent.schema.json`. */
export function agentJSONSchema(): Record<string, unknown> {
  return described(z.toJSONSchema(AgentSchema, { io: 'input' }), 'agent', 'Cordon agent declaration')
}

function described(schema: Record<string, unknown>, id: string, title: string): Record<string, unknown> {
  const { $schema, ...rest } = schema
  return { $schema, $id: `urn:cordon:spec:${id}:v1`, title, ...rest }
}
