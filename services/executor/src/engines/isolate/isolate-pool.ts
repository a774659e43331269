import { MIN_ISOLATE_MEMORY_MB, PreparedIsolate } from './prepared-isolate.ts'

/** Most memory sizes the pool keeps isolates ready for at once (the least recently asked is dropped). */
const MAX_SIZES = 4

/**
 * Keeps isolates prepared (`PreparedIsolate`: isolate, context, glue, glue modules) for the memory
 * sizes runs ask for, `perSize` of each, made in the background after the run that used one. An
 * isolate is taken by exactly one run and disposed after it, so the pool holds nothing of any tenant.
 */
export class IsolatePool {
  readonly #perSize: number
  readonly #ready = new Map<number, PreparedIsolate[]>()
  #refilling: NodeJS.Immediate | null = null
  #disposed = false

  constructor(perSize: number) {
    this.#perSize = Math.max(0, Math.floor(perSize))
  }

  /** Asks for isolates of this size to be kept ready. */
  warm(memoryMb: number): void {
    this.#sizes(memoryMb)
    this.refill()
  }

  /** A prepared isolate for `memoryMb`: a ready one, or one made now. */
  take(memoryMb: number): PreparedIsolate {
    const size = Math.max(MIN_ISOLATE_MEMORY_MB, memoryMb)
    const ready = this.#sizes(size).shift()
    return ready ?? new PreparedIsolate(size)
  }

  /** Isolates ready for `memoryMb` now. */
  ready(memoryMb: number): number {
    return this.#ready.get(Math.max(MIN_ISOLATE_MEMORY_MB, memoryMb))?.length ?? 0
  }

  /** Tops every size up in the background, one isolate per turn of the event loop. */
  refill(): void {
    if (this.#refilling !== null || this.#disposed || this.#perSize === 0) return
    this.#refilling = setImmediate(() => {
      this.#refilling = null
      for (const [size, ready] of this.#ready) {
        if (ready.length >= this.#perSize) continue
        ready.push(new PreparedIsolate(size))
        this.refill()
        return
      }
    })
    this.#refilling.unref()
  }

  dispose(): void {
    this.#disposed = true
    if (this.#refilling !== null) clearImmediate(this.#refilling)
    for (const ready of this.#ready.values()) for (const prepared of ready) prepared.dispose()
    this.#ready.clear()
  }

  /** The list of ready isolates for a size, made the most recently asked. */
  #sizes(memoryMb: number): PreparedIsolate[] {
    const size = Math.max(MIN_ISOLATE_MEMORY_MB, memoryMb)
    const ready = this.#ready.get(size) ?? []
    this.#ready.delete(size)
    this.#ready.set(size, ready)
    if (this.#ready.size > MAX_SIZES) {
      const [oldest, dropped] = this.#ready.entries().next().value as [number, PreparedIsolate[]]
      this.#ready.delete(oldest)
      for (const prepared of dropped) prepared.dispose()
    }
    return ready
  }
}
