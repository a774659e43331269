import { createHash } from 'node:crypto'
import type { JsonValue } from '@cordon/contracts'
import type { BindingCall } from '@cordon/executor'
import type { AgentDeclaration } from '@cordon/policy'
import type { JournalEntry, JournalScope, JournalStore } from '../storage/store.ts'

/** Calls that only read: running one again changes nothing. */
const READS: ReadonlySet<string> = new Set(['kv.get', 'kv.list', 'fs.readFile', 'fs.readdir', 'fs.stat'])
/** Request methods that are safe to send again (RFC 9110: safe methods). */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD'])

/** Where one call stands in its execution's journal. */
export interface JournalStep {
  readonly seq: number
  readonly call: string
  readonly fingerprint: string
  /** Whether running it again is harmless: reads, GET/HEAD, tools declared `replay: safe`. */
  readonly replaySafe: boolean
  /**
   * What the journal knew of this place before the call: its entry from the run that was interrupted,
   * or undefined (a new call).
   */
  readonly before: JournalEntry | undefined
}

/**
 * One execution's binding calls in the journal. Each call takes the next place (`seq`) in the
 * order the guest makes them, and is recognised by a fingerprint of the call and its arguments (its
 * secret placeholders, which are fresh on every run, counted by name). When the execution is resumed
 * after a crash, `replay` holds what the interrupted run journaled: the same call at the same place
 * gets its journaled reply instead of running again. A call that differs from the journaled one at
 * its place means the code took another path; from there on the journal cannot vouch for anything,
 * so that call and every later one is refused (`diverged`).
 */
export class CallJournal {
  readonly scope: JournalScope
  readonly store: JournalStore
  readonly #replay: ReadonlyMap<number, JournalEntry>
  readonly #tools: AgentDeclaration['tools']
  #diverged: { seq: number; call: string } | null = null
  /**
   * Shared by the client's execution and its tools' executions: closed when the client's execution
   * has ended, after which nothing is journaled (a call the guest never awaited, a tool still
   * winding down), so that no entry outlives the journal's drop.
   */
  readonly lifetime: { open: boolean }

  constructor(options: {
    store: JournalStore
    scope: JournalScope
    /** The interrupted run's entries (resuming), or an empty map (a first run). */
    replay: ReadonlyMap<number, JournalEntry>
    tools: AgentDeclaration['tools']
    /** The caller's, for a tool's execution. */
    lifetime?: { open: boolean } | undefined
  }) {
    this.store = options.store
    this.scope = options.scope
    this.#replay = options.replay
    this.#tools = options.tools
    this.lifetime = options.lifetime ?? { open: true }
  }

  /** Whether entries are still written (the client's execution has not ended). */
  get open(): boolean {
    return this.lifetime.open
  }

  /** Ends journaling for the client's execution and every tool execution under it. */
  close(): void {
    this.lifetime.open = false
  }

  /** Whether this run replays an interrupted one. */
  get resuming(): boolean {
    return this.#replay.size > 0
  }

  /** The first call that differed from the interrupted run's, or null. */
  get diverged(): { seq: number; call: string } | null {
    return this.#diverged
  }

  /** Places a call at `seq`. `stable` writes its arguments as they read on every run. */
  step(seq: number, call: BindingCall, stable: (text: string) => string): JournalStep {
    const name = `${call.kind}.${call.op}`
    const fingerprint = createHash('sha256')
      .update(stable(JSON.stringify([call.kind, call.op, call.args])))
      .digest('base64url')
    return {
      seq,
      call: name,
      fingerprint,
      replaySafe: this.#replaySafe(call, name),
      before: this.#replay.get(seq),
    }
  }

  /** Marks the journal as left behind at `step`: no later call is replayed or run. */
  diverge(step: JournalStep): void {
    this.#diverged ??= { seq: step.seq, call: step.call }
  }

  #replaySafe(call: BindingCall, name: string): boolean {
    if (READS.has(name)) return true
    if (name === 'fetch.request') {
      const request = call.args[0] as { method?: JsonValue } | null | undefined
      return typeof request?.method === 'string' && SAFE_METHODS.has(request.method.toUpperCase())
    }
    if (name === 'tools.call') {
      const tool = this.#tools?.find((candidate) => candidate.name === call.args[0])
      return tool?.replay === 'safe'
    }
    return false
  }
}
