import { describe, expect, it } from 'vitest'
import { modelSettingsFrom } from './model-settings.ts'

describe('modelSettingsFrom', () => {
  it('takes the provider keys and endpoints the operator set, and nothing else of the environment', () => {
    const settings = modelSettingsFrom({
      ANTHROPIC_API_KEY: ' sk-ant-1 ',
      OPENAI_API_KEY: '',
      CORDON_OPENAI_COMPATIBLE_URL: 'http://127.0.0.1:11434/v1/',
      HOME: '/root',
    })
    expect(settings).toEqual({
      keys: { anthropic: 'sk-ant-1' },
      baseURLs: { 'openai-compatible': 'http://127.0.0.1:11434/v1' },
    })
  })

  it.each([
    ['not a URL', 'ollama:11434'],
    ['not http(s)', 'file:///etc/passwd'],
    ['with credentials', 'https://user:hunter2@models.example/v1'],
  ])('refuses an endpoint %s, naming the setting and never its value', (_, value) => {
    let message = ''
    try {
      modelSettingsFrom({ CORDON_ANTHROPIC_URL: value })
    } catch (error) {
      message = (error as Error).message
    }
    expect(message).toContain('CORDON_ANTHROPIC_URL')
    expect(message).not.toContain(value)
  })
})
