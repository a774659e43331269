import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FILE_MAX_BYTES, SPACE_MAX_ENTRIES } from './file-store.ts'
import type { SqliteFiles } from './sqlite-files.ts'
import { SqliteStore } from './sqlite-store.ts'

let store: SqliteStore
let files: SqliteFiles
beforeEach(() => {
  store = new SqliteStore(':memory:')
  files = store.files
})
afterEach(() => store.close())

const T = 'tenant'
const S = 'agent:a'
const QUOTA = 1000
const bytes = (text: string) => new TextEncoder().encode(text)
const text = (data: Uint8Array) => new TextDecoder().decode(data)
const write = (path: string, content: string, quota = QUOTA) => files.write(T, S, path, bytes(content), quota)
const names = (path: string) => {
  const listed = files.list(T, S, path)
  return listed.ok ? listed.entries.map((entry) => entry.name) : listed.code
}

describe('SqliteFiles: files and directories', () => {
  it('has the root in every space, empty at first, which cannot be removed or written', () => {
    expect(names('/workspace')).toEqual([])
    expect(files.stat(T, S, '/workspace')).toMatchObject({ type: 'directory', size: 0 })
    expect(files.remove(T, S, '/workspace', { recursive: true })).toEqual({ ok: false, code: 'ROOT' })
    expect(write('/workspace', 'x')).toEqual({ ok: false, code: 'IS_DIRECTORY' })
    expect(files.read(T, S, '/workspace')).toEqual({ ok: false, code: 'IS_DIRECTORY' })
  })

  it('writes a file, creating its parents as directories, and reads back the same bytes', () => {
    const content = new Uint8Array([0, 1, 254, 255])
    expect(files.write(T, S, '/workspace/a/b/c.bin', content, QUOTA)).toMatchObject({
      ok: true,
      created: true,
      usage: { bytes: 4, entries: 3 },
    })
    const read = files.read(T, S, '/workspace/a/b/c.bin')
    expect(read.ok && [...read.data]).toEqual([0, 1, 254, 255])
    expect(files.stat(T, S, '/workspace/a')).toMatchObject({ type: 'directory', size: 0 })
    expect(files.stat(T, S, '/workspace/a/b/c.bin')).toMatchObject({ type: 'file', size: 4 })
    expect(names('/workspace')).toEqual(['a'])
    expect(names('/workspace/a')).toEqual(['b'])
    expect(names('/workspace/a/b')).toEqual(['c.bin'])
    expect(files.usage(T, S)).toEqual({ bytes: 4, entries: 3 })
  })

  it('replaces a file, counting only its new size', () => {
    write('/workspace/f', 'x'.repeat(600))
    expect(write('/workspace/f', 'y'.repeat(900))).toMatchObject({ ok: true, created: false })
    expect(files.usage(T, S)).toEqual({ bytes: 900, entries: 1 })
    const read = files.read(T, S, '/workspace/f')
    expect(read.ok && text(read.data)).toBe('y'.repeat(900))
  })

  it('stores and reads an empty file', () => {
    expect(write('/workspace/empty', '')).toMatchObject({ ok: true })
    const read = files.read(T, S, '/workspace/empty')
    expect(read.ok && read.data.byteLength).toBe(0)
  })

  it('lists only direct children, in code point order, with type, size and mtime', () => {
    for (const path of [
      '/workspace/b',
      '/workspace/a/x',
      '/workspace/a/y/z',
      '/workspace/\u{1f4c4}',
      '/workspace/\uffee',
    ]) {
      write(path, 'data')
    }
    const listed = files.list(T, S, '/workspace')
    expect(listed.ok && listed.entries.map((e) => [e.name, e.type, e.size])).toEqual([
      ['a', 'directory', 0],
      ['b', 'file', 4],
      ['\uffee', 'file', 4],
      ['\u{1f4c4}', 'file', 4],
    ])
    expect(listed.ok && typeof listed.entries[0]?.mtime).toBe('string')
    expect(names('/workspace/a')).toEqual(['x', 'y'])
  })

  it('answers NOT_FOUND and NOT_DIRECTORY for what is not there or not a directory', () => {
    write('/workspace/f', 'x')
    expect(files.read(T, S, '/workspace/missing')).toEqual({ ok: false, code: 'NOT_FOUND' })
    expect(files.stat(T, S, '/workspace/missing')).toBeNull()
    expect(names('/workspace/missing')).toBe('NOT_FOUND')
    expect(names('/workspace/f')).toBe('NOT_DIRECTORY')
    expect(files.remove(T, S, '/workspace/missing', { recursive: false })).toEqual({
      ok: false,
      code: 'NOT_FOUND',
    })
  })
})

