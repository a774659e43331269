/**
 * A bounded queue that serves its keys (tenants) in rotation, so one busy tenant cannot starve the
 * others: each turn takes the oldest item of the next key that has work.
 */
export class FairQueue<T> {
  readonly #limit: number
  readonly #perKeyLimit: number
  readonly #byKey = new Map<string, T[]>()
  #size = 0

  /** `limit` bounds the whole queue, `perKeyLimit` what one key may hold of it. */
  constructor(limit: number, perKeyLimit = limit) {
    this.#limit = limit
    this.#perKeyLimit = perKeyLimit
  }

  get size(): number {
    return this.#size
  }

  /** Adds an item; returns false (and keeps nothing) when the queue, or the key's share, is full. */
  push(key: string, item: T): boolean {
    const items = this.#byKey.get(key)
    if (this.#size >= this.#limit || (items?.length ?? 0) >= this.#perKeyLimit) return false
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

  /** How many items one key has waiting. */
  sizeOf(key: string): number {
    return this.#byKey.get(key)?.length ?? 0
  }

  /** Takes the oldest item of one key, leaving the rotation as it is. */
  shiftKey(key: string): T | undefined {
    const items = this.#byKey.get(key)
    const item = items?.shift()
    if (item === undefined) return undefined
    if (items?.length === 0) this.#byKey.delete(key)
    this.#size--
    return item
  }

  /** Puts an item back at the front of its key's line; false when the queue is full. */
  unshift(key: string, item: T): boolean {
    if (this.#size >= this.#limit) return false
    const items = this.#byKey.get(key)
    if (items === undefined) this.#byKey.set(key, [item])
    else items.unshift(item)
    this.#size++
    return true
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
