/**
 * A bounded queue that serves its keys (tenants) in rotation, so one busy tenant cannot starve the
 * others: each turn takes the oldest item of the next key that has work.
 */
export class FairQueue<T> {
  readonly #limit: number
  readonly #byKey = new Map<string, T[]>()
  #size = 0

  constructor(limit: number) {
    this.#limit = limit
  }

  get size(): number {
    return this.#size
  }

  /** Adds an item; returns false (and keeps nothing) when the queue is full. */
  push(key: string, item: T): boolean {
    if (this.#size >= this.#limit) return false
    const items = this.#byKey.get(key)
    if (items === undefined) this.#byKey.set(key, [item])
    else items.push(item)
    this.#size++
    return true
  }

  /** Takes the next item, rotating over keys in the order they first had work. */
  shift(): T | undefined {
    for (const [key, items] of this.#byKey) {
      const item = items.shift()
      this.#byKey.delete(key)
      if (items.length > 0) this.#byKey.set(key, items) // re-inserted: goes to the back of the rotation
      if (item !== undefined) {
        this.#size--
        return item
      }
    }
    return undefined
  }

  /** Removes one specific item (a cancelled request); returns whether it was queued. */
  remove(key: string, item: T): boolean {
    const items = this.#byKey.get(key)
    const index = items?.indexOf(item) ?? -1
    if (items === undefined || index < 0) return false
    items.splice(index, 1)
    if (items.length === 0) this.#byKey.delete(key)
    this.#size--
    return true
  }

  /** Empties the queue, handing back everything that was in it. */
  drain(): T[] {
    const all = [...this.#byKey.values()].flat()
    this.#byKey.clear()
    this.#size = 0
    return all
  }
}
