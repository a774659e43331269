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
import type { BindingContext, BindingHandler, Handled } from './binding-context.ts'
import { refused } from './binding-context.ts'

/** The handlers of one deployment, by binding. */
export type BindingHandlers = Readonly<Record<BindingKind, BindingHandler>>

/**
 * The host side of one execution's bindings: every call is dispatched to its handler, timed, and
 * audited (kind, decision, code, rule, size, duration) with every secret value of the execution
 * redacted from the record, and from the reply too, should a handler have let one through. A
 * handler that throws answers BINDING_FAILED; the guest never sees a host error.
 */
export class ExecutionBindings implements BindingHost {
  readonly #context: Omit<BindingContext, 'signal' | 'nest'>
  readonly #handlers: BindingHandlers
  readonly #audit: (entry: AuditEntry) => void

  constructor(options: {
    context: Omit<BindingContext, 'signal' | 'nest'>
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

  async call(call: BindingCall, signal: AbortSignal, nest: NestedRunner): Promise<BindingReply> {
    const started = performance.now()
    const context: BindingContext = { ...this.#context, signal, nest }
    let handled: Handled
    try {
      handled = await this.#handlers[call.kind](context, call.op, call.args)
    } catch (error) {
      handled = signal.aborted
        ? refused('ABORTED', 'the execution ended', { decision: 'error' })
        : refused('BINDING_FAILED', `${call.kind}.${call.op} failed`, {
            decision: 'error',
            detail: { error: error instanceof Error ? error.name : 'unknown' },
          })
    }
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
    // Values and errors are redacted here; bodies (bytes) by their handler, which knows whether they
    // can hold a value at all (a fetch body can; a file the guest wrote cannot).
    const { reply } = handled
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
