/** The first event id of a resumed stream: 1 000 000 × the attempt, plus 1. */
export const RESUMED_ID_BASE = 1_000_000

/** An event of a stream: its id (for `Last-Event-ID`), its name, its data. */
export interface LiveEvent {
  id: number
  event: string
}

/**
 * The events of one stream (an execution's, a run's), kept for clients to (re)attach: each gets the
 * next id (1, 2, ...; a resumed stream's from `RESUMED_ID_BASE` × the attempt), each new one goes to
 * the attached listeners, and an `end` event ends the stream and lets them go.
 */
export class LiveLog<E extends LiveEvent> {
  protected readonly events: E[] = []
  protected readonly subscribers = new Set<(event: E) => void>()
  readonly #firstId: number
  /** Whether a client ever attached (a stream nobody watched is not kept after its end). */
  watched = false

  constructor(attempt = 0) {
    this.#firstId = attempt * RESUMED_ID_BASE + 1
  }

  /** The id of the newest event (one before the first when there is none). */
  get lastId(): number {
    return this.#firstId + this.events.length - 1
  }

  get ended(): boolean {
    return this.events.at(-1)?.event === 'end'
  }

  get listeners(): number {
    return this.subscribers.size
  }

  /**
   * Sends every event after `after` to `listener`, then each new one as it comes, until the end
   * event (included) or until the returned function is called.
   */
  attach(after: number, listener: (event: E) => void): () => void {
    this.watched = true
    for (const event of this.events) if (event.id > after) listener(event)
    if (this.ended) return () => {}
    this.subscribers.add(listener)
    return () => this.subscribers.delete(listener)
  }

  /** Adds an event under the next id and sends it to the listeners (all let go after `end`). */
  protected append(event: E): void {
    event.id = this.#firstId + this.events.length
    this.events.push(event)
    for (const listener of this.subscribers) listener(event)
    if (event.event === 'end') this.subscribers.clear()
  }
}
