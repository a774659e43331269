import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { agentJSONSchema, profileJSONSchema } from './json-schema.ts'

const committed = (file: string) =>
  JSON.parse(readFileSync(new URL(`../../../specs/${file}`, import.meta.url), 'utf8')) as unknown

describe('committed JSON Schemas', () => {
  it.each([
    ['profile.schema.json', profileJSONSchema],
    ['agent.schema.json', agentJSONSchema],
  ])('specs/%s matches the zod schema (run `npm run specs` when this fails)', (file, generate) => {
    expect(committed(file)).toEqual(generate())
  })

  it('refuses unknown keys at every level of a profile', () => {
    const schema = profileJSONSchema() as {
      additionalProperties?: unknown
      properties: Record<string, { additionalProperties?: unknown }>
    }
    expect(schema.additionalProperties).toBe(false)
    for (const section of ['limits', 'network', 'filesystem', 'kv']) {
      expect(schema.properties[section]?.additionalProperties).toBe(false)
    }
  })
})
