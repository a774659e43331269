import {
  admitCall,
  type BindingReply,
  bodiesTooLarge,
  failure,
  MAX_REPLY_BYTES_PER_RUN,
  MAX_REPLY_TEXT,
  replyJSON,
} from '../../bridge/bridge.ts'
import type { BindingChannel } from '../../engine.ts'

/** A reply ready for the guest: JSON text, and the body (an id the guest API takes it by). */
export interface Delivery {
  id: number
  json: string
  bytesId: number | undefined
  body: ArrayBuffer | undefined
}

/**
 * The host side of the binding bridge for one isolate run: admits calls by the same rules as every
 * engine (`admitCall`), sends them down the channel, and turns each reply into a `Delivery` for the
 * glue's `deliver`. Reply bodies are bounded per run (`MAX_REPLY_BYTES_PER_RUN`) and reply texts per
 * reply (`MAX_REPLY_TEXT`), as in the QuickJS engine; bodies also count against the isolate's heap.
 */
export class IsolateCalls {
  readonly #maxCalls: number
  readonly #channel: BindingChannel | undefined
  readonly #deliver: (delivery: Delivery) => void
  readonly #pending = new Set<number>()
  /** Replies the host has, not yet handed to the guest: still in flight for the guest's count. */
  #undelivered = 0
  #made = 0
  #nextId = 1
  #nextBytes = 1
  #replyBytes = 0
  #ended = false

  /** @param deliver hands a reply to the guest, which then calls `handed` (the guest has it). */
  constructor(maxCalls: number, channel: BindingChannel | undefined, deliver: (delivery: Delivery) => void) {
    this.#maxCalls = maxCalls
    this.#channel = channel
    this.#deliver = deliver
  }

  /** Calls awaiting their reply, or whose reply has not reached the guest yet. */
  get pending(): number {
    return this.#pending.size + this.#undelivered
  }

  /** The glue's `call`: reply JSON text at once, or the id of a call whose reply comes later. */
  call(kind: unknown, op: unknown, args: unknown): string | number {
    const text = (value: unknown, max: number) =>
      typeof value === 'string' && value.length <= max ? value : null
    const kindText = text(kind, 32)
    const opText = text(op, 32)
    const argsText = typeof args === 'string' ? args : null
    if (kindText !== null && opText !== null && argsText !== null) this.#made++
    const call = admitCall(kindText, opText, argsText, {
      made: this.#made,
      max: this.#maxCalls,
      pending: this.pending,
    })
    if ('ok' in call) return this.#text(call).json
    if (this.#ended) return this.#text(failure('INVALID_STATE', 'the execution has ended')).json
    const channel = this.#channel
    if (channel === undefined) return this.#text(failure('NOT_GRANTED', `${call.kind} is not granted`)).json
    const id = this.#nextId++
    this.#pending.add(id)
    const settle = (reply: BindingReply) => {
      if (this.#ended || !this.#pending.delete(id)) return
      this.#undelivered++
      this.#deliver({ id, ...this.#text(reply) })
    }
    channel(call).then(settle, () => settle(failure('BINDING_FAILED', 'the binding failed')))
    return id
  }

  /** A reply reached the guest (its delivery task ended, however it ended). */
  handed(): void {
    this.#undelivered = Math.max(0, this.#undelivered - 1)
  }

  /**
   * UTF-8 text of a reply body the guest API holds (any `ArrayBuffer` the guest passes, in fact), at
   * most `MAX_REPLY_TEXT` bytes as in the QuickJS engine; null for anything else.
   */
  decode(body: unknown): string | null {
    if (!(body instanceof ArrayBuffer) || body.byteLength > MAX_REPLY_TEXT) return null
    return new TextDecoder().decode(body)
  }

  /** Drops calls still in flight: their replies go nowhere. */
  end(): void {
    this.#ended = true
    this.#pending.clear()
  }

  /** The reply as the guest reads it; bytes become a body of their own within the run's budget. */
  #text(reply: BindingReply): Omit<Delivery, 'id'> {
    if (!reply.ok || reply.bytes === undefined)
      return { json: replyJSON(reply, undefined), bytesId: undefined, body: undefined }
    const bytes = Buffer.from(reply.bytes, 'base64')
    if (this.#replyBytes + bytes.length > MAX_REPLY_BYTES_PER_RUN) {
      return { json: replyJSON(bodiesTooLarge(), undefined), bytesId: undefined, body: undefined }
    }
    const bytesId = this.#nextBytes
    const json = replyJSON(reply, bytesId)
    // `reply` is ok here, so anything else than an ok envelope is the too-long refusal: no body then.
    if (!json.startsWith('{"ok":true')) return { json, bytesId: undefined, body: undefined }
    this.#nextBytes++
    this.#replyBytes += bytes.length
    const body = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer
    return { json, bytesId, body }
  }
}
