import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { Ajv } from 'ajv'
import addFormats from 'ajv-formats'

/**
 * A validator for SARIF 2.1.0 logs against the published JSON Schema (draft-07, as shipped in the
 * `schemastore` package). Returns the schema errors, an empty list when the log is valid.
 */
export function sarifValidator(): (log: unknown) => string[] {
  const path = createRequire(import.meta.url).resolve('schemastore/schemas/json/sarif-2.1.0.json')
  const schema = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>
  if (schema.title === undefined || !JSON.stringify(schema).includes('"2.1.0"')) {
    throw new Error(`${path} is not the SARIF 2.1.0 schema`)
  }
  // The published schema's language pattern is not valid with the u flag (fixed in errata01).
  const ajv = new Ajv({ allErrors: true, strict: false, unicodeRegExp: false })
  addFormats.default(ajv)
  const validate = ajv.compile(schema)
  return (log) => (validate(log) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`))
}
