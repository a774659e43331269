import { spawnSync } from 'node:child_process'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { commandScript, quote } from './shell-scripts.ts'

/** Runs a script with the host's bash (the sandbox runs the same bash). */
function bash(script: string): { stdout: string; status: number | null } {
  const result = spawnSync('bash', ['-c', script], { encoding: 'utf8', cwd: '/tmp' })
  return { stdout: result.stdout, status: result.status }
}

describe('quote', () => {
  it('makes one literal bash word of any string without NUL', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (value) => {
        fc.pre(!value.includes('\0'))
        expect(bash(`printf '%s' ${quote(value)}`).stdout).toBe(value)
      }),
      { numRuns: 150 },
    )
  })

  it('expands nothing: command substitution, backquotes, variables, globs, newlines', () => {
    for (const value of [
      '$(echo pwned)',
      '`echo pwned`',
      '$HOME',
      '*',
      "'; echo pwned; '",
      'a\nb',
      '\\',
      '"$x"',
    ]) {
      expect(bash(`printf '%s' ${quote(value)}`).stdout, value).toBe(value)
    }
  })

  it('refuses NUL, which no bash word can hold', () => {
    expect(() => quote('a\0b')).toThrow(TypeError)
  })
})

describe('commandScript', () => {
  const base = { cwd: '/tmp', env: {}, deadlineMs: null, killAfterMs: 1000 }

  it('runs the command after cd and export, with stdin left to the command', () => {
    const script = commandScript({
      ...base,
      command: 'pwd; printf "%s\\n" "$V"; cat; echo end',
      env: { V: '$(x)' },
    })
    expect(bash(`${script}`).stdout).toBe('/tmp\n$(x)\nend\n')
  })

  it('keeps a command that names here-document delimiters or spans many lines intact', () => {
    const command = `cat <<'EOF'\nCORDON_\n$(echo not expanded)\nEOF\necho "done"`
    expect(bash(commandScript({ ...base, command })).stdout).toBe('CORDON_\n$(echo not expanded)\ndone\n')
  })

  it('stops the command at the deadline with exit 124', () => {
    const result = bash(commandScript({ ...base, command: 'sleep 5', deadlineMs: 200, killAfterMs: 100 }))
    expect(result.status).toBe(124)
  })

  it('refuses environment names that are not shell identifiers', () => {
    for (const name of ['', '1A', 'A-B', 'A=B', 'A B', 'A;touch x']) {
      expect(() => commandScript({ ...base, command: 'true', env: { [name]: 'v' } }), name).toThrow(TypeError)
    }
  })
})
