import { createAnthropic } from '@ai-sdk/anthropic'
import { createOpenAI } from '@ai-sdk/openai'
import { createOpenAICompatible } from '@ai-sdk/openai-compatible'
import type { LanguageModel } from 'ai'
import type { AuditEntry } from '../storage/store.ts'

/** The providers a `provider/model` id may name. */
export const MODEL_PROVIDERS = ['openai', 'anthropic', 'openai-compatible'] as const
export type ModelProvider = (typeof MODEL_PROVIDERS)[number]

/** The secret (tenant's store) and environment variable (operator's default) holding each provider's key. */
export const PROVIDER_KEY_NAMES: Record<ModelProvider, string> = {
  openai: 'OPENAI_API_KEY',
  anthropic: 'ANTHROPIC_API_KEY',
  'openai-compatible': 'OPENAI_COMPATIBLE_API_KEY',
}

/**
 * Where models are reached and with which keys, as the operator set them. Tenants choose only the
 * `provider/model` id; they never choose where the service connects, so a declaration cannot point
 * the service's own requests at an internal address.
 */
export interface ModelSettings {
  /** Base URLs: required for `openai-compatible` (CORDON_OPENAI_COMPATIBLE_URL), optional overrides for the others. */
  baseURLs?: Partial<Record<ModelProvider, string>>
  /**
   * Deployment-wide keys (the service's OPENAI_API_KEY, ANTHROPIC_API_KEY, OPENAI_COMPATIBLE_API_KEY):
   * used for tenants that have not stored a key of their own under the same name.
   */
  keys?: Partial<Record<ModelProvider, string>>
  /** How provider requests are made (default: the runtime's fetch). */
  fetch?: typeof fetch
}

/** What a run needs to reach its model: the tenant's key lookup and where to audit requests. */
export interface ModelContext {
  tenant: string
  /** The tenant's secret of this name, or null. */
  secret(name: string): string | null
  audit(entry: Omit<AuditEntry, 'kind' | 'agent' | 'execution'>): void
}

/** A model a run may call, or why not. */
export type OpenedModel = { ok: true; model: LanguageModel } | { ok: false; problem: string }

/** Opens the model a declaration names. Replaceable (tests give a scripted model). */
export interface ModelCatalog {
  open(modelId: string, context: ModelContext): OpenedModel
}

/**
 * The AI SDK's providers, keyed from the tenant's secrets store (else the operator's default key).
 * Every request a provider makes is audited (`model.request`: host, path, status, duration; never a
 * key, a header or a body). Keys live only in this process: guest code never sees them, and no
 * binding reads them.
 */
export class ProviderModels implements ModelCatalog {
  readonly #settings: ModelSettings

  constructor(settings: ModelSettings = {}) {
    this.#settings = settings
  }

  open(modelId: string, context: ModelContext): OpenedModel {
    const slash = modelId.indexOf('/')
    const provider = modelId.slice(0, slash) as ModelProvider
    const name = modelId.slice(slash + 1)
    if (slash <= 0 || !MODEL_PROVIDERS.includes(provider) || name.length === 0) {
      return {
        ok: false,
        problem: `unknown model provider in "${modelId.slice(0, 100)}" (known: ${MODEL_PROVIDERS.join(', ')})`,
      }
    }
    const keyName = PROVIDER_KEY_NAMES[provider]
    const apiKey = context.secret(keyName) ?? this.#settings.keys?.[provider] ?? null
    const baseURL = this.#settings.baseURLs?.[provider]
    const fetch = auditedFetch(this.#settings.fetch ?? globalThis.fetch, provider, name, context)
    switch (provider) {
      case 'openai-compatible': {
        if (baseURL === undefined) {
          return {
            ok: false,
            problem:
              'no OpenAI-compatible endpoint is configured in this deployment (CORDON_OPENAI_COMPATIBLE_URL)',
          }
        }
        const compatible = createOpenAICompatible({
          name: 'openai-compatible',
          baseURL,
          includeUsage: true,
          fetch,
          ...(apiKey === null ? {} : { apiKey }),
        })
        return { ok: true, model: compatible.chatModel(name) }
      }
      case 'openai':
      case 'anthropic': {
        if (apiKey === null) {
          return {
            ok: false,
            problem: `no key for ${provider}: store the secret ${keyName} (PUT /v1/secrets/${keyName}) or set it in the service's environment`,
          }
        }
        const options = { apiKey, fetch, ...(baseURL === undefined ? {} : { baseURL }) }
        return {
          ok: true,
          model: provider === 'openai' ? createOpenAI(options).chat(name) : createAnthropic(options)(name),
        }
      }
    }
  }
}

/** `fetch` that audits each request a provider makes (where to, how it went), never its headers or body. */
function auditedFetch(
  inner: typeof fetch,
  provider: ModelProvider,
  model: string,
  context: ModelContext,
): typeof fetch {
  return async (input, init) => {
    const request = new Request(input, init)
    const url = new URL(request.url)
    const started = Date.now()
    const detail = {
      provider,
      model: model.slice(0, 100),
      method: request.method,
      host: url.host,
      path: url.pathname.slice(0, 200),
    }
    try {
      const response = await inner(request)
      context.audit({
        decision: response.ok ? 'allow' : 'error',
        code: response.ok ? 'ALLOWED' : `HTTP_${response.status}`,
        rule: null,
        detail: { ...detail, status: response.status, ms: Date.now() - started },
      })
      return response
    } catch (error) {
      context.audit({
        decision: 'error',
        code: 'NETWORK_ERROR',
        rule: null,
        detail: {
          ...detail,
          ms: Date.now() - started,
          reason: (error instanceof Error ? error.name : 'error').slice(0, 64),
        },
      })
      throw error
    }
  }
}
