import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { afterAll, describe, expect, it } from 'vitest'
import { type ArchiveLimits, type ArchiveResult, readArchive } from './archive.ts'
import { tar, tarGzip, zip } from './test-archives.ts'

const LIMITS: ArchiveLimits = { maxEntries: 16, maxTotalBytes: 64 * 1024, maxPathLength: 200 }
const text = (data: Uint8Array) => new TextDecoder().decode(data)

function files(result: ArchiveResult): Record<string, string> {
  if (!result.ok) throw new Error(result.message)
  return Object.fromEntries(result.files.map((file) => [file.path, text(file.data)]))
}

describe('readArchive', () => {
  it('reads a tar, skipping folders', async () => {
    const bytes = tar([
      { name: 'skills/', type: '5' },
      { name: 'agent.yaml', data: 'name: a\n' },
      { name: 'skills/x/SKILL.md', data: '---\n' },
      { name: 'empty.txt' },
    ])
    expect(files(await readArchive(bytes, 'tar', LIMITS))).toEqual({
      'agent.yaml': 'name: a\n',
      'skills/x/SKILL.md': '---\n',
      'empty.txt': '',
    })
  })

  it('reads long names from pax records and GNU long-name entries', async () => {
    const long = `skills/x/${'deep/'.repeat(30)}file.txt`
    for (const longName of ['pax', 'gnu'] as const) {
      const bytes = tar([
        { name: 'agent.yaml', data: 'a' },
        { name: long, data: 'b', longName },
      ])
      expect(files(await readArchive(bytes, 'tar', LIMITS))).toEqual({ 'agent.yaml': 'a', [long]: 'b' })
    }
  })

  it('reads a gzipped tar', async () => {
    const bytes = tarGzip([{ name: 'agent.yaml', data: 'name: a\n' }])
    expect(files(await readArchive(bytes, 'tar+gzip', LIMITS))).toEqual({ 'agent.yaml': 'name: a\n' })
  })

  it('reads a zip with stored and deflated entries, skipping folders', async () => {
    const bytes = zip([
      { name: 'skills/', mode: 0o040755 },
      { name: 'agent.yaml', data: 'name: a\n' },
      { name: 'skills/x/SKILL.md', data: 'x'.repeat(5000), method: 'deflate' },
    ])
    expect(files(await readArchive(bytes, 'zip', LIMITS))).toEqual({
      'agent.yaml': 'name: a\n',
      'skills/x/SKILL.md': 'x'.repeat(5000),
    })
  })

  it('strips one folder that wraps every file, and only then', async () => {
    const wrapped = zip([
      { name: 'my-agent/agent.yaml', data: 'a' },
      { name: 'my-agent/skills/x/SKILL.md', data: 'b' },
    ])
    expect(files(await readArchive(wrapped, 'zip', LIMITS))).toEqual({
      'agent.yaml': 'a',
      'skills/x/SKILL.md': 'b',
    })
    const two = zip([
      { name: 'a/agent.yaml', data: 'a' },
      { name: 'b/x', data: 'b' },
    ])
    expect(files(await readArchive(two, 'zip', LIMITS))).toEqual({ 'a/agent.yaml': 'a', 'b/x': 'b' })
  })

  it('normalises "./" prefixes and skips macOS metadata', async () => {
    const bytes = zip([
      { name: './agent.yaml', data: 'a' },
      { name: '__MACOSX/._agent.yaml', data: 'junk' },
      { name: 'skills/.DS_Store', data: 'junk' },
      { name: 'skills/x/._SKILL.md', data: 'junk' },
    ])
    expect(files(await readArchive(bytes, 'zip', LIMITS))).toEqual({ 'agent.yaml': 'a' })
  })

  it('refuses bytes of the wrong format as malformed', async () => {
    const junk = new TextEncoder().encode('this is not an archive at all')
    for (const kind of ['tar', 'tar+gzip', 'zip'] as const) {
      expect(await readArchive(junk, kind, LIMITS)).toMatchObject({ ok: false, problem: 'malformed' })
    }
  })
})

