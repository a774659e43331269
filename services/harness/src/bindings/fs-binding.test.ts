import type { JsonValue } from '@cordon/contracts'
import { type ResolvedProfile, resolveProfile } from '@cordon/policy'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FILE_MAX_BYTES, SPACE_MAX_ENTRIES } from '../storage/file-store.ts'
import { SqliteStore } from '../storage/sqlite-store.ts'
import type { BindingContext, Handled } from './binding-context.ts'
import { fsBinding } from './fs-binding.ts'

const limits = { cpuMs: 100, wallMs: 500, memoryMb: 16, outputBytes: 1024, bindingCalls: 10 }
function profile(filesystem: object): ResolvedProfile {
  const result = resolveProfile({
    name: 'p',
    engines: ['quickjs'],
    languages: ['javascript'],
    limits,
    filesystem,
  })
  if (!result.ok) throw new Error(JSON.stringify(result.issues))
  return result.profile
}
const writable = profile({ access: 'read-write', quotaBytes: 1000 })

let store: SqliteStore
beforeEach(() => {
  store = new SqliteStore(':memory:')
})
afterEach(() => store.close())

/** The context fs reads (tenant, store, space, profile); the rest belongs to other bindings. */
function context(
  p: ResolvedProfile = writable,
  fileSpace = 'exec:e1',
  tenant = 't',
  signal = new AbortController().signal,
): BindingContext {
  return {
    tenant,
    agent: 'a',
    execution: 'e1',
    profile: p,
    store,
    fileSpace,
    signal,
    replyBudget: { bytes: 4 * 1024 * 1024 },
  } as unknown as BindingContext
}

const fs = (op: string, args: JsonValue[], ctx = context()) => fsBinding(ctx, op, args)
const value = (handled: Handled) => (handled.reply.ok ? handled.reply.value : handled.reply.error)
const error = (handled: Handled) => (handled.reply.ok ? null : handled.reply.error)
const text = (handled: Handled) =>
  handled.reply.ok ? Buffer.from(handled.reply.bytes ?? '', 'base64').toString('utf8') : null

describe('fs binding: reading and writing', () => {
  it('writes text and reads it back as bytes (base64), relative paths under /workspace', async () => {
    expect((await fs('writeFile', ['notes/a.txt', 'héllo'])).reply).toEqual({ ok: true, value: null })
    const read = await fs('readFile', ['/workspace/notes/a.txt'])
    expect(read.reply).toMatchObject({ ok: true, value: null })
    expect(text(read)).toBe('héllo')
  })

  it('writes binary data sent as a byte string, every byte value intact', async () => {
    const all = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i))
    await fs('writeFile', ['bin', null, all])
    const read = await fs('readFile', ['bin'])
    expect([...Buffer.from(read.reply.ok ? (read.reply.bytes ?? '') : '', 'base64')]).toEqual(
      Array.from({ length: 256 }, (_, i) => i),
    )
  })

  it('refuses a byte string holding a character above 0xFF, writing nothing', async () => {
    expect(error(await fs('writeFile', ['bin', null, 'ok\u0100']))).toMatchObject({
      code: 'INVALID_ARGUMENT',
    })
    expect(error(await fs('writeFile', ['bin', 42]))).toMatchObject({ code: 'INVALID_ARGUMENT' })
    expect(error(await fs('stat', ['bin']))).toMatchObject({ code: 'NOT_FOUND' })
  })

  it('answers stat as { type, size, mtime }, the root included', async () => {
    await fs('writeFile', ['d/f', 'abc'])
    expect(value(await fs('stat', ['d/f']))).toEqual({ type: 'file', size: 3, mtime: expect.any(String) })
    expect(value(await fs('stat', ['d']))).toMatchObject({ type: 'directory', size: 0 })
    expect(value(await fs('stat', ['/workspace']))).toMatchObject({ type: 'directory' })
  })

  it('lists a directory, the root of an empty space included', async () => {
    expect(value(await fs('readdir', ['.']))).toEqual([])
    await fs('writeFile', ['b', '1'])
    await fs('writeFile', ['a/x', '2'])
    expect(value(await fs('readdir', ['/workspace']))).toEqual(['a', 'b'])
    expect(value(await fs('readdir', ['a']))).toEqual(['x'])
  })

  it('stores the NFC spelling: a decomposed name reaches the same file and lists composed', async () => {
    await fs('writeFile', ['cafe\u0301', 'menu'])
    expect(text(await fs('readFile', ['caf\u00e9']))).toBe('menu')
    expect(value(await fs('readdir', ['.']))).toEqual(['caf\u00e9'])
  })

  it('removes files and directories: NOT_EMPTY without recursive, everything with it; never the root', async () => {
    await fs('writeFile', ['d/e/f', 'x'])
    expect(error(await fs('rm', ['d', false]))).toMatchObject({ code: 'NOT_EMPTY' })
    expect((await fs('rm', ['d', true])).reply).toEqual({ ok: true, value: null })
    expect(value(await fs('readdir', ['.']))).toEqual([])
    expect(error(await fs('rm', ['/workspace', true]))).toMatchObject({ code: 'INVALID_ARGUMENT' })
    expect(error(await fs('rm', ['d', 'yes']))).toMatchObject({ code: 'INVALID_ARGUMENT' })
    expect(error(await fs('rm', ['d']))).toMatchObject({ code: 'NOT_FOUND' })
  })
})

