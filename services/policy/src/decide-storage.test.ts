import { describe, expect, it } from 'vitest'
import { decideFile, decideKv, normalisePath } from './decide-storage.ts'
import { testProfile } from './test-profile.ts'

const profile = testProfile

const fsProfile = profile({
  filesystem: {
    access: 'read-write',
    quotaBytes: 1000,
    paths: ['/workspace/data/**', '/workspace/out.txt'],
    deny: ['/workspace/data/secret/**', '/workspace/**/*.key'],
  },
})
const readOnly = profile({ filesystem: { access: 'read' } })

describe('normalisePath', () => {
  it.each([
    ['a relative path', 'data/a.txt', '/workspace/data/a.txt'],
    ['a dot segment', '/workspace/./data/a.txt', '/workspace/data/a.txt'],
    ['a repeated slash', '/workspace//data///a.txt', '/workspace/data/a.txt'],
    ['a dot-dot that stays inside', '/workspace/data/x/../a.txt', '/workspace/data/a.txt'],
    ['a dot-dot that leaves the root', '/workspace/../etc/passwd', '/etc/passwd'],
    ['a relative climb', '../etc/passwd', '/etc/passwd'],
  ])('resolves %s', (_what, input, path) => {
    expect(normalisePath(input, '/workspace')).toEqual({ ok: true, path })
  })

  it.each([
    ['NUL', '/workspace/a\u0000.txt'],
    ['a newline', '/workspace/a\n.txt'],
    ['DEL', '/workspace/a\u007f'],
    ['a backslash', '/workspace\\..\\etc'],
    ['an empty path', ''],
    ['a path above "/"', '/../../..'],
    ['an overlong path', `/workspace/${'a'.repeat(5000)}`],
    ['a path of 128 segments', `/workspace/${Array(127).fill('a').join('/')}`],
    ['a zero-width space (U+200B)', '/workspace/a\u200b.txt'],
    ['a right-to-left override (U+202E)', '/workspace/\u202etxt.exe'],
    ['a byte order mark (U+FEFF)', '/workspace/\ufeffa'],
    ['a soft hyphen (U+00AD)', '/workspace/a\u00adb'],
    ['a line separator (U+2028)', '/workspace/a\u2028b'],
    ['a paragraph separator (U+2029)', '/workspace/a\u2029b'],
    ['a lone high surrogate', '/workspace/a\ud800'],
    ['a lone low surrogate', '/workspace/\udc00b'],
    ['a fullwidth solidus in a segment', '/workspace/..\uff0f..\uff0fetc'],
    ['fullwidth full stops as a climb', '/workspace/\uff0e\uff0e/etc'],
    ['a two-dot leader (U+2025) as a climb', '/workspace/\u2025/etc'],
    ['a small reverse solidus (U+FE68)', '/workspace/a\ufe68b'],
    ['an overlong path once NFC-normalised', `/workspace/${'\u0958'.repeat(2060)}`],
  ])('refuses %s', (_what, input) => {
    expect(normalisePath(input, '/workspace').ok).toBe(false)
  })

  it.each([
    ['a decomposed accent', '/workspace/cafe\u0301', '/workspace/caf\u00e9'],
    ['the Angstrom sign', '/workspace/\u212b', '/workspace/\u00c5'],
  ])('NFC-normalises %s, so one name has one spelling', (_what, input, path) => {
    expect(normalisePath(input, '/workspace')).toEqual({ ok: true, path })
  })

  it('keeps characters that only look unusual: emoji, fullwidth letters, a leader after a name', () => {
    for (const name of ['\u{1f4c4}.txt', '\uff41bc', 'a\u2025', '\u00e9t\u00e9']) {
      expect(normalisePath(`/workspace/${name}`, '/workspace')).toEqual({
        ok: true,
        path: `/workspace/${name}`,
      })
    }
  })
})

