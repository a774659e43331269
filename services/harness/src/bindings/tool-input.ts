import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import type { JsonValue } from '@cordon/contracts'

/** The thread's module, found when the first thread starts (not when this module loads). */
const threadEntry = () => fileURLToPath(new URL('./tool-input-thread.ts', import.meta.url))

/** Time one check may take before its thread is stopped and the input refused. */
export const TOOL_INPUT_CHECK_MS = 250

interface Pending {
  id: number
  schema: Record<string, unknown>
  input: JsonValue
  resolve: (problem: string | null) => void
}

/** Checks tool input against a tool's JSON Schema: null when valid, else where and why not. */
export interface ToolInputChecker {
  check(schema: Record<string, unknown>, input: JsonValue): Promise<string | null>
  close(): void
}

/**
 * Validates tool input against the tool's JSON Schema in a thread of its own, one check at a time,
 * each under a time limit. Schemas come from agent declarations and input from guests: a pattern that
 * backtracks, a `uniqueItems` over a large array or any other check that runs away would otherwise
 * stall the service's event loop, and with it every tenant's timers. A check past the limit stops the
 * thread (a fresh one takes the checks waiting behind it) and refuses the input.
 */
export class ToolInputValidator implements ToolInputChecker {
  #thread: Worker | null = null
  #ready = false
  #queue: Pending[] = []
  #timer: NodeJS.Timeout | null = null
  #nextId = 1

  /** Null when `input` is valid; otherwise where and why not (`$.url: must be string`). */
  check(schema: Record<string, unknown>, input: JsonValue): Promise<string | null> {
    return new Promise((resolve) => {
      this.#queue.push({ id: this.#nextId++, schema, input, resolve })
      if (this.#queue.length === 1) this.#send()
    })
  }

  /** Stops the thread; checks still waiting are refused. */
  close(): void {
    for (const pending of this.#queue.splice(0)) pending.resolve('the validator stopped')
    this.#stop()
  }

  #send(): void {
    const head = this.#queue[0]
    if (head === undefined) return
    const thread = this.#thread ?? this.#start()
    // The first check goes out once the thread has loaded (its start-up is not the check's time).
    if (!this.#ready) return
    thread.postMessage({ id: head.id, schema: head.schema, input: head.input })
    this.#timer = setTimeout(() => {
      this.#queue.shift()
      head.resolve(`checking the input against the schema took longer than ${TOOL_INPUT_CHECK_MS} ms`)
      this.#stop()
      this.#send()
    }, TOOL_INPUT_CHECK_MS)
  }

  #start(): Worker {
    const thread = new Worker(threadEntry(), { resourceLimits: { maxOldGenerationSizeMb: 128 } })
    thread.unref()
    thread.on('message', (message: { id: number; problem: string | null } | { ready: true }) => {
      if (this.#thread !== thread) return
      if ('ready' in message) {
        this.#ready = true
        this.#send()
        return
      }
      const head = this.#queue[0]
      if (head === undefined || head.id !== message.id) return
      if (this.#timer !== null) clearTimeout(this.#timer)
      this.#timer = null
      this.#queue.shift()
      head.resolve(message.problem)
      this.#send()
    })
    const failed = () => {
      if (this.#thread !== thread) return
      this.#thread = null
      this.#ready = false
      const head = this.#queue.shift()
      if (this.#timer !== null) clearTimeout(this.#timer)
      this.#timer = null
      head?.resolve('the input could not be checked against the schema')
      this.#send()
    }
    thread.on('error', failed)
    thread.on('exit', failed)
    this.#thread = thread
    this.#ready = false
    return thread
  }

  #stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer)
    this.#timer = null
    const thread = this.#thread
    this.#thread = null
    this.#ready = false
    void thread?.terminate()
  }
}
