import { describe, expect, it } from 'vitest'
import { FairQueue } from './fair-queue.ts'

describe('FairQueue', () => {
  it('serves tenants in rotation, so a flood from one does not starve another', () => {
    const queue = new FairQueue<string>(100)
    for (let i = 0; i < 5; i++) queue.push('noisy', `n${i}`)
    queue.push('quiet', 'q0')
    expect([queue.shift(), queue.shift(), queue.shift()]).toEqual(['n0', 'q0', 'n1'])
  })

  it('refuses items past its bound and keeps none of them', () => {
    const queue = new FairQueue<number>(2)
    expect([queue.push('a', 1), queue.push('b', 2), queue.push('a', 3)]).toEqual([true, true, false])
    expect(queue.size).toBe(2)
  })

  it('caps what one tenant may hold, so a flood cannot lock the others out', () => {
    const queue = new FairQueue<number>(4, 2)
    expect([queue.push('noisy', 1), queue.push('noisy', 2), queue.push('noisy', 3)]).toEqual([
      true,
      true,
      false,
    ])
    expect([queue.push('quiet', 4), queue.push('quiet', 5)]).toEqual([true, true])
  })

  it('removes a cancelled item and drains the rest', () => {
    const queue = new FairQueue<number>(10)
    queue.push('a', 1)
    queue.push('a', 2)
    expect(queue.remove('a', 1)).toBe(true)
    expect(queue.remove('a', 1)).toBe(false)
    expect(queue.drain()).toEqual([2])
    expect(queue.shift()).toBeUndefined()
  })
})