describe('SqliteFiles: file and directory confusion', () => {
  it('refuses a file where a directory is (IS_DIRECTORY), keeping the directory and its content', () => {
    write('/workspace/d/inner', 'keep')
    expect(write('/workspace/d', 'clobber')).toEqual({ ok: false, code: 'IS_DIRECTORY' })
    expect(files.stat(T, S, '/workspace/d')?.type).toBe('directory')
    expect(names('/workspace/d')).toEqual(['inner'])
  })

  it('refuses a path below a file (NOT_DIRECTORY), at any depth, creating nothing', () => {
    write('/workspace/f', 'file')
    expect(write('/workspace/f/child', 'x')).toEqual({ ok: false, code: 'NOT_DIRECTORY' })
    expect(write('/workspace/f/a/b/c', 'x')).toEqual({ ok: false, code: 'NOT_DIRECTORY' })
    expect(files.usage(T, S)).toEqual({ bytes: 4, entries: 1 })
    const read = files.read(T, S, '/workspace/f')
    expect(read.ok && text(read.data)).toBe('file')
  })
})

describe('SqliteFiles: quota and limits', () => {
  it('refuses a write past the bytes quota and changes nothing, not even its parents', () => {
    write('/workspace/a', 'x'.repeat(900))
    expect(write('/workspace/new/dir/b', 'x'.repeat(101))).toEqual({
      ok: false,
      code: 'QUOTA_EXCEEDED',
      reason: 'BYTES',
      usage: { bytes: 900, entries: 1 },
    })
    expect(files.stat(T, S, '/workspace/new')).toBeNull()
    expect(write('/workspace/b', 'x'.repeat(100))).toMatchObject({ ok: true, usage: { bytes: 1000 } })
    expect(write('/workspace/c', 'x')).toMatchObject({ code: 'QUOTA_EXCEEDED', reason: 'BYTES' })
  })

  it('counts a replaced file once: growing it past the quota is refused, the old content stays', () => {
    write('/workspace/a', 'x'.repeat(500))
    expect(write('/workspace/a', 'y'.repeat(1001))).toMatchObject({ code: 'QUOTA_EXCEEDED' })
    const read = files.read(T, S, '/workspace/a')
    expect(read.ok && text(read.data)).toBe('x'.repeat(500))
  })

  it(`refuses a file over ${FILE_MAX_BYTES} bytes whatever the quota`, () => {
    const big = new Uint8Array(FILE_MAX_BYTES + 1)
    expect(files.write(T, S, '/workspace/big', big, 1 << 30)).toEqual({ ok: false, code: 'FILE_TOO_LARGE' })
    expect(files.write(T, S, '/workspace/big', big.subarray(1), 1 << 30)).toMatchObject({ ok: true })
  })

  it(`refuses the entry past ${SPACE_MAX_ENTRIES}, counting directories a write would create`, () => {
    for (let i = 0; i < SPACE_MAX_ENTRIES - 2; i++) write(`/workspace/f${i}`, '')
    expect(files.usage(T, S).entries).toBe(SPACE_MAX_ENTRIES - 2)
    // Two missing parents and the file: three entries where two are left.
    expect(write('/workspace/d/e/f', '')).toEqual({
      ok: false,
      code: 'QUOTA_EXCEEDED',
      reason: 'ENTRIES',
      usage: { bytes: 0, entries: SPACE_MAX_ENTRIES - 2 },
    })
    expect(files.stat(T, S, '/workspace/d')).toBeNull()
    expect(write('/workspace/d/f', '')).toMatchObject({ ok: true })
    expect(write('/workspace/one-more', '')).toMatchObject({ code: 'QUOTA_EXCEEDED', reason: 'ENTRIES' })
    // Replacing a file adds no entry.
    expect(write('/workspace/f0', 'x')).toMatchObject({ ok: true })
  })

  it('refuses a new name over 255 UTF-8 bytes, and accepts one of exactly 255', () => {
    expect(write(`/workspace/${'é'.repeat(128)}`, 'x')).toEqual({ ok: false, code: 'NAME_TOO_LONG' })
    expect(write(`/workspace/${'a'.repeat(256)}/f`, 'x')).toEqual({ ok: false, code: 'NAME_TOO_LONG' })
    expect(write(`/workspace/${'a'.repeat(255)}`, 'x')).toMatchObject({ ok: true })
  })
})

