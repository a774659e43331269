import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { globCovers, globMatches, globMatchesBelow, globProblem } from './globs.ts'

describe('globMatches', () => {
  it.each([
    ['/repos/**', '/repos', true],
    ['/repos/**', '/repos/a/b/c', true],
    ['/repos/**', '/reposx', false],
    ['/repos/*', '/repos/a', true],
    ['/repos/*', '/repos/a/b', false],
    ['/repos/*/issues', '/repos/a/issues', true],
    ['/files/*.json', '/files/a.json', true],
    ['/files/*.json', '/files/a.json.exe', false],
    ['/files/a*b*c', '/files/aXbYc', true],
    ['/files/a*b*c', '/files/acb', false],
    ['**', 'any/key/at/all', true],
    ['cache/**', 'cache', true],
    ['/**/*.key', '/a/b/c.key', true],
  ])('%s against %s is %s', (glob, name, expected) => {
    expect(globMatches(glob, name)).toBe(expected)
  })
})

describe('globCovers', () => {
  it.each([
    ['/**', '/repos/**', true],
    ['/repos/**', '/repos/*/issues', true],
    ['/repos/**', '/repos/**', true],
    ['/repos/*', '/repos/a', true],
    ['/repos/*', '/repos/**', false],
    ['/repos/a', '/repos/*', false],
    ['/repos/**', '/other/**', false],
    ['/files/*.json', '/files/a.json', true],
    ['/files/*.json', '/files/*', false],
    ['/a/**/z', '/a/b/c/z', true],
    ['/a/**/z', '/a/**', false],
  ])('%s covers %s: %s', (outer, inner, expected) => {
    expect(globCovers(outer, inner)).toBe(expected)
  })
})

describe('globProblem', () => {
  it.each([['/a/**b'], ['/a/../b'], ['/a/./b'], [''], ['/a\u0000']])('refuses %j', (glob) => {
    expect(globProblem(glob)).not.toBeNull()
  })
})

describe('globMatchesBelow', () => {
  it.each([
    ['/workspace/secret/**', '/workspace', true],
    ['/workspace/secret/**', '/workspace/secret', true],
    ['/workspace/secret/**', '/workspace/other', false],
    ['/workspace/**/*.key', '/workspace/a/b', true],
    ['/workspace/*.key', '/workspace/a', false],
    ['/workspace/a', '/workspace/a', false],
    ['/workspace/a/b', '/workspace', true],
  ])('%s below %s: %s', (glob, dir, expected) => {
    expect(globMatchesBelow(glob, dir)).toBe(expected)
  })
})

describe('limits that keep matching cheap', () => {
  it.each([
    ['two "**" in a row', '/a/**/**/b'],
    ['four "**"', '/**/a/**/b/**/c/**'],
    ['25 segments', `/${Array(24).fill('a').join('/')}`],
    ['five "*" in a segment', '/a*b*c*d*e*f'],
    ['257 characters', `/${'a'.repeat(256)}`],
  ])('refuses %s', (_what, glob) => {
    expect(globProblem(glob)).not.toBeNull()
  })

  it('never matches a name of more than 128 segments', () => {
    expect(globMatches('/**', `/${Array(127).fill('a').join('/')}`)).toBe(true)
    expect(globMatches('/**', `/${Array(128).fill('a').join('/')}`)).toBe(false)
  })
})

describe('property: globMatches agrees with a regular-expression reading of the glob', () => {
  const segment = fc.constantFrom('a', 'b', 'ab', '*', 'a*', '*b', 'a*b', '**')
  const glob = fc
    .array(segment, { minLength: 1, maxLength: 7 })
    .map((segments) => `/${segments.join('/')}`)
    .filter((g) => globProblem(g) === null)
  const name = fc
    .array(fc.constantFrom('a', 'b', 'ab', 'ba', 'aab', ''), { maxLength: 8 })
    .map((s) => `/${s.join('/')}`)

  it('holds for generated globs and names', () => {
    fc.assert(
      fc.property(glob, name, (g, n) => {
        expect(globMatches(g, n)).toBe(new RegExp(globRegExp(g)).test(n))
      }),
      { numRuns: 3000 },
    )
  })

  it('says a glob covers another only when every name the inner one matches, the outer one matches', () => {
    fc.assert(
      fc.property(glob, glob, fc.array(name, { minLength: 20, maxLength: 20 }), (outer, inner, names) => {
        if (!globCovers(outer, inner)) return
        for (const n of names) if (globMatches(inner, n)) expect(globMatches(outer, n)).toBe(true)
      }),
      { numRuns: 3000 },
    )
  })
})

/** `**` is any run of whole segments (with its slashes), `*` any run of characters but `/`. */
function globRegExp(glob: string): string {
  const body = glob
    .split('/')
    .map((s) => (s === '**' ? '\u0000' : s.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replaceAll('*', '[^/]*')))
    .join('/')
    .replaceAll('/\u0000', '(?:/[^/]*)*')
    .replaceAll('\u0000', '[^/]*(?:/[^/]*)*')
  return `^${body}$`
}
