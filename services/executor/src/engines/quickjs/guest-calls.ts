import type { QuickJSContext, QuickJSDeferredPromise, QuickJSHandle } from 'quickjs-emscripten-core'
import {
  admitCall,
  type BindingCall,
  type BindingReply,
  BRIDGE_LIMITS,
  bodiesTooLarge,
  failure,
  MAX_REPLY_BYTES_PER_RUN,
  MAX_REPLY_TEXT,
  replyJSON,
} from '../../bridge/bridge.ts'
import { lengthOf, newBytes, newText } from './quickjs-internals.ts'

export { MAX_REPLY_BYTES_PER_RUN, MAX_REPLY_TEXT }

/** What the bridge needs from the run in progress. */
export interface CallSession {
  /** Binding calls this run may make (the profile's `bindingCalls`). */
  readonly maxCalls: number
  /** Sends a guest call to the host; absent when the run has no bindings. */
  readonly call?: ((call: BindingCall) => Promise<BindingReply>) | undefined
}

/**
 * The host side of the binding bridge (`call`, `take` and `decode` of the guest API) and the state of
 * the current run's calls: how many were made, which await their reply, reply bodies not taken yet.
 *
 * Contract: the host reads only guest strings whose length it checked first and parses arguments once,
 * bounded; a run makes at most `maxCalls` calls with at most `BRIDGE_LIMITS.maxPendingCalls` in
 * flight; replies reach the guest as guest-realm values only (JSON text and `ArrayBuffer`s), at most
 * `MAX_REPLY_TEXT` characters each and `MAX_REPLY_BYTES_PER_RUN` bytes of bodies per run, and only
 * while the run that made the call is current. `end` disposes every handle the calls still hold.
 */
export class GuestCalls {
  readonly #ctx: QuickJSContext
  readonly #session: () => CallSession | null
  readonly #memoryUsed: () => number | null
  #memoryLimit = 0
  #calls = 0
  #pending = new Set<QuickJSDeferredPromise>()
  #bytes = new Map<number, QuickJSHandle>()
  #nextBytes = 1
  #replyBytes = 0
  #replied: (() => void) | null = null

  /**
   * @param session the run in progress, null between runs (compared by identity to drop late replies)
   * @param memoryUsed QuickJS's count of heap bytes in use, null when it cannot be read
   */
  constructor(ctx: QuickJSContext, session: () => CallSession | null, memoryUsed: () => number | null) {
    this.#ctx = ctx
    this.#session = session
    this.#memoryUsed = memoryUsed
  }

  /** Starts a run's count of calls and reply bytes, under the run's memory limit. */
  begin(memoryLimitBytes: number): void {
    this.#memoryLimit = memoryLimitBytes
    this.#calls = 0
    this.#replyBytes = 0
  }