describe('SqliteFiles: removal', () => {
  it('removes a file, and an empty directory, freeing their bytes and entries', () => {
    write('/workspace/d/f', 'abc')
    expect(files.remove(T, S, '/workspace/d/f', { recursive: false })).toEqual({
      ok: true,
      removed: 1,
      bytes: 3,
    })
    expect(files.remove(T, S, '/workspace/d', { recursive: false })).toEqual({
      ok: true,
      removed: 1,
      bytes: 0,
    })
    expect(files.usage(T, S)).toEqual({ bytes: 0, entries: 0 })
  })

  it('refuses a non-empty directory without recursive (NOT_EMPTY), and removes all of it with it', () => {
    write('/workspace/d/a', 'aa')
    write('/workspace/d/e/b', 'bbb')
    expect(files.remove(T, S, '/workspace/d', { recursive: false })).toEqual({ ok: false, code: 'NOT_EMPTY' })
    expect(files.remove(T, S, '/workspace/d', { recursive: true })).toEqual({
      ok: true,
      removed: 4,
      bytes: 5,
    })
    expect(names('/workspace')).toEqual([])
  })

  it('removes recursively by byte range: names with "%", "_" and "*" do not widen it to siblings', () => {
    for (const path of [
      '/workspace/a%/x',
      '/workspace/a_/x',
      '/workspace/ab/x',
      '/workspace/a%b',
      '/workspace/a/x',
    ]) {
      write(path, 'x')
    }
    expect(files.remove(T, S, '/workspace/a%', { recursive: true })).toMatchObject({ ok: true, removed: 2 })
    expect(files.remove(T, S, '/workspace/a_', { recursive: true })).toMatchObject({ ok: true, removed: 2 })
    expect(files.remove(T, S, '/workspace/a', { recursive: true })).toMatchObject({ ok: true, removed: 2 })
    expect(names('/workspace')).toEqual(['a%b', 'ab'])
    expect(names('/workspace/ab')).toEqual(['x'])
  })

  it('asks `allow` about every entry below, and removes nothing when it refuses one', () => {
    write('/workspace/d/ok', 'x')
    write('/workspace/d/secret/key', 'x')
    const asked: string[] = []
    const allow = (path: string) => {
      asked.push(path)
      return !path.includes('secret')
    }
    expect(files.remove(T, S, '/workspace/d', { recursive: true, allow })).toEqual({
      ok: false,
      code: 'DENIED',
      path: '/workspace/d/secret',
    })
    expect(asked).toEqual(['/workspace/d/ok', '/workspace/d/secret'])
    expect(files.usage(T, S).entries).toBe(4)
  })
})