describe('fs binding: attacks on the path', () => {
  it.each([
    ['a relative climb out of the root', '../../etc/passwd', 'PATH_INVALID'],
    ['a climb from the root', '/workspace/../etc/passwd', 'PATH_OUTSIDE_ROOT'],
    ['a climb from inside', '/workspace/a/../../x', 'PATH_OUTSIDE_ROOT'],
    ['an absolute path elsewhere', '/etc/passwd', 'PATH_OUTSIDE_ROOT'],
    ['a backslash climb', '..\\x', 'PATH_INVALID'],
    ['a NUL byte', 'a\u0000/../../../etc/passwd', 'PATH_INVALID'],
    ['a right-to-left override', 'invoice\u202efdp.exe', 'PATH_INVALID'],
    ['a zero-width space', 'a\u200b', 'PATH_INVALID'],
    ['fullwidth solidi', '..\uff0f..\uff0fetc\uff0fpasswd', 'PATH_INVALID'],
    ['a lone surrogate', 'a\ud800', 'PATH_INVALID'],
    ['a 5000-character path', 'a'.repeat(5000), 'PATH_INVALID'],
    ['a path of 200 segments', Array(200).fill('a').join('/'), 'PATH_INVALID'],
  ])('refuses %s for every operation, with FS_DENIED and the policy reason', async (_what, path, reason) => {
    for (const [op, args] of [
      ['readFile', [path]],
      ['writeFile', [path, 'x']],
      ['readdir', [path]],
      ['stat', [path]],
      ['rm', [path, true]],
    ] as const) {
      const handled = await fs(op, [...args])
      expect(error(handled)).toMatchObject({ code: 'FS_DENIED', reason, rule: 'profiles/p#/filesystem/root' })
      expect(handled.decision).toBe('deny')
    }
    expect(store.files.usage('t', 'exec:e1')).toEqual({ bytes: 0, entries: 0 })
  })

  it('refuses a path that is not a string, and an operation fs does not have', async () => {
    expect(error(await fs('readFile', [42]))).toMatchObject({ code: 'INVALID_ARGUMENT' })
    expect(error(await fs('readFile', []))).toMatchObject({ code: 'INVALID_ARGUMENT' })
    expect(error(await fs('__proto__', ['a']))).toMatchObject({ code: 'INVALID_ARGUMENT' })
    expect(error(await fs('constructor', ['a']))).toMatchObject({ code: 'INVALID_ARGUMENT' })
  })
})