describe('readArchive interoperates with GNU tar', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cordon-archive-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('reads its pax and GNU archives, gzipped, with long names and a wrapping folder', async () => {
    const long = `skills/x/${'nested-folder/'.repeat(10)}notes.md`
    mkdirSync(join(dir, 'bundle', long, '..'), { recursive: true })
    writeFileSync(join(dir, 'bundle', 'agent.yaml'), 'name: a\n')
    writeFileSync(join(dir, 'bundle', long), 'notes')
    for (const format of ['pax', 'gnu']) {
      const out = join(dir, `${format}.tgz`)
      execFileSync('tar', [`--format=${format}`, '-czf', out, '-C', dir, 'bundle'])
      expect(files(await readArchive(readFileSync(out), 'tar+gzip', LIMITS))).toEqual({
        'agent.yaml': 'name: a\n',
        [long]: 'notes',
      })
    }
  })

  it('attack: a symlink that GNU tar archived is refused', async () => {
    mkdirSync(join(dir, 'linked'))
    symlinkSync('/etc/passwd', join(dir, 'linked', 'passwd'))
    execFileSync('tar', ['-cf', join(dir, 'linked.tar'), '-C', dir, 'linked'])
    expect(await readArchive(readFileSync(join(dir, 'linked.tar')), 'tar', LIMITS)).toMatchObject({
      ok: false,
      problem: 'unsafe',
      message: expect.stringContaining('"linked/passwd" is a symbolic link'),
    })
  })
})

