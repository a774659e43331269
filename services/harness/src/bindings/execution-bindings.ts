import type { JsonValue } from '@cordon/contracts'
import type {
  BindingCall,
  BindingFailure,
  BindingHost,
  BindingKind,
  BindingReply,
  GuestGrants,
  NestedRunner,
} from '@cordon/executor'
import type { AuditEntry } from '../storage/store.ts'
import type { BindingContext, BindingHandler, Handled, LocalBindingHandler } from './binding-context.ts'
import { refused } from './binding-context.ts'
import type { CallJournal, JournalStep } from './call-journal.ts'
import type { SecretBroker } from './secrets.ts'

/** The handlers of one deployment, by binding: those of the store's own bindings answer at once. */
export interface BindingHandlers {
  readonly fetch: BindingHandler
  readonly kv: LocalBindingHandler
  readonly fs: LocalBindingHandler
  readonly tools: BindingHandler
}

/** What every call of one execution shares (the per-call part is added by `ExecutionBindings`). */
export type ExecutionContext = Omit<BindingContext, 'signal' | 'nest' | 'seq' | 'resumed'>

/** The bindings whose effects are writes to the store itself: each commits with its journal entry. */
const LOCAL: ReadonlySet<BindingKind> = new Set(['kv', 'fs'])

/**
 * The host side of one execution's bindings: every call is dispatched to its handler, journaled,
 * timed, and audited (kind, decision, code, rule, size, duration) with every secret value of the
 * execution redacted from the record, and from the reply too, should a handler have let one through.
 * A handler that throws answers BINDING_FAILED; the guest never sees a host error.
 *
 * The journal (when the execution has one): a call that writes to the store (kv, fs) commits with
 * its entry in one transaction; a call that reaches out (fetch, tools) commits its intent before it
 * runs unless it is replay-safe, and its reply after. When the execution was resumed after a crash,
 * a call the interrupted run completed answers its journaled reply and does not run again; one it
 * began but whose outcome is unknown runs again only when replay-safe, otherwise it answers
 * INTERRUPTED (see `CallJournal`).
 */
export class ExecutionBindings implements BindingHost {
  readonly #context: ExecutionContext
  readonly #handlers: BindingHandlers
  readonly #audit: (entry: AuditEntry) => void
  /** The place of the next call in the order the guest makes them. */
  #seq = 0
  /** Where the guest's output goes as it is written, redacted, if anywhere; and what went there. */
  #output: ((stream: 'stdout' | 'stderr', text: string) => void) | null = null
  readonly #redactors: Partial<Record<'stdout' | 'stderr', ReturnType<SecretBroker['streamRedactor']>>> = {}

  constructor(options: {
    context: ExecutionContext
    handlers: BindingHandlers
    audit: (entry: AuditEntry) => void
  }) {
    this.#context = options.context
    this.#handlers = options.handlers
    this.#audit = options.audit
  }

  /** What the guest is given: the bindings its profile grants and the placeholders of its secrets. */
  static grants(context: Pick<BindingContext, 'profile' | 'secrets'>, tools: readonly string[]): GuestGrants {
    const { profile, secrets } = context
    return {
      fetch: profile.network.allow.length > 0,
      kv: profile.kv.access !== 'none',
      fs: profile.filesystem.access !== 'none',
      tools: [...tools],
      secrets: secrets.placeholders(),
    }
  }

  /** Sends the guest's output, as it is written and with every used secret redacted, to `listener`. */
  streamOutput(listener: (stream: 'stdout' | 'stderr', text: string) => void): void {
    this.#output = listener
  }

