import { describe, expect, it } from 'vitest'
import { commandDirectory, parentOf, routable, workspacePath } from './workspace-paths.ts'

describe('workspacePath', () => {
  it('resolves relative and absolute paths under /workspace', () => {
    expect(workspacePath('a/b.txt', 'open')).toEqual({ absolute: '/workspace/a/b.txt', relative: 'a/b.txt' })
    expect(workspacePath('/workspace/a//./b/../c', 'open')).toEqual({
      absolute: '/workspace/a/c',
      relative: 'a/c',
    })
    expect(workspacePath('/workspace/', 'open')).toEqual({ absolute: '/workspace', relative: '' })
    expect(workspacePath('.', 'open')).toEqual({ absolute: '/workspace', relative: '' })
  })

  it('refuses every spelling that ends outside /workspace with EACCES', () => {
    for (const path of [
      '/',
      '/etc/passwd',
      '..',
      '../workspace2',
      '/workspace/../etc',
      'a/../../x',
      '/workspacex',
    ]) {
      expect(() => workspacePath(path, 'open'), path).toThrow(expect.objectContaining({ code: 'EACCES' }))
    }
  })

  it('refuses empty paths and NUL with EINVAL', () => {
    expect(() => workspacePath('', 'stat')).toThrow(
      expect.objectContaining({ code: 'EINVAL', syscall: 'stat' }),
    )
    expect(() => workspacePath('a\0b', 'stat')).toThrow(expect.objectContaining({ code: 'EINVAL' }))
  })

  it('sends through the files API only names it carries exactly', () => {
    expect(routable(workspacePath("it's a $(name) with spaces", 'open'))).toBe(true)
    expect(routable(workspacePath('line\nbreak', 'open'))).toBe(false)
    expect(routable(workspacePath('tab\there', 'open'))).toBe(false)
    expect(routable(workspacePath('cafe\u0301', 'open'))).toBe(false)
    expect(routable(workspacePath('caf\u00e9', 'open'))).toBe(true)
  })
})

describe('commandDirectory and parentOf', () => {
  it('takes any absolute directory for exec, relative ones under /workspace', () => {
    expect(commandDirectory(undefined)).toBe('/workspace')
    expect(commandDirectory('src/../lib')).toBe('/workspace/lib')
    expect(commandDirectory('/tmp/x/')).toBe('/tmp/x')
    expect(() => commandDirectory('a\0')).toThrow(expect.objectContaining({ code: 'EINVAL' }))
  })

  it('names the parent of a normalised path', () => {
    expect(parentOf('/workspace/a/b')).toBe('/workspace/a')
    expect(parentOf('/workspace')).toBe('/')
  })
})