describe('archive attacks', () => {
  const refused = (problem: string, message: string) => ({
    ok: false,
    problem,
    message: expect.stringContaining(message),
  })

  it.each([
    [
      'a tar symlink',
      tar([{ name: 'skills/x/link', type: '2', linkName: '/etc/shadow' }]),
      'tar',
      'is a symbolic link',
    ],
    [
      'a tar hard link',
      tar([
        { name: 'a', data: 'x' },
        { name: 'b', type: '1', linkName: 'a' },
      ]),
      'tar',
      'is a hard link',
    ],
    ['a tar character device', tar([{ name: 'dev/null', type: '3' }]), 'tar', 'is a device'],
    ['a tar FIFO', tar([{ name: 'pipe', type: '6' }]), 'tar', 'is a FIFO'],
    ['a tar sparse file', tar([{ name: 'sparse', type: 'S' }]), 'tar', 'unsupported type'],
    [
      'a zip symlink (S_IFLNK)',
      zip([{ name: 'skills/x/link', data: '/etc/passwd', mode: 0o120777 }]),
      'zip',
      'is a symbolic link',
    ],
    ['a zip block device', zip([{ name: 'sda', mode: 0o060600 }]), 'zip', 'is a device'],
    ['a zip socket', zip([{ name: 'sock', mode: 0o140777 }]), 'zip', 'is a socket'],
  ] as const)('attack: %s is refused', async (_what, bytes, kind, message) => {
    expect(await readArchive(bytes, kind, LIMITS)).toEqual(refused('unsafe', message))
  })

  it.each([
    ['"../" traversal in tar', tar([{ name: '../../etc/cron.d/x', data: 'x' }]), 'tar', 'climbs out'],
    ['"../" traversal in zip', zip([{ name: 'skills/../../x', data: 'x' }]), 'zip', 'climbs out'],
    [
      '"../" traversal in a pax path',
      tar([{ name: `${'a/'.repeat(55)}../../x`, data: 'x' }]),
      'tar',
      'climbs out',
    ],
    [
      '"../" traversal in a GNU long name',
      tar([{ name: `${'b/'.repeat(55)}../../x`, data: 'x', longName: 'gnu' }]),
      'tar',
      'climbs out',
    ],
    ['an absolute tar path', tar([{ name: '/etc/passwd', data: 'x' }]), 'tar', 'absolute path'],
    [
      'an absolute zip path',
      zip([{ name: '/root/.ssh/authorized_keys', data: 'x' }]),
      'zip',
      'absolute path',
    ],
    ['a Windows drive path', zip([{ name: 'C:/Windows/x', data: 'x' }]), 'zip', 'absolute path'],
    ['a backslash traversal', zip([{ name: '..\\..\\x', data: 'x' }]), 'zip', '"\\"'],
    ['a NUL in a zip name', zip([{ name: 'agent.yaml\0.txt', data: 'x' }]), 'zip', 'NUL'],
    ['a newline in a name', tar([{ name: 'a\nb', data: 'x' }]), 'tar', 'control character'],
    [
      'a path over the length limit',
      tar([{ name: 'p/'.repeat(101), data: 'x' }]),
      'tar',
      'over 200 characters',
    ],
    [
      'a duplicated entry',
      zip([
        { name: 'a', data: '1' },
        { name: './a', data: '2' },
      ]),
      'zip',
      'appears twice',
    ],
    [
      'a file that is also a folder',
      tar([
        { name: 'a', data: '1' },
        { name: 'a/b', data: '2' },
      ]),
      'tar',
      'both a file and a folder',
    ],
    [
      'overlapping zip entries',
      zip(
        [
          { name: 'a', data: 'xxxx' },
          { name: 'a', data: 'y' },
        ],
        { overlap: true },
      ),
      'zip',
      'overlaps',
    ],
  ] as const)('attack: %s is refused', async (_what, bytes, kind, message) => {
    expect(await readArchive(bytes, kind, LIMITS)).toEqual(refused('unsafe', message))
  })

  it('attack: too many entries (tar and zip) are refused before any is read', async () => {
    const many = Array.from({ length: LIMITS.maxEntries + 1 }, (_, i) => ({ name: `f${i}`, data: 'x' }))
    expect(await readArchive(tar(many), 'tar', LIMITS)).toEqual(refused('limit', 'more than 16 entries'))
    expect(await readArchive(zip(many), 'zip', LIMITS)).toEqual(refused('limit', 'more than 16 entries'))
  })

  it('attack: files that add up past the total size are refused', async () => {
    const third = 'x'.repeat(LIMITS.maxTotalBytes / 3 + 1)
    const entries = [0, 1, 2].map((i) => ({ name: `f${i}`, data: third }))
    expect(await readArchive(tar(entries), 'tar', LIMITS)).toEqual(
      refused('limit', '"f2" takes the archive past'),
    )
    expect(await readArchive(zip(entries), 'zip', LIMITS)).toEqual(refused('limit', '"f2" inflates to'))
  })

  it('attack: a zip bomb that declares its size is refused before it is inflated', async () => {
    const bomb = zip([{ name: 'bomb', data: new Uint8Array(64 * 1024 * 1024), method: 'deflate' }])
    expect(bomb.length).toBeLessThan(128 * 1024)
    expect(await readArchive(bomb, 'zip', LIMITS)).toEqual(
      refused('limit', `inflates to ${64 * 1024 * 1024} bytes`),
    )
  })

  it('attack: a zip bomb that lies about its size stops inflating at the declared size', async () => {
    const bomb = zip([
      { name: 'bomb', data: new Uint8Array(64 * 1024 * 1024), method: 'deflate', declaredSize: 10 },
    ])
    const started = performance.now()
    expect(await readArchive(bomb, 'zip', LIMITS)).toEqual(
      refused('malformed', 'more than its declared 10 bytes'),
    )
    expect(performance.now() - started).toBeLessThan(2000)
  })

  it('attack: a gzip bomb stops inflating at the limit', async () => {
    const bomb = gzipSync(new Uint8Array(64 * 1024 * 1024), { level: 9 })
    const started = performance.now()
    expect(await readArchive(bomb, 'tar+gzip', LIMITS)).toEqual(refused('limit', 'inflates past'))
    expect(performance.now() - started).toBeLessThan(2000)
  })

  it.each([
    ['a truncated tar', tar([{ name: 'a', data: 'x'.repeat(2000) }]).subarray(0, 1024), 'tar', 'truncated'],
    ['a tar header with a bad checksum', tamper(tar([{ name: 'a', data: 'x' }]), 0, 0x62), 'tar', 'checksum'],
    ['a zip with a corrupted entry', tamper(zip([{ name: 'a', data: 'hello' }]), 31, 0x21), 'zip', 'CRC-32'],
    [
      'a zip whose local header names another file',
      tamper(zip([{ name: 'a', data: 'x' }]), 30, 0x62),
      'zip',
      'names another file',
    ],
  ] as const)('refuses %s as malformed', async (_what, bytes, kind, message) => {
    expect(await readArchive(bytes, kind, LIMITS)).toEqual(refused('malformed', message))
  })
})

function tamper(bytes: Uint8Array, at: number, value: number): Uint8Array {
  const copy = bytes.slice()
  copy[at] = value
  return copy
}