describe('SqliteFiles: usage counters', () => {
  /** Bytes and entries counted from the rows themselves, by walking the tree. */
  const recount = (dir = '/workspace'): { bytes: number; entries: number } => {
    const listed = files.list(T, S, dir)
    if (!listed.ok) throw new Error(listed.code)
    return listed.entries.reduce(
      (sum, entry) => {
        const inner = entry.type === 'directory' ? recount(`${dir}/${entry.name}`) : { bytes: 0, entries: 0 }
        return { bytes: sum.bytes + entry.size + inner.bytes, entries: sum.entries + 1 + inner.entries }
      },
      { bytes: 0, entries: 0 },
    )
  }

  it('agree with the rows after 1000 random writes, refusals and removals', () => {
    let seed = 42
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed % n
    }
    const path = () => `/workspace/${Array.from({ length: 1 + next(3) }, () => 'abc'[next(3)]).join('/')}`
    for (let i = 0; i < 1000; i++) {
      const op = next(4)
      if (op < 2) write(path(), 'x'.repeat(next(200)))
      else files.remove(T, S, path(), { recursive: op === 3 })
      expect(files.usage(T, S)).toEqual(recount())
    }
    expect(files.usage(T, S).bytes).toBeLessThanOrEqual(QUOTA)
  })
})

describe('SqliteFiles: isolation', () => {
  it('keeps tenants and spaces apart: the same path in another tenant or space is another file', () => {
    write('/workspace/f', 'mine')
    expect(files.read('other', S, '/workspace/f')).toEqual({ ok: false, code: 'NOT_FOUND' })
    expect(files.read(T, 'agent:b', '/workspace/f')).toEqual({ ok: false, code: 'NOT_FOUND' })
    expect(files.list('other', S, '/workspace')).toEqual({ ok: true, entries: [] })
    files.write('other', S, '/workspace/f', bytes('theirs'), QUOTA)
    const mine = files.read(T, S, '/workspace/f')
    expect(mine.ok && text(mine.data)).toBe('mine')
    expect(files.remove('other', S, '/workspace/f', { recursive: false })).toMatchObject({ ok: true })
    expect(files.usage(T, S)).toEqual({ bytes: 4, entries: 1 })
  })

  it('keeps quotas per space: one full space does not block another', () => {
    write('/workspace/f', 'x'.repeat(QUOTA))
    expect(files.write(T, 'agent:b', '/workspace/f', bytes('x'.repeat(QUOTA)), QUOTA)).toMatchObject({
      ok: true,
    })
  })

  it('drops one whole space and nothing else', () => {
    write('/workspace/a/b', 'x')
    files.write(T, 'exec:1', '/workspace/a', bytes('y'), QUOTA)
    expect(files.dropSpace(T, 'exec:1')).toBe(1)
    expect(files.usage(T, 'exec:1')).toEqual({ bytes: 0, entries: 0 })
    expect(files.usage(T, S)).toEqual({ bytes: 1, entries: 2 })
  })

  it('drops every leftover scratch space of every tenant at a start, and no agent space', () => {
    write('/workspace/kept', 'x')
    files.write(T, 'exec:1', '/workspace/a/b', bytes('y'), QUOTA)
    files.write('other', 'exec:2', '/workspace/c', bytes('z'), QUOTA)
    files.write(T, 'agent:exec', '/workspace/d', bytes('w'), QUOTA)
    expect(files.dropScratchSpaces()).toBe(3)
    expect(files.usage(T, 'exec:1')).toEqual({ bytes: 0, entries: 0 })
    expect(files.usage('other', 'exec:2')).toEqual({ bytes: 0, entries: 0 })
    expect(files.usage(T, 'agent:exec')).toEqual({ bytes: 1, entries: 1 })
    expect(files.usage(T, S)).toEqual({ bytes: 1, entries: 1 })
  })
})

describe('SqliteFiles: only normalised paths under the root', () => {
  it.each([
    ['a relative path', 'workspace/a'],
    ['a path outside the root', '/etc/passwd'],
    ['a sibling of the root', '/workspace-other/a'],
    ['a dot-dot segment', '/workspace/a/../../etc'],
    ['an empty segment', '/workspace//a'],
    ['a trailing slash', '/workspace/a/'],
    ['a NUL byte', '/workspace/a\u0000'],
    ['a lone surrogate', '/workspace/\ud800'],
  ])('throws on %s: an unchecked path is a bug, never stored', (_what, path) => {
    expect(() => write(path, 'x')).toThrow(/normalised path/)
    expect(() => files.read(T, S, path)).toThrow(/normalised path/)
    expect(files.usage(T, S)).toEqual({ bytes: 0, entries: 0 })
  })
})
