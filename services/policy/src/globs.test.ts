import { describe, expect, it } from 'vitest'
import { globCovers, globMatches, globProblem } from './globs.ts'

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
