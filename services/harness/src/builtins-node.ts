import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { type BuiltinProfile, builtinProfilesFrom } from './builtins.ts'

/** Loads the built-in profiles shipped in `dir` (`sandbox-profiles/`); see `builtinProfilesFrom`. */
export function loadBuiltinProfiles(dir: string): Map<string, BuiltinProfile> {
  return builtinProfilesFrom(
    readdirSync(dir).map((file) => ({ file, text: readFileSync(join(dir, file), 'utf8') })),
  )
}
