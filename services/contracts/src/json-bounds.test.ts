import { describe, expect, it } from 'vitest'
import { parseJsonBounded } from './json-bounds.ts'

const bounds = { maxBytes: 1000, maxDepth: 4 }

describe('parseJsonBounded', () => {
  it('parses plain JSON within bounds', () => {
    expect(parseJsonBounded('{"a":[1,{"b":"]]]"}]}', bounds)).toEqual({
      ok: true,
      value: { a: [1, { b: ']]]' }] },
    })
  })

  it('refuses text over the byte budget, counting UTF-8 bytes', () => {
    expect(parseJsonBounded(`"${'é'.repeat(600)}"`, bounds)).toMatchObject({ ok: false, reason: 'too_large' })
  })

  it('refuses nesting deeper than allowed without recursing', () => {
    const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`
    expect(parseJsonBounded(deep, { maxBytes: 1e6, maxDepth: 64 })).toMatchObject({
      ok: false,
      reason: 'too_deep',
    })
  })

  it('ignores brackets and escaped quotes inside strings when measuring depth', () => {
    expect(parseJsonBounded('["\\"[[[[[[["]', bounds)).toEqual({ ok: true, value: ['"[[[[[[['] })
  })

  it('reports malformed JSON as a value, not a throw', () => {
    expect(parseJsonBounded('{"a":', bounds)).toMatchObject({ ok: false, reason: 'malformed' })
  })
})
