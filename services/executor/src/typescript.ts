import { stripTypeScriptTypes } from 'node:module'

export type StripResult = { ok: true; code: string } | { ok: false; message: string }

/**
 * Turns TypeScript into JavaScript by erasing types (enums and namespaces are transformed). No type
 * checking happens: TypeScript is accepted for convenience, never trusted for safety.
 */
export function stripTypes(code: string): StripResult {
  try {
    return { ok: true, code: stripTypeScriptTypes(code, { mode: 'transform', sourceMap: false }) }
  } catch (error) {
    const message = error instanceof Error ? error.message.split('\n', 1)[0] : 'invalid TypeScript'
    return { ok: false, message: `TypeScript: ${message}` }
  }
}