describe('fs binding: the profile decides every call', () => {
  it('refuses everything without a filesystem (FS_NOT_ALLOWED)', async () => {
    const none = context(profile({ access: 'none' }))
    for (const op of ['readFile', 'readdir', 'stat']) {
      expect(error(await fs(op, ['a'], none))).toMatchObject({ code: 'FS_DENIED', reason: 'FS_NOT_ALLOWED' })
    }
  })

  it('lets a read-only profile read, list and stat, but refuses writes and removals (READ_ONLY)', async () => {
    await fs('writeFile', ['f', 'data'])
    const readOnly = context(profile({ access: 'read' }))
    expect(text(await fs('readFile', ['f'], readOnly))).toBe('data')
    expect(value(await fs('readdir', ['.'], readOnly))).toEqual(['f'])
    for (const [op, args] of [
      ['writeFile', ['f', 'overwritten']],
      ['writeFile', ['new', 'x']],
      ['rm', ['f', false]],
    ] as const) {
      expect(error(await fs(op, [...args], readOnly))).toMatchObject({
        code: 'FS_DENIED',
        reason: 'READ_ONLY',
        rule: 'profiles/p#/filesystem/access',
      })
    }
    expect(text(await fs('readFile', ['f']))).toBe('data')
  })

  it('hides entries a deny glob or the paths globs keep from the guest, in readdir', async () => {
    for (const path of ['public/a', 'secret/key', 'x.key', 'notes.txt', 'other/y']) {
      await fs('writeFile', [path, 'x'])
    }
    const guarded = context(
      profile({
        access: 'read-write',
        quotaBytes: 1000,
        paths: [
          '/workspace',
          '/workspace/public/**',
          '/workspace/*.txt',
          '/workspace/*.key',
          '/workspace/secret',
        ],
        deny: ['/workspace/secret/**', '/workspace/*.key'],
      }),
    )
    const listed = await fs('readdir', ['/workspace'], guarded)
    expect(value(listed)).toEqual(['notes.txt', 'public'])
    expect(listed.detail).toMatchObject({ entries: 2, hidden: 3 })
    expect(error(await fs('readFile', ['secret/key'], guarded))).toMatchObject({ reason: 'FS_DENIED' })
    expect(error(await fs('stat', ['x.key'], guarded))).toMatchObject({ reason: 'FS_DENIED' })
  })

  it('refuses a recursive rm over an entry the guest may not delete, and removes nothing', async () => {
    await fs('writeFile', ['out/result.txt', 'x'])
    await fs('writeFile', ['out/input.csv', 'y'])
    const textOnly = context(
      profile({ access: 'read-write', quotaBytes: 1000, paths: ['/workspace/out', '/workspace/out/*.txt'] }),
    )
    const handled = await fs('rm', ['out', true], textOnly)
    expect(error(handled)).toMatchObject({ code: 'FS_DENIED', reason: 'PATH_NOT_ALLOWED' })
    expect(error(handled)?.message).not.toContain('input.csv')
    expect(value(await fs('readdir', ['out']))).toEqual(['input.csv', 'result.txt'])
  })
})