describe('decideFile', () => {
  it('allows a path under an allowed glob, pointing at it', () => {
    expect(decideFile(fsProfile, 'data/report.csv', 'write')).toMatchObject({
      effect: 'allow',
      rule: 'profiles/p#/filesystem/paths/0',
      path: { path: '/workspace/data/report.csv', operation: 'write' },
    })
    expect(decideFile(fsProfile, '/workspace/out.txt', 'read')).toMatchObject({
      rule: 'profiles/p#/filesystem/paths/1',
    })
  })

  it.each([
    ['traversal out of the root', '/workspace/data/../../etc/passwd', 'PATH_OUTSIDE_ROOT', 'root'],
    ['a relative climb', '../etc/shadow', 'PATH_OUTSIDE_ROOT', 'root'],
    ['a climb above "/"', '../../../etc/shadow', 'PATH_INVALID', 'root'],
    ['an absolute path elsewhere', '/etc/passwd', 'PATH_OUTSIDE_ROOT', 'root'],
    ['a sibling that shares a prefix', '/workspace-other/a', 'PATH_OUTSIDE_ROOT', 'root'],
    ['traversal into a denied folder', '/workspace/data/x/../secret/a', 'FS_DENIED', 'deny/0'],
    ['a denied suffix deep down', '/workspace/data/a/b/id.key', 'FS_DENIED', 'deny/1'],
    ['a path no glob allows', '/workspace/other.txt', 'PATH_NOT_ALLOWED', 'paths'],
    ['a NUL byte', '/workspace/data/a\u0000/../../x', 'PATH_INVALID', 'root'],
    ['a right-to-left override', '/workspace/data/\u202efdp.exe', 'PATH_INVALID', 'root'],
  ])('denies %s', (_what, path, code, rule) => {
    expect(decideFile(fsProfile, path, 'read')).toMatchObject({
      effect: 'deny',
      code,
      rule: `profiles/p#/filesystem/${rule}`,
    })
  })

  it('refuses to delete a folder that holds denied paths, but deletes one that does not', () => {
    expect(decideFile(fsProfile, '/workspace/data', 'delete')).toMatchObject({
      code: 'FS_DENIED',
      rule: 'profiles/p#/filesystem/deny/0',
    })
    expect(decideFile(fsProfile, '/workspace/data/x', 'delete')).toMatchObject({
      code: 'FS_DENIED',
      rule: 'profiles/p#/filesystem/deny/1',
    })
    const plain = profile({
      filesystem: { access: 'read-write', quotaBytes: 10, deny: ['/workspace/data/secret/**'] },
    })
    expect(decideFile(plain, '/workspace/data/public', 'delete')).toMatchObject({ effect: 'allow' })
    expect(decideFile(plain, '/workspace/data', 'delete')).toMatchObject({ code: 'FS_DENIED' })
    expect(decideFile(plain, '/workspace/data', 'list')).toMatchObject({ effect: 'allow' })
  })

  it('denies writes and deletes on a read-only filesystem, but allows reads', () => {
    expect(decideFile(readOnly, 'a.txt', 'read')).toMatchObject({ effect: 'allow' })
    expect(decideFile(readOnly, 'a.txt', 'write')).toMatchObject({
      code: 'READ_ONLY',
      rule: 'profiles/p#/filesystem/access',
    })
    expect(decideFile(readOnly, 'a.txt', 'delete')).toMatchObject({ code: 'READ_ONLY' })
  })

  it('matches the NFC form: a decomposed spelling of a denied name is still denied', () => {
    const accents = profile({
      filesystem: { access: 'read-write', quotaBytes: 10, deny: ['/workspace/caf\u00e9/**'] },
    })
    expect(decideFile(accents, '/workspace/cafe\u0301/menu', 'read')).toMatchObject({
      effect: 'deny',
      code: 'FS_DENIED',
    })
    expect(decideFile(accents, '/workspace/cafe/menu', 'write')).toMatchObject({
      effect: 'allow',
      path: { path: '/workspace/cafe/menu' },
    })
  })

  it('answers the checked path in its NFC form, the one the binding stores', () => {
    const decision = decideFile(fsProfile, 'data/re\u0301sume\u0301.txt', 'write')
    expect(decision).toMatchObject({
      effect: 'allow',
      path: { path: '/workspace/data/r\u00e9sum\u00e9.txt' },
    })
  })

  it('denies everything without a filesystem', () => {
    expect(decideFile(profile({}), '/workspace/a', 'read')).toMatchObject({ code: 'FS_NOT_ALLOWED' })
  })
})

describe('decideKv', () => {
  const kv = profile({
    kv: { access: 'read-write', quotaBytes: 100, keys: ['cache/**', 'state'], deny: ['cache/private/**'] },
  })

  it('allows keys its globs match', () => {
    expect(decideKv(kv, 'cache/a/b', 'write')).toMatchObject({
      effect: 'allow',
      rule: 'profiles/p#/kv/keys/0',
    })
    expect(decideKv(kv, 'state', 'read')).toMatchObject({
      effect: 'allow',
      key: { key: 'state', operation: 'read' },
    })
  })

  it.each([
    ['a denied key', 'cache/private/x', 'KV_DENIED'],
    ['a key no glob allows', 'other', 'KEY_NOT_ALLOWED'],
    ['an empty key', '', 'KEY_INVALID'],
    ['a key with NUL', 'cache/a\u0000b', 'KEY_INVALID'],
    ['a lone surrogate', 'cache/\ud800', 'KEY_INVALID'],
    ['an overlong key', `cache/${'k'.repeat(600)}`, 'KEY_INVALID'],
    ['a key of more than 128 segments', `cache/${Array(128).fill('k').join('/')}`, 'KEY_INVALID'],
  ])('denies %s', (_what, key, code) => {
    expect(decideKv(kv, key, 'read')).toMatchObject({ effect: 'deny', code })
  })

  it('denies writes to a read-only store and everything without one', () => {
    const readOnlyKv = profile({ kv: { access: 'read' } })
    expect(decideKv(readOnlyKv, 'a', 'read')).toMatchObject({ effect: 'allow' })
    expect(decideKv(readOnlyKv, 'a', 'write')).toMatchObject({ code: 'READ_ONLY' })
    expect(decideKv(profile({}), 'a', 'read')).toMatchObject({ code: 'KV_NOT_ALLOWED' })
  })
})
