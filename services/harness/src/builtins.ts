import { readdirSync, readFileSync } from 'node:fs'
import { extname, join } from 'node:path'
import { parseDocument, type ResolvedProfile, resolveProfile } from '@cordon/policy'

/**
 * Loads the built-in profiles shipped in `sandbox-profiles/`. A broken built-in is a packaging bug,
 * so it fails start-up loudly instead of being skipped.
 */
export function loadBuiltinProfiles(dir: string): Map<string, ResolvedProfile> {
  const profiles = new Map<string, ResolvedProfile>()
  for (const file of readdirSync(dir).sort()) {
    const ext = extname(file)
    if (ext !== '.yaml' && ext !== '.yml' && ext !== '.json') continue
    const parsed = parseDocument(readFileSync(join(dir, file), 'utf8'), ext === '.json' ? 'json' : 'yaml')
    if (!parsed.ok) throw new Error(`built-in profile ${file}: ${parsed.message}`)
    const resolved = resolveProfile(parsed.value)
    if (!resolved.ok) {
      throw new Error(
        `built-in profile ${file}: ${resolved.issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
      )
    }
    profiles.set(resolved.profile.name, resolved.profile)
  }
  return profiles
}
