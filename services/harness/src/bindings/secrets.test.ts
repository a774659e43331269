import type { ResolvedProfile } from '@cordon/policy'
import { describe, expect, it } from 'vitest'
import { SecretBroker } from './secrets.ts'

const VALUE = 'sk-live-0123456789abcdef'

function broker(): SecretBroker {
  const profile = {
    secrets: { TOKEN: { from: 'env:TOKEN', hosts: ['api.test'] } },
  } as unknown as ResolvedProfile
  const made = new SecretBroker(profile, { env: { TOKEN: VALUE }, store: () => null })
  // Loaded, as by a fetch that used it: from here on its value is redacted.
  expect(made.value('TOKEN')).toBe(VALUE)
  return made
}

describe('SecretBroker.streamRedactor', () => {
  it('attack: a value cut anywhere across three pieces of output reaches no piece, and the pieces add up to the whole redacted', () => {
    const secrets = broker()
    const encoded = Buffer.from(VALUE).toString('base64')
    const text = `start ${VALUE} middle ${encoded} ${VALUE}${VALUE} end`
    const whole = secrets.redactText(text)
    expect(whole).not.toContain(VALUE)
    for (let i = 0; i <= text.length; i++) {
      for (let j = i; j <= text.length; j += 3) {
        const redactor = secrets.streamRedactor()
        const pieces = [text.slice(0, i), text.slice(i, j), text.slice(j)].map((piece) =>
          redactor.push(piece),
        )
        pieces.push(redactor.end())
        for (const piece of pieces) {
          expect(piece).not.toContain(VALUE)
          expect(piece).not.toContain(encoded.slice(4, -4))
        }
        expect(pieces.join('')).toBe(whole)
      }
    }
  })

  it('holds back no more than a value could still need, and nothing once it has ended', () => {
    const secrets = broker()
    const redactor = secrets.streamRedactor()
    const sent = redactor.push('x'.repeat(1000))
    expect(sent.length).toBeGreaterThanOrEqual(1000 - 64)
    expect(sent + redactor.end()).toBe('x'.repeat(1000))
    // A surrogate pair is never split between two pieces, wherever the hold-back would cut.
    for (let tail = 0; tail < 100; tail++) {
      const emoji = secrets.streamRedactor()
      const first = emoji.push(`${'y'.repeat(200)}😀${'z'.repeat(tail)}`)
      expect(first.at(-1)).not.toMatch(/[\ud800-\udbff]/)
      expect(first + emoji.end()).toBe(`${'y'.repeat(200)}😀${'z'.repeat(tail)}`)
    }
  })

  it('lets everything through at once when no value was used', () => {
    const profile = { secrets: {} } as unknown as ResolvedProfile
    const none = new SecretBroker(profile, { env: {}, store: () => null })
    const redactor = none.streamRedactor()
    expect(redactor.push('all of it')).toBe('all of it')
    expect(redactor.end()).toBe('')
  })
})
