import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestHarness, type TestHarness } from './helpers/harness.ts'

// Changes to declarations are on the audit trail: which profile or agent, its format, and the
// SHA-256 of the validated document stored (the version in force from then on), never its text.

let t: TestHarness
beforeAll(async () => {
  t = await startTestHarness()
})
afterAll(async () => {
  await t.close()
})

describe('the audit log of declaration changes', () => {
  it('records each profile and agent stored, and each agent deleted, in the tenant chain', () => {
    const { harness } = t
    harness.putProfile(
      'acme',
      'p',
      'engines: [quickjs]\nlanguages: [javascript]\nlimits: { cpuMs: 100, wallMs: 500, memoryMb: 16, outputBytes: 1024, bindingCalls: 0 }\n',
      'yaml',
    )
    harness.putAgent('acme', 'a', JSON.stringify({ sandbox: 'p', description: 'first' }), 'json')
    harness.putAgent('acme', 'a', JSON.stringify({ sandbox: 'p', description: 'second' }), 'json')
    harness.deleteAgent('acme', 'a')
    const records = harness.audit('acme', { limit: 100 })
    expect(records.map((record) => [record.kind, record.code, record.agent])).toEqual([
      ['profile.put', 'CHANGED', null],
      ['agent.put', 'CHANGED', 'a'],
      ['agent.put', 'CHANGED', 'a'],
      ['agent.delete', 'CHANGED', 'a'],
    ])
    expect(records[0]?.detail).toEqual({
      profile: 'p',
      format: 'yaml',
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
    })
    // Each version of the agent has its own digest: the log tells which one was in force when.
    expect(records[1]?.detail.sha256).toMatch(/^[0-9a-f]{64}$/)
    expect(records[1]?.detail.sha256).not.toBe(records[2]?.detail.sha256)
    expect(JSON.stringify(records)).not.toContain('first')
    expect(harness.verifyAudit('acme')).toMatchObject({ ok: true, records: 4 })
    // Another tenant's log has none of it.
    expect(harness.audit('umbrella', { limit: 100 })).toEqual([])
  })

  it('records nothing for a change that was refused', () => {
    const { harness } = t
    const before = harness.audit('acme', { limit: 1000 }).length
    expect(() =>
      harness.putAgent('acme', 'b', JSON.stringify({ sandbox: 'no-such-profile' }), 'json'),
    ).toThrow()
    expect(() => harness.deleteAgent('acme', 'never-was')).toThrow()
    expect(harness.audit('acme', { limit: 1000 })).toHaveLength(before)
  })
})