  output(stream: 'stdout' | 'stderr', text: string): void {
    if (this.#output === null) return
    this.#redactors[stream] ??= this.#context.secrets.streamRedactor()
    const redacted = this.#redactors[stream].push(text)
    if (redacted.length > 0) this.#output(stream, redacted)
  }

  /** Sends what the redactors held back; answers which streams sent anything at all. */
  endOutput(): { stdout: boolean; stderr: boolean } {
    for (const stream of ['stdout', 'stderr'] as const) {
      const rest = this.#redactors[stream]?.end() ?? ''
      if (rest.length > 0) this.#output?.(stream, rest)
    }
    return { stdout: this.#redactors.stdout !== undefined, stderr: this.#redactors.stderr !== undefined }
  }

  async call(call: BindingCall, signal: AbortSignal, nest: NestedRunner): Promise<BindingReply> {
    const started = performance.now()
    const seq = this.#seq++
    const journal = this.#context.journal
    // The container engine's tunnels carry bytes the host never sees: nothing of them can be replayed.
    const step =
      journal === null || (call.kind === 'fetch' && call.op === 'connect')
        ? null
        : journal.step(seq, call, (text) => this.#context.secrets.stable(text))
    const context: BindingContext = {
      ...this.#context,
      signal,
      nest,
      seq,
      resumed: step?.before !== undefined,
    }
    const handled =
      journal === null || step === null || !journal.open
        ? await this.#handle(call, context)
        : await this.#journaled(journal, step, call, context)
    const durationMs = Math.round((performance.now() - started) * 10) / 10
    this.#audit({
      kind: handled.kind ?? `binding.${call.kind}.${call.op}`,
      agent: this.#context.agent,
      execution: this.#context.execution,
      decision: handled.decision,
      code: handled.code,
      rule: handled.rule,
      detail: this.#context.secrets.redact({
        ...handled.detail,
        bytes: handled.bytes,
        durationMs,
      }) as AuditEntry['detail'],
    })
    return this.#guestReply(handled.reply)
  }

  async #journaled(
    journal: CallJournal,
    step: JournalStep,
    call: BindingCall,
    context: BindingContext,
  ): Promise<Handled> {
    const diverged = journal.diverged
    if (diverged !== null) {
      return interrupted(
        step,
        `this execution was resumed after a restart and its call #${diverged.seq} (${diverged.call}) was not the call made there before, so no later call runs`,
      )
    }
    const { before } = step
    if (before !== undefined) {
      if (before.fingerprint !== step.fingerprint) {
        journal.diverge(step)
        return interrupted(
          step,
          `this execution was resumed after a restart, and call #${step.seq} (${step.call}) is not the call made there before (${before.call}); an execution resumes only while it repeats its calls`,
        )
      }
      if (before.reply !== null) {
        if (call.kind === 'tools') this.#context.tools.budget.calls++
        return {
          reply: JSON.parse(before.reply) as BindingReply,
          decision: 'info',
          code: 'REPLAYED',
          rule: null,
          bytes: 0,
          detail: { seq: step.seq },
        }
      }
      if (!step.replaySafe) {
        const handled = interrupted(
          step,
          `the service restarted while ${step.call} was running, so whether it took effect is unknown; it is not replay-safe, so it was not run again`,
        )
        this.#record(journal, step, handled)
        return handled
      }
      // Replay-safe and its outcome unknown: it runs again.
    }
    const entry = entryOf(step)
    if (LOCAL.has(call.kind) && !step.replaySafe) {
      try {
        return journal.store.atomically(journal.scope, entry, () => {
          const handled = this.#handlers[call.kind as 'kv' | 'fs'](context, call.op, call.args)
          return { value: handled, reply: JSON.stringify(this.#guestReply(handled.reply)) }
        })
      } catch (error) {
        // Rolled back, entry and all: nothing happened.
        return this.#failed(call, context, error)
      }
    }
    // A tool call's intent is kept even when it is replay-safe: the tool's execution, run again,
    // then resumes its own journal (`<id>.<seq>`) instead of repeating its calls.
    if (!step.replaySafe || call.kind === 'tools') journal.store.intend(journal.scope, entry)
    const handled = await this.#handle(call, context)
    this.#record(journal, step, handled)
    return handled
  }

  /** Journals a call's reply, unless the execution has ended meanwhile (its journal is dropped). */
  #record(journal: CallJournal, step: JournalStep, handled: Handled): void {
    if (!journal.open) return
    journal.store.record(journal.scope, {
      ...entryOf(step),
      reply: JSON.stringify(this.#guestReply(handled.reply)),
    })
  }

  async #handle(call: BindingCall, context: BindingContext): Promise<Handled> {
    try {
      return await this.#handlers[call.kind](context, call.op, call.args)
    } catch (error) {
      return this.#failed(call, context, error)
    }
  }

  #failed(call: BindingCall, context: BindingContext, error: unknown): Handled {
    return context.signal.aborted
      ? refused('ABORTED', 'the execution ended', { decision: 'error' })
      : refused('BINDING_FAILED', `${call.kind}.${call.op} failed`, {
          decision: 'error',
          detail: { error: error instanceof Error ? error.name : 'unknown' },
        })
  }

  /**
   * The reply as the guest gets it. Values and errors are redacted here; bodies (bytes) by their
   * handler, which knows whether they can hold a value at all (a fetch body can; a file the guest
   * wrote cannot).
   */
  #guestReply(reply: BindingReply): BindingReply {
    const secrets = this.#context.secrets
    if (!reply.ok) {
      return {
        ok: false,
        error: secrets.redact(reply.error as unknown as JsonValue) as unknown as BindingFailure,
      }
    }
    return { ...reply, value: secrets.redact(reply.value) }
  }
}

function entryOf(step: JournalStep) {
  return { seq: step.seq, call: step.call, fingerprint: step.fingerprint }
}

function interrupted(step: JournalStep, message: string): Handled {
  return refused('INTERRUPTED', message, { decision: 'error', detail: { seq: step.seq } })
}
