import { type ModelSettings, PROVIDER_KEY_NAMES } from '@cordon/harness'

/**
 * Model settings from the environment: the operator's default provider keys (OPENAI_API_KEY,
 * ANTHROPIC_API_KEY, OPENAI_COMPATIBLE_API_KEY: every tenant's agents may call the provider with it,
 * unless the tenant stored its own key of that name; no tenant ever reads it) and base URLs
 * (CORDON_OPENAI_COMPATIBLE_URL for `openai-compatible/...` models, such as a local vLLM or Ollama;
 * CORDON_OPENAI_URL and CORDON_ANTHROPIC_URL to reach those APIs through a gateway).
 */
export function modelSettingsFrom(env: Readonly<Record<string, string | undefined>>): ModelSettings {
  const keys: NonNullable<ModelSettings['keys']> = {}
  for (const [provider, name] of Object.entries(PROVIDER_KEY_NAMES) as [
    keyof typeof PROVIDER_KEY_NAMES,
    string,
  ][]) {
    const value = env[name]?.trim()
    if (value !== undefined && value !== '') keys[provider] = value
  }
  const baseURLs: NonNullable<ModelSettings['baseURLs']> = {}
  const urls = {
    'openai-compatible': 'CORDON_OPENAI_COMPATIBLE_URL',
    openai: 'CORDON_OPENAI_URL',
    anthropic: 'CORDON_ANTHROPIC_URL',
  } as const
  for (const [provider, name] of Object.entries(urls) as [keyof typeof urls, string][]) {
    const value = env[name]?.trim()
    if (value === undefined || value === '') continue
    baseURLs[provider] = httpBaseURL(name, value).replace(/\/+$/, '')
  }
  return { keys, baseURLs }
}

/**
 * A setting that names where the service connects: an http(s) URL without credentials. The error
 * names the setting, never its value (which may hold a secret the operator misplaced).
 */
export function httpBaseURL(name: string, text: string): string {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new Error(`${name} is not a URL`)
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '') {
    throw new Error(`${name} must be an http or https URL without credentials`)
  }
  return text
}