  /**
   * Ends a run: disposes the promises of calls still awaiting their reply (replies on their way then
   * find no deferred: their promises belong to a heap about to be reset) and the bodies not taken.
   */
  end(): void {
    for (const deferred of this.#pending) deferred.dispose()
    this.#pending.clear()
    for (const handle of this.#bytes.values()) handle.dispose()
    this.#bytes.clear()
    this.#replied = null
  }

  /** Binding calls awaiting their reply. */
  get pending(): number {
    return this.#pending.size
  }

  /** Resolves when the next reply has been handed to the guest (its promise settled). */
  nextReply(): Promise<void> {
    return new Promise((resolve) => {
      this.#replied = resolve
    })
  }

  /**
   * The host side of `call(kind, op, argsJSON)`: reads three strings whose lengths it checked first,
   * parses the arguments once (bounded) and hands that copy to the host. Always answers a promise of
   * the guest realm, settled with the reply as JSON text (failures included) when it arrives.
   */
  call(kind: QuickJSHandle, op: QuickJSHandle, args: QuickJSHandle): QuickJSHandle {
    const ctx = this.#ctx
    const deferred = ctx.newPromise()
    const session = this.#session()
    const answer = (reply: BindingReply) => {
      this.#deliver(deferred, reply)
      return deferred.handle
    }
    if (session === null) return answer(failure('INVALID_STATE', 'no run in progress'))
    const text = (handle: QuickJSHandle, max: number): string | null =>
      ctx.typeof(handle) === 'string' && lengthOf(ctx, handle) <= max ? ctx.getString(handle) : null
    const kindText = text(kind, 32)
    const opText = text(op, 32)
    const argsText = kindText === null || opText === null ? '' : text(args, BRIDGE_LIMITS.maxArgumentBytes)
    // Malformed and oversized calls are not counted; every other call is, refused or not.
    if (kindText !== null && opText !== null && argsText !== null) this.#calls++
    const call = admitCall(kindText, opText, argsText, {
      made: this.#calls,
      max: session.maxCalls,
      pending: this.#pending.size,
    })
    if ('ok' in call) return answer(call)
    if (session.call === undefined) return answer(failure('NOT_GRANTED', `${call.kind} is not granted`))
    this.#pending.add(deferred)
    const settle = (reply: BindingReply) => {
      // A reply for an earlier run (or after `end`) finds its deferred gone and is dropped.
      if (this.#session() !== session || !this.#pending.delete(deferred)) return
      this.#deliver(deferred, reply)
      const replied = this.#replied
      this.#replied = null
      replied?.()
    }
    session.call(call).then(settle, () => settle(failure('BINDING_FAILED', 'the binding failed')))
    return deferred.handle
  }

  /** The reply body `id` as an `ArrayBuffer` of the guest heap, once; undefined after. */
  take(id: QuickJSHandle): QuickJSHandle | undefined {
    if (this.#ctx.typeof(id) !== 'number') return undefined
    const key = this.#ctx.getNumber(id)
    const handle = this.#bytes.get(key)
    if (handle === undefined) return undefined
    this.#bytes.delete(key)
    return handle
  }

  /** UTF-8 text of a guest `ArrayBuffer` (the guest API passes only buffers that `take` made). */
  decode(buffer: QuickJSHandle): QuickJSHandle {
    if (this.#ctx.typeof(buffer) !== 'object') throw new TypeError('expected an ArrayBuffer')
    let view: ReturnType<QuickJSContext['getArrayBuffer']>
    try {
      view = this.#ctx.getArrayBuffer(buffer)
    } catch {
      // A buffer the guest detached (`transfer`), or one QuickJS cannot lend: the guest's own doing.
      throw new TypeError('the body is no longer available')
    }
    try {
      const text =
        view.value.length <= MAX_REPLY_TEXT && this.#fits(view.value.length * 2)
          ? newText(this.#ctx, new TextDecoder().decode(view.value))
          : null
      if (text === null) throw new RangeError('out of memory decoding the body')
      return text
    } finally {
      view.dispose()
    }
  }

  /** Settles a call's promise with the reply as JSON text; bytes become a guest `ArrayBuffer` first. */
  #deliver(deferred: QuickJSDeferredPromise, reply: BindingReply): void {
    let answer: BindingReply = reply
    let bytesId: number | undefined
    if (reply.ok && reply.bytes !== undefined) {
      const bytes = Buffer.from(reply.bytes, 'base64')
      if (this.#replyBytes + bytes.length > MAX_REPLY_BYTES_PER_RUN) {
        answer = bodiesTooLarge()
      } else {
        const buffer = newBytes(this.#ctx, bytes)
        if (buffer === null) {
          answer = failure('OUT_OF_MEMORY', 'the body does not fit in the guest memory')
        } else {
          this.#replyBytes += bytes.length
          bytesId = this.#nextBytes++
          this.#bytes.set(bytesId, buffer)
        }
      }
    }
    const json = replyJSON(answer, bytesId)
    const text = this.#fits(json.length * 2) ? newText(this.#ctx, json) : null
    try {
      deferred.resolve(text ?? this.#ctx.null)
    } catch {
      // The heap is full even for settling: the guest's promise stays pending and its run ends on a limit.
      deferred.dispose()
    } finally {
      text?.dispose()
    }
  }

  /**
   * Whether the heap has room for `bytes` more below the run's memory limit. Small amounts are not
   * measured (measuring costs a few tens of µs): their allocation is checked when it is made.
   */
  #fits(bytes: number): boolean {
    if (bytes < 64 * 1024) return true
    const used = this.#memoryUsed()
    return used !== null && used + bytes + 4096 < this.#memoryLimit
  }
}
