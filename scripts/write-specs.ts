// Writes the JSON Schemas generated from the policy package's zod schemas into specs/.
// `npm run specs` after changing a schema; a test fails while the committed copies are stale.
import { writeFileSync } from 'node:fs'
import { agentJSONSchema, profileJSONSchema } from '@cordon/policy'

const specs = new URL('../specs/', import.meta.url)
for (const [file, schema] of [
  ['profile.schema.json', profileJSONSchema()],
  ['agent.schema.json', agentJSONSchema()],
] as const) {
  writeFileSync(new URL(file, specs), `${JSON.stringify(schema, null, 2)}\n`)
  console.log(`wrote specs/${file}`)
}
