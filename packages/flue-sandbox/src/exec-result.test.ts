import { describe, expect, it } from 'vitest'
import { type ExecutionRecord, shellResult } from './exec-result.ts'
import { deadline } from './run-command.ts'

const record = (fields: Partial<ExecutionRecord>): ExecutionRecord => ({
  id: 'ex_1',
  status: 'ok',
  stdout: 'out',
  stderr: 'err',
  error: null,
  exitCode: 0,
  ...fields,
})

describe('shellResult', () => {
  it("passes the command's own exit status through", () => {
    expect(shellResult(record({}))).toEqual({ stdout: 'out', stderr: 'err', exitCode: 0 })
    const failed = record({ status: 'error', exitCode: 3, error: { code: 'EXIT_NONZERO', message: 'x' } })
    expect(shellResult(failed)).toEqual({ stdout: 'out', stderr: 'err', exitCode: 3 })
  })

  it('maps what Cordon did to the command to a non-zero exit with a note on stderr', () => {
    const cases: [Partial<ExecutionRecord>, number, string][] = [
      [
        {
          status: 'timeout',
          error: { code: 'WALL_TIME_LIMIT', message: 'wall time limit of 4000 ms exceeded' },
        },
        124,
        'wall time limit',
      ],
      [{ status: 'timeout', error: { code: 'CPU_TIME_LIMIT', message: 'cpu limit' } }, 124, 'cpu limit'],
      [{ status: 'memory_limit', error: { code: 'MEMORY_LIMIT', message: 'memory limit' } }, 137, 'killed'],
      [{ status: 'killed', error: { code: 'CANCELLED', message: 'cancelled' } }, 137, 'cancelled'],
      [{ status: 'output_limit', error: { code: 'OUTPUT_LIMIT', message: 'too much' } }, 1, 'outputBytes'],
      [
        {
          status: 'error',
          exitCode: null,
          error: { code: 'KILLED_BY_SIGNAL', message: 'the command was killed by SIGSEGV' },
        },
        139,
        'SIGSEGV',
      ],
      [
        { status: 'error', exitCode: null, error: { code: 'FILE_SIZE_LIMIT', message: 'file too large' } },
        153,
        'file too large',
      ],
      [{ status: 'error', exitCode: null, error: { code: 'ENGINE_FAULT', message: 'broken' } }, 1, 'broken'],
    ]
    for (const [fields, exitCode, said] of cases) {
      const result = shellResult(record(fields))
      expect(result.exitCode, JSON.stringify(fields)).toBe(exitCode)
      expect(result.stderr.startsWith('err\ncordon: '), result.stderr).toBe(true)
      expect(result.stderr).toContain(said)
      expect(result.stdout).toBe('out')
    }
  })

  it('appends notes after the output, one line each', () => {
    expect(shellResult(record({ stderr: '' }), ['one', 'two']).stderr).toBe('cordon: one\ncordon: two\n')
  })
})

describe('deadline', () => {
  it("is the caller's when no limit is known or it is under the limit", () => {
    expect(deadline(500, null)).toEqual({ deadlineMs: 500, killAfterMs: 1000, byLimit: false })
    expect(deadline(null, null)).toEqual({ deadlineMs: null, killAfterMs: 1000, byLimit: false })
    expect(deadline(1000, 4000)).toEqual({ deadlineMs: 1000, killAfterMs: 400, byLimit: false })
  })

  it("stops the command before the profile's wall-time limit, kill included", () => {
    for (const wallMs of [1000, 3000, 4000, 60_000, 300_000]) {
      const plan = deadline(null, wallMs)
      expect(plan.byLimit).toBe(true)
      expect((plan.deadlineMs ?? 0) + plan.killAfterMs, String(wallMs)).toBeLessThan(wallMs)
      expect(deadline(wallMs * 2, wallMs)).toEqual(plan)
    }
  })
})
