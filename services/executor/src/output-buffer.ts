/** Hears guest output as it is kept: the stream and the text. */
export type OutputListener = (stream: 'stdout' | 'stderr', text: string) => void

/**
 * Collects guest stdout and stderr against one byte budget shared with the result. Appending past the
 * budget keeps what fits (cut at a character boundary) and reports the overflow.
 */
export class OutputBuffer {
  readonly #budget: number
  readonly #listener: OutputListener | undefined
  #used = 0
  #stdout: string[] = []
  #stderr: string[] = []
  #exceeded = false

  /** `listener` hears every piece of text the buffer keeps, as it keeps it (live streaming). */
  constructor(budgetBytes: number, listener?: OutputListener) {
    this.#budget = budgetBytes
    this.#listener = listener
  }

  /** Appends text to a stream; returns false once the budget is exhausted. */
  append(stream: 'stdout' | 'stderr', text: string): boolean {
    if (this.#exceeded) return false
    const bytes = Buffer.byteLength(text, 'utf8')
    const target = stream === 'stdout' ? this.#stdout : this.#stderr
    if (this.#used + bytes <= this.#budget) {
      this.#used += bytes
      target.push(text)
      this.#listener?.(stream, text)
      return true
    }
    const room = this.#budget - this.#used
    if (room > 0) {
      const kept = Buffer.from(text, 'utf8')
        .subarray(0, room)
        .toString('utf8')
        .replace(/\uFFFD$/, '')
      target.push(kept)
      if (kept.length > 0) this.#listener?.(stream, kept)
    }
    this.#used = this.#budget
    this.#exceeded = true
    return false
  }

  /** Records that output was refused without looking at it (it could not have fitted). */
  overflow(): void {
    this.#exceeded = true
  }

  get exceeded(): boolean {
    return this.#exceeded
  }

  /** Bytes still free for the result. */
  get remaining(): number {
    return this.#budget - this.#used
  }

  get stdout(): string {
    return this.#stdout.join('')
  }

  get stderr(): string {
    return this.#stderr.join('')
  }
}
