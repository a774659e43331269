import { afterEach, describe, expect, it } from 'vitest'
import { IsolatePool } from './isolate-pool.ts'

const turn = () => new Promise((resolve) => setImmediate(resolve))

describe('IsolatePool', () => {
  let pool: IsolatePool
  afterEach(() => pool.dispose())

  it('prepares isolates in the background, so a run takes a ready one', async () => {
    pool = new IsolatePool(2)
    pool.warm(16)
    expect(pool.ready(16)).toBe(0)
    await turn()
    await turn()
    expect(pool.ready(16)).toBe(2)
    const taken = pool.take(16)
    expect(taken.memoryMb).toBe(16)
    expect(taken.disposed).toBe(false)
    expect(pool.ready(16)).toBe(1)
    taken.dispose()
  })

  it('never hands out the same isolate twice', async () => {
    pool = new IsolatePool(1)
    pool.warm(16)
    await turn()
    const first = pool.take(16)
    pool.refill()
    await turn()
    const second = pool.take(16)
    expect(second).not.toBe(first)
    expect(second.isolate).not.toBe(first.isolate)
    first.dispose()
    second.dispose()
  })

  it('makes one on the spot when none is ready, at isolated-vm smallest heap or more', () => {
    pool = new IsolatePool(0)
    const made = pool.take(4)
    expect(made.memoryMb).toBe(8)
    expect(pool.ready(8)).toBe(0)
    made.dispose()
  })

  it('keeps at most four sizes ready, dropping the least recently asked', async () => {
    pool = new IsolatePool(1)
    for (const size of [8, 16, 32, 64, 128]) pool.warm(size)
    for (let i = 0; i < 6; i++) await turn()
    expect([8, 16, 32, 64, 128].map((size) => pool.ready(size))).toEqual([0, 1, 1, 1, 1])
  })
})
