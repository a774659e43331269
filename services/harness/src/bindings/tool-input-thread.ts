import { parentPort } from 'node:worker_threads'
import type { JsonValue } from '@cordon/contracts'
import { SchemaChecker } from './tool-input-rules.ts'

/** The validator thread: checks one `{ id, schema, input }` at a time and answers `{ id, problem }`. */
const checker = new SchemaChecker()
parentPort?.on('message', (message: { id: number; schema: Record<string, unknown>; input: JsonValue }) => {
  let problem: string | null
  try {
    problem = checker.check(message.schema, message.input)
  } catch {
    problem = 'the input could not be checked against the schema'
  }
  parentPort?.postMessage({ id: message.id, problem })
})
// Loaded: from here on each check is timed on its own, without the thread's start-up.
parentPort?.postMessage({ ready: true })
