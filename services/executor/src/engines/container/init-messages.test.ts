import { describe, expect, it } from 'vitest'
import { exitWithinBounds, readInitMessage } from './init-messages.ts'

// What a sandbox's init says is untrusted (the init shares its uid with the code it runs): forged
// or broken messages are refused as values, never thrown into the worker.

const exit = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    t: 'exit',
    code: 0,
    signal: null,
    output: 'ok',
    files: [],
    result: null,
    resultTooLarge: false,
    ...extra,
  })
const bounds = { maxFiles: 2, maxFileBytes: 4, maxTotalBytes: 6, resultBytes: 3 }

describe('readInitMessage', () => {
  it('reads the three messages an init sends', () => {
    expect(readInitMessage('{"t":"ready"}')).toEqual({ t: 'ready' })
    expect(readInitMessage('{"t":"out","fd":2,"data":"aGk="}')).toEqual({
      t: 'out',
      fd: 2,
      data: Buffer.from('hi'),
    })
    expect(readInitMessage(exit({ files: [{ path: 'a/b.txt', size: 2, data: 'aGk=' }] }))).toMatchObject({
      t: 'exit',
      files: [{ path: 'a/b.txt', size: 2, data: 'aGk=' }],
    })
  })

  it.each([
    ['not JSON', '{"t":'],
    ['an unknown message', '{"t":"shell"}'],
    ['files that are not a list (a forged exit that crashed the worker once)', exit({ files: null })],
    ['a path that climbs', exit({ files: [{ path: '../../etc/cron.d/x', size: 1, data: 'eA==' }] })],
    ['an absolute path', exit({ files: [{ path: '/etc/passwd', size: 1, data: 'eA==' }] })],
    ['an empty segment', exit({ files: [{ path: 'a//b', size: 1, data: 'eA==' }] })],
    ['a control character', exit({ files: [{ path: 'a\nb', size: 1, data: 'eA==' }] })],
    ['a lone surrogate', exit({ files: [{ path: 'a\ud800', size: 1, data: 'eA==' }] })],
    ['output that is not base64', '{"t":"out","fd":1,"data":"!!!!"}'],
    ['output to another descriptor', '{"t":"out","fd":3,"data":""}'],
    ['an exit status out of range', exit({ code: 300 })],
    [
      'both content and a reason for omitting it',
      exit({ files: [{ path: 'a', size: 1, data: 'eA==', omitted: 'size' }] }),
    ],
  ])('refuses %s', (_what, line) => {
    expect(readInitMessage(line)).toMatchObject({ refused: expect.any(String) })
  })
})

describe('exitWithinBounds', () => {
  const message = (files: unknown[], result: string | null = null) => {
    const read = readInitMessage(exit({ files, result }))
    if (!('t' in read) || read.t !== 'exit') throw new Error('not an exit message')
    return read
  }

  it("takes an answer inside the execution's bounds", () => {
    expect(exitWithinBounds(message([{ path: 'a', size: 3, data: 'YWJj' }], 'MQ=='), bounds)).toBe(true)
  })

  it('refuses more files, bigger files, more bytes or a bigger result than the init may send', () => {
    const file = (path: string) => ({ path, size: 3, data: 'YWJj' })
    expect(exitWithinBounds(message([file('a'), file('b'), file('c')]), bounds)).toBe(false)
    expect(exitWithinBounds(message([{ path: 'a', size: 6, data: 'YWJjZGVm' }]), bounds)).toBe(false)
    expect(exitWithinBounds(message([file('a'), { path: 'b', size: 4, data: 'YWJjZA==' }]), bounds)).toBe(
      false,
    )
    expect(exitWithinBounds(message([], 'MTIzNA=='), bounds)).toBe(false)
    // A stated size that is not the content's.
    expect(exitWithinBounds(message([{ path: 'a', size: 1, data: 'YWJj' }]), bounds)).toBe(false)
  })
})
