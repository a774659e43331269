import { describe, expect, it } from 'vitest'
import { ESCAPE_ATTACKS } from './escape-attacks.ts'
import { HOSTILE_VALUE_ATTACKS } from './hostile-value-attacks.ts'
import { ISOLATE_ATTACKS } from './isolate-attacks.ts'
import { MEMORY_OUTPUT_ATTACKS } from './memory-output-attacks.ts'
import { RUNAWAY_ATTACKS } from './runaway-attacks.ts'

const GROUPS = {
  ESCAPE_ATTACKS,
  HOSTILE_VALUE_ATTACKS,
  RUNAWAY_ATTACKS,
  MEMORY_OUTPUT_ATTACKS,
  ISOLATE_ATTACKS,
}
const ALL = Object.values(GROUPS).flat()

describe('the attack catalogue', () => {
  it('has not gone empty: at least 30 attacks, and every group still has attacks', () => {
    expect(ALL.length).toBeGreaterThanOrEqual(30)
    for (const [group, attacks] of Object.entries(GROUPS))
      expect([group, attacks.length >= 5]).toEqual([group, true])
  })

  it('names each attack once, with code to run', () => {
    const names = ALL.map((attack) => attack.name)
    expect(names.filter((name, i) => names.indexOf(name) !== i)).toEqual([])
    expect(ALL.filter((attack) => attack.name.trim() === '' || attack.code.trim() === '')).toEqual([])
  })
})
