import { randomBytes } from 'node:crypto'
import type { JsonValue, RunOutcome } from '@cordon/contracts'
import type { ResolvedProfile } from '@cordon/policy'

/** Where secret values come from: operator-exposed environment values and the tenant's store. */
export interface SecretSources {
  /** `env:NAME` values the operator chose to expose (never the whole process environment). */
  env: Readonly<Record<string, string>>
  /** `store:NAME` values of the tenant. */
  store(name: string): string | null
}

/** Shortest value redacted in encoded forms (shorter encodings would match ordinary text). */
const MIN_ENCODED = 8

/**
 * The secrets of one execution. The guest gets an opaque placeholder per granted secret (fresh
 * random per execution); only the egress binding swaps one for its value, and only after the policy
 * allowed that secret for the request's host. Every value the execution used is redacted from
 * everything that goes back to the guest or into the audit log: as written, percent-encoded,
 * base64 (at every alignment) and hex.
 */
export class SecretBroker {
  readonly #profile: ResolvedProfile
  readonly #sources: SecretSources
  readonly #placeholders = new Map<string, string>()
  /** Loaded values and their redaction patterns. */
  readonly #values = new Map<string, string>()
  #patterns: { text: string; name: string }[] = []

  constructor(profile: ResolvedProfile, sources: SecretSources) {
    this.#profile = profile
    this.#sources = sources
    for (const name of Object.keys(profile.secrets)) {
      this.#placeholders.set(name, `cdn-secret-${name}-${randomBytes(16).toString('hex')}`)
    }
  }

