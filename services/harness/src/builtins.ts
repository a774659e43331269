import { type DocumentFormat, parseDocument, type ResolvedProfile, resolveProfile } from '@cordon/policy'

/** A profile shipped in `sandbox-profiles/`: its document (for `extends`), resolved form and source. */
export interface BuiltinProfile {
  document: unknown
  profile: ResolvedProfile
  source: { file: string; text: string; format: DocumentFormat }
}

/**
 * The built-in profiles from their files (`sandbox-profiles/*.yaml|yml|json`, name and text); they may
 * extend one another. A broken built-in is a packaging bug, so it fails start-up loudly instead of
 * being skipped.
 */
export function builtinProfilesFrom(
  files: readonly { file: string; text: string }[],
): Map<string, BuiltinProfile> {
  const documents = new Map<string, { document: unknown; source: BuiltinProfile['source'] }>()
  for (const { file, text } of [...files].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0))) {
    const ext = file.slice(file.lastIndexOf('.'))
    if (ext !== '.yaml' && ext !== '.yml' && ext !== '.json') continue
    const format = ext === '.json' ? 'json' : 'yaml'
    const parsed = parseDocument(text, format)
    if (!parsed.ok) throw new Error(`built-in profile ${file}: ${parsed.message}`)
    const name = (parsed.value as { name?: unknown } | null)?.name
    if (typeof name !== 'string') throw new Error(`built-in profile ${file}: it has no name`)
    documents.set(name, {
      document: parsed.value,
      source: { file: `sandbox-profiles/${file}`, text, format },
    })
  }
  const profiles = new Map<string, BuiltinProfile>()
  for (const [name, { document, source }] of documents) {
    const resolved = resolveProfile(document, { lookup: (parent) => documents.get(parent)?.document })
    if (!resolved.ok) {
      throw new Error(
        `built-in profile ${source.file}: ${resolved.issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
      )
    }
    profiles.set(name, { document, profile: resolved.profile, source })
  }
  return profiles
}
