import type { EngineName, JsonValue, Language } from '@cordon/contracts'
import type { BindingReply, MAX_REPLY_BYTES_PER_RUN, NestedRunner } from '@cordon/executor'
import type { AgentDeclaration, Limits, ResolvedProfile } from '@cordon/policy'
import type { AuditDecision, Store } from '../storage/store.ts'
import type { CallJournal } from './call-journal.ts'
import type { SecretBroker } from './secrets.ts'

/** Why this deployment cannot run a job of this engine, language and limits, or null when it can. */
export type Unavailable = (
  engine: EngineName,
  language: Language,
  limits: Pick<Limits, 'memoryMb' | 'outputBytes'>,
) => string | null

/** What every binding handler knows about the call's execution. */
export interface BindingContext {
  readonly tenant: string
  readonly agent: string
  /**
   * The agent's storage namespace: its name and incarnation. Keys and kept files live under it, so
   * an agent deleted and stored again starts empty, even while executions of the old one still run.
   */
  readonly namespace: string
  readonly execution: string
  /** The engine the execution runs on (some operations exist for one engine only). */
  readonly engine: EngineName
  readonly profile: ResolvedProfile
  readonly store: Store
  /**
   * The virtual filesystem this execution sees: `agent:<namespace>` (kept) or `exec:<id>` (dropped
   * after).
   */
  readonly fileSpace: string
  /** The execution's secret placeholders and values. */
  readonly secrets: SecretBroker
  /**
   * Body bytes the execution may still receive (fetch bodies, file reads): the engine refuses more
   * than {@link MAX_REPLY_BYTES_PER_RUN} per execution anyway, so the host never reads, encodes and
   * sends what would be refused.
   */
  readonly replyBudget: { bytes: number }
  /** The agent's tools as this execution may call them. */
  readonly tools: ToolScope
  /** Aborts when the execution ends, however it ends. */
  readonly signal: AbortSignal
  /** Runs a tool's job beside this execution, in its worker. */
  readonly nest: NestedRunner
  /** The execution's journal, or null (not journaled: a session's, or the journal is off). */
  readonly journal: CallJournal | null
  /** This call's place in the order the execution made its calls (a tool's execution is `<id>.<seq>`). */
  readonly seq: number
  /**
   * Whether the run this one resumes had begun this call and not finished it (a replay-safe tool runs
   * again, resuming its own journal).
   */
  readonly resumed: boolean
}

/** What tool calls need: the declaration, the tools' own profiles, and the bounds of nesting. */
export interface ToolScope {
  readonly agent: AgentDeclaration
  readonly toolProfiles: Readonly<Record<string, ResolvedProfile>>
  /** 0 for an execution a client started; a tool's execution is one deeper than its caller's. */
  readonly depth: number
  /** Tool calls made so far by the whole tree under the client's execution (shared, counted up). */
  readonly budget: { calls: number }
}

/**
 * What a handler answers: the reply for the guest and what the audit log records about it. `detail`
 * must be bounded and must not hold secrets or guest payloads (sizes and names only, or excerpts
 * that were redacted).
 */
export interface Handled {
  reply: BindingReply
  /** Overrides the audit kind (`binding.<kind>.<op>`), as for `secret.exfiltration`. */
  kind?: string
  decision: AuditDecision
  code: string
  rule: string | null
  /** Bytes the guest sent (arguments and bodies). */
  bytes: number
  detail: { [key: string]: JsonValue }
}

export type BindingHandler = (
  context: BindingContext,
  op: string,
  args: JsonValue[],
) => Handled | Promise<Handled>

/** A binding on the store itself: it answers at once, so its write can share a transaction. */
export type LocalBindingHandler = (context: BindingContext, op: string, args: JsonValue[]) => Handled

/** A refused or failed call, for the guest and the audit log alike. */
export function refused(
  code: string,
  message: string,
  options: {
    reason?: string
    rule?: string | null
    decision?: AuditDecision
    kind?: string
    bytes?: number
    detail?: { [key: string]: JsonValue }
  } = {},
): Handled {
  const rule = options.rule ?? null
  return {
    reply: {
      ok: false,
      error: {
        code,
        message,
        ...(options.reason === undefined ? {} : { reason: options.reason }),
        ...(rule === null ? {} : { rule }),
      },
    },
    ...(options.kind === undefined ? {} : { kind: options.kind }),
    decision: options.decision ?? 'deny',
    code: options.reason ?? code,
    rule,
    bytes: options.bytes ?? 0,
    detail: options.detail ?? {},
  }
}

/**
 * A guest-supplied string as the audit log keeps it: at most 200 characters, well-formed, with
 * control and format characters (newlines, ANSI escapes, bidi overrides) written as `\u{…}` escapes,
 * so that no record can fake another or hide what it says.
 */
export function auditText(text: string): string {
  return text
    .slice(0, 200)
    .toWellFormed()
    .replace(/[\p{Cc}\p{Cf}\u2028\u2029\ufffd]/gu, (c) => `\\u{${c.codePointAt(0)?.toString(16)}}`)
}

/** An argument that must be a string, or null when it is not. */
export function stringArg(args: JsonValue[], index: number): string | null {
  const value = args[index]
  return typeof value === 'string' ? value : null
}