  /** Name to placeholder, for the guest's `secrets` global. */
  placeholders(): Record<string, string> {
    return Object.fromEntries(this.#placeholders)
  }

  /**
   * `text` with each placeholder written as its secret's name (`cdn-secret-NAME`): the same on every
   * run of an execution, though the placeholders are fresh each time (the journal's fingerprints).
   */
  stable(text: string): string {
    if (!text.includes('cdn-secret-')) return text
    let out = text
    for (const [name, placeholder] of this.#placeholders)
      out = out.replaceAll(placeholder, `cdn-secret-${name}`)
    return out
  }

  /** Names of the secrets whose placeholders occur in `text`. */
  find(text: string): string[] {
    if (!text.includes('cdn-secret-')) return []
    const found: string[] = []
    for (const [name, placeholder] of this.#placeholders) if (text.includes(placeholder)) found.push(name)
    return found
  }

  /** Names of the secrets this execution used whose value occurs in `text`, in any encoding redacted. */
  findValues(text: string): string[] {
    const found = new Set<string>()
    for (const { text: form, name } of this.#patterns) if (text.includes(form)) found.add(name)
    return [...found]
  }

  /** Whether the grant of `name` lets its value go into a URL query. */
  queryAllowed(name: string): boolean {
    return Object.hasOwn(this.#profile.secrets, name) && this.#profile.secrets[name]?.query === true
  }

  /** The value of a granted secret, or null when its source has none. */
  value(name: string): string | null {
    const cached = this.#values.get(name)
    if (cached !== undefined) return cached
    const grant = Object.hasOwn(this.#profile.secrets, name) ? this.#profile.secrets[name] : undefined
    if (grant === undefined) return null
    const [kind, key = ''] = grant.from.split(/:(.*)/s)
    const value =
      kind === 'env'
        ? Object.hasOwn(this.#sources.env, key)
          ? (this.#sources.env[key] ?? null)
          : null
        : this.#sources.store(key)
    if (value === null || value.length === 0) return null
    this.#values.set(name, value)
    this.#patterns = [...this.#patterns, ...encodings(value).map((text) => ({ text, name }))].sort(
      (a, b) => b.text.length - a.text.length,
    )
    return value
  }

  /** `text` with every placeholder of the named secrets replaced by its value. */
  inject(text: string, names: readonly string[]): string {
    let out = text
    for (const name of names) {
      const placeholder = this.#placeholders.get(name)
      const value = this.value(name)
      if (placeholder !== undefined && value !== null) out = out.replaceAll(placeholder, value)
    }
    return out
  }

  /** A copy of `value` with every used secret redacted from its strings (keys included). */
  redact(value: JsonValue): JsonValue {
    if (this.#patterns.length === 0) return value
    if (typeof value === 'string') return this.redactText(value)
    if (Array.isArray(value)) return value.map((item) => this.redact(item))
    if (value !== null && typeof value === 'object') {
      const out: Record<string, JsonValue> = {}
      for (const [key, inner] of Object.entries(value)) out[this.redactText(key)] = this.redact(inner)
      return out
    }
    return value
  }

  redactText(text: string): string {
    let out = text
    for (const { text: secret, name } of this.#patterns) {
      if (out.includes(secret)) out = out.replaceAll(secret, `[REDACTED:${name}]`)
    }
    return out
  }

  /**
   * An engine's outcome with every used secret redacted: the guest never holds a value, but it may
   * rebuild one from an echo the encodings above do not cover (reversed, say), and it must not leave
   * the service that way either.
   */
  redactOutcome<T extends RunOutcome>(outcome: T): T {
    if (this.#patterns.length === 0) return outcome
    return {
      ...outcome,
      stdout: this.redactText(outcome.stdout),
      stderr: this.redactText(outcome.stderr),
      result: this.redact(outcome.result),
      error:
        outcome.error === null ? null : { ...outcome.error, message: this.redactText(outcome.error.message) },
      ...(outcome.files === undefined
        ? {}
        : {
            files: outcome.files.map((file) => {
              if (file.content === undefined) return file
              const content =
                file.encoding === 'base64'
                  ? this.redactBytes(Buffer.from(file.content, 'base64')).toString('base64')
                  : this.redactText(file.content)
              return { ...file, content }
            }),
          }),
    }
  }

  /**
   * Redacts a text written in pieces (a stream of guest output): each piece is answered redacted,
   * except for its end, held back for as long as the next piece could complete a value there; `end`
   * answers what is left. The pieces answered add up to the whole text, redacted.
   */
  streamRedactor(): { push(text: string): string; end(): string } {
    let pending = ''
    return {
      push: (text) => {
        pending += text
        const cut = this.#safeCut(pending)
        const out = pending.slice(0, cut)
        pending = pending.slice(cut)
        return this.redactText(out)
      },
      end: () => {
        const out = this.redactText(pending)
        pending = ''
        return out
      },
    }
  }

  /**
   * Where `text` may be cut without cutting through a value (in any redacted form) or a value's
   * start that the rest of the stream could complete: before the last (longest form - 1) characters,
   * and before any occurrence the cut would run through, never between the halves of a surrogate pair.
   */
  #safeCut(text: string): number {
    const longest = this.#patterns[0]?.text.length ?? 0
    let cut = Math.max(0, text.length - Math.max(0, longest - 1))
    for (let moved = true; moved && cut > 0; ) {
      moved = false
      for (const { text: form } of this.#patterns) {
        for (let at = text.indexOf(form, Math.max(0, cut - form.length + 1)); at >= 0 && at < cut; ) {
          if (at + form.length > cut) {
            cut = at
            moved = true
            break
          }
          at = text.indexOf(form, at + 1)
        }
      }
    }
    const code = text.charCodeAt(cut - 1)
    if (cut > 0 && code >= 0xd800 && code <= 0xdbff) cut--
    return cut
  }

  /** Bytes with every used secret redacted (a body the guest will read). */
  redactBytes(bytes: Buffer): Buffer {
    if (this.#patterns.length === 0) return bytes
    let out = bytes
    for (const { text: secret, name } of this.#patterns) {
      const needle = Buffer.from(secret, 'utf8')
      if (out.indexOf(needle) < 0) continue
      const parts: Buffer[] = []
      let from = 0
      for (let at = out.indexOf(needle); at >= 0; at = out.indexOf(needle, from)) {
        parts.push(out.subarray(from, at), Buffer.from(`[REDACTED:${name}]`))
        from = at + needle.length
      }
      parts.push(out.subarray(from))
      out = Buffer.concat(parts)
    }
    return out
  }
}

/** The forms a value takes when a server echoes it back encoded. */
function encodings(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8')
  const json = JSON.stringify(value).slice(1, -1)
  const forms = new Set<string>([
    value,
    encodeURIComponent(value),
    json,
    // PHP escapes "/", Go escapes <, > and &, Python's default escapes everything past ASCII.
    json.replaceAll('/', '\\/'),
    json.replace(/[<>&]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`),
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the range is everything past ASCII
    json.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
  ])
  if (bytes.length >= MIN_ENCODED / 2) {
    forms.add(bytes.toString('hex'))
    forms.add(bytes.toString('hex').toUpperCase())
  }
  // base64 at each of the three alignments the value can have inside a longer encoded text.
  for (let offset = 0; offset < 3; offset++) {
    const padded = Buffer.concat([Buffer.alloc(offset), bytes])
    const encoded = padded.toString('base64')
    const start = offset === 0 ? 0 : offset === 1 ? 2 : 3
    const end = Math.floor(padded.length / 3) * 4
    const core = encoded.slice(start, end)
    if (core.length >= MIN_ENCODED) {
      forms.add(core)
      forms.add(core.replaceAll('+', '-').replaceAll('/', '_'))
    }
  }
  return [...forms].filter((form) => form.length > 0)
}
