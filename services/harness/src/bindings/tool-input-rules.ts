import { setFlagsFromString } from 'node:v8'
import type { JsonValue } from '@cordon/contracts'
import { Ajv, type ValidateFunction } from 'ajv'

// Tool input schemas come from agent declarations and tool input from guests. They are checked in a
// thread of their own under a time limit (see tool-input.ts); these rules keep the common cases fast. With this V8 flag a
// regular expression that backtracks excessively switches to V8's linear-time engine, which handles
// patterns without the `u` flag, backreferences or lookarounds (measured: `^(a+)+$` on 26 "a" and a
// "!" takes 3 ms instead of seconds); patterns it could not take over are refused when compiled.
setFlagsFromString('--enable-experimental-regexp-engine-on-excessive-backtracks')

/** Backreferences and lookarounds: the linear engine cannot run them, so they are refused. */
const NOT_LINEAR = /\\[1-9]|\\k<|\(\?<?[=!]/

/** Ajv's regular expressions: compiled without `u`, and only those the linear fallback can run. */
const linearRegExp = Object.assign(
  (pattern: string, flags: string) => {
    if (NOT_LINEAR.test(pattern))
      throw new Error('patterns with backreferences or lookarounds are not supported')
    return new RegExp(pattern, flags.replace('u', ''))
  },
  { code: 'new RegExp' },
)

const MAX_CACHED = 1000

/**
 * Checks tool input against the tool's JSON Schema (the draft 2020-12 keywords Ajv supports, strict
 * mode off so that annotations such as `description` pass). Compiled validators are cached by schema
 * text. An invalid schema is reported as such, never thrown. Runs inside the validator thread
 * (`tool-input-thread.ts`), never on the service's event loop.
 */
export class SchemaChecker {
  readonly #ajv = new Ajv({
    strict: false,
    allErrors: false,
    validateSchema: true,
    unicodeRegExp: false,
    code: { regExp: linearRegExp },
  })
  readonly #cache = new Map<string, ValidateFunction | string>()

  /** Null when `input` is valid; otherwise where and why not (`$.url: must be string`). */
  check(schema: Record<string, unknown>, input: JsonValue): string | null {
    const key = JSON.stringify(schema)
    let validate = this.#cache.get(key)
    if (validate === undefined) {
      try {
        validate = this.#ajv.compile(schema)
      } catch (error) {
        validate = `the tool's input schema is invalid: ${error instanceof Error ? error.message.slice(0, 200) : ''}`
      }
      if (this.#cache.size >= MAX_CACHED) this.#cache.clear()
      this.#cache.set(key, validate)
    }
    if (typeof validate === 'string') return validate
    if (validate(input)) return null
    const error = validate.errors?.[0]
    if (error === undefined) return 'invalid input'
    const path = error.instancePath
      .split('/')
      .slice(1)
      .map((part) => part.replaceAll('~1', '/').replaceAll('~0', '~'))
      .map((part) => (/^\d+$/.test(part) ? `[${part}]` : `.${part}`))
      .join('')
    return `$${path}: ${error.message ?? 'invalid'}`.slice(0, 500)
  }
}