describe('fs binding: quotas and limits', () => {
  it('refuses a write past quotaBytes (QUOTA_EXCEEDED, reason BYTES, the quota rule) and keeps the old file', async () => {
    await fs('writeFile', ['a', 'x'.repeat(600)])
    const handled = await fs('writeFile', ['b', 'x'.repeat(401)])
    expect(error(handled)).toMatchObject({
      code: 'QUOTA_EXCEEDED',
      reason: 'BYTES',
      rule: 'profiles/p#/filesystem/quotaBytes',
    })
    expect(handled.detail).toMatchObject({ usedBytes: 600 })
    expect(error(await fs('writeFile', ['a', 'y'.repeat(1001)]))).toMatchObject({ code: 'QUOTA_EXCEEDED' })
    expect(text(await fs('readFile', ['a']))).toBe('x'.repeat(600))
  })

  it(`refuses the entry past ${SPACE_MAX_ENTRIES} (QUOTA_EXCEEDED, reason ENTRIES)`, async () => {
    const ctx = context(profile({ access: 'read-write', quotaBytes: 1000 }))
    for (let i = 0; i < SPACE_MAX_ENTRIES; i++)
      store.files.write('t', 'exec:e1', `/workspace/f${i}`, new Uint8Array(), 0)
    expect(error(await fs('writeFile', ['one-more', ''], ctx))).toMatchObject({
      code: 'QUOTA_EXCEEDED',
      reason: 'ENTRIES',
    })
  })

  it(`refuses a file over ${FILE_MAX_BYTES} bytes (FILE_TOO_LARGE) whatever the quota`, async () => {
    const big = context(profile({ access: 'read-write', quotaBytes: 64 * 1024 * 1024 }))
    const handled = await fs('writeFile', ['big', 'x'.repeat(FILE_MAX_BYTES + 1)], big)
    expect(error(handled)).toMatchObject({ code: 'FILE_TOO_LARGE' })
    expect(error(await fs('stat', ['big'], big))).toMatchObject({ code: 'NOT_FOUND' })
  })
})

describe('fs binding: file and directory confusion', () => {
  it('refuses a file where a directory is, and a path below a file', async () => {
    await fs('writeFile', ['d/inner', 'x'])
    await fs('writeFile', ['f', 'x'])
    expect(error(await fs('writeFile', ['d', 'clobber']))).toMatchObject({ code: 'IS_DIRECTORY' })
    expect(error(await fs('readFile', ['d']))).toMatchObject({ code: 'IS_DIRECTORY' })
    expect(error(await fs('writeFile', ['f/child', 'x']))).toMatchObject({ code: 'NOT_DIRECTORY' })
    expect(error(await fs('readdir', ['f']))).toMatchObject({ code: 'NOT_DIRECTORY' })
    expect(value(await fs('readdir', ['d']))).toEqual(['inner'])
  })
})

describe('fs binding: isolation and audit', () => {
  it('refuses a call that arrives after its execution ended (ABORTED), writing nothing', async () => {
    const ended = new AbortController()
    ended.abort()
    const late = context(writable, 'exec:e1', 't', ended.signal)
    expect(error(await fs('writeFile', ['late.txt', 'x'], late))).toMatchObject({ code: 'ABORTED' })
    expect(store.files.usage('t', 'exec:e1')).toEqual({ bytes: 0, entries: 0 })
  })

  it('keeps spaces and tenants apart: one execution never sees another space or tenant', async () => {
    await fs('writeFile', ['mine', 'secret'], context(writable, 'agent:a'))
    for (const other of [
      context(writable, 'agent:b'),
      context(writable, 'exec:e2'),
      context(writable, 'agent:a', 'u'),
    ]) {
      expect(error(await fs('readFile', ['mine'], other))).toMatchObject({ code: 'NOT_FOUND' })
      expect(value(await fs('readdir', ['.'], other))).toEqual([])
    }
  })

  it('audits the path (at most 200 characters) and sizes, never the content', async () => {
    const long = `${'d'.repeat(250)}/file`
    const written = await fs('writeFile', [long, 'TOP-SECRET-CONTENT'])
    expect(written.detail).toEqual({ path: `/workspace/${long}`.slice(0, 200), size: 18, created: true })
    expect(written.bytes).toBe(18)
    const read = await fs('readFile', [long])
    expect(JSON.stringify(read.detail)).not.toContain('TOP-SECRET')
    expect(read.detail).toMatchObject({ size: 18 })
    const denied = await fs('readFile', [`../${'x'.repeat(500)}`])
    expect((denied.detail.path as string).length).toBe(200)
    const hidden = await fs('readFile', ['a\u202eb\u0000c\ud800'])
    expect(hidden.detail.path).toBe('a\\u{202e}b\\u{0}c\\u{fffd}')
  })
})
