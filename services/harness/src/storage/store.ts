import type { ExecutionRecord, GuestErrorCode, JsonValue, RunRecord, RunStep } from '@cordon/contracts'
import type { DocumentFormat } from '@cordon/policy'
import type { FileStore } from './file-store.ts'

/** A declaration document as stored: the validated JSON and the source text the client sent. */
export interface StoredDocument {
  name: string
  /** The validated document (JSON text). */
  document: string
  /** The client's original text and its format, kept so nothing the client wrote is lost. */
  source: string
  format: DocumentFormat
  createdAt: string
  updatedAt: string
}

/**
 * Persistence for one deployment: every row belongs to a tenant, and every read is scoped by tenant,
 * so one tenant's rows are unreachable through another's calls. Implemented on better-sqlite3 for
 * Node; the Cloudflare build implements the same interface on Durable Object SQLite.
 */
export interface Store {
  putProfile(tenant: string, doc: Omit<StoredDocument, 'createdAt' | 'updatedAt'>): StoredDocument
  getProfile(tenant: string, name: string): StoredDocument | null
  listProfiles(tenant: string): StoredDocument[]

  putAgent(tenant: string, doc: Omit<StoredDocument, 'createdAt' | 'updatedAt'>): StoredDocument
  getAgent(tenant: string, name: string): StoredDocument | null
  listAgents(tenant: string): StoredDocument[]
  deleteAgent(tenant: string, name: string): boolean
  /**
   * The agent's incarnation: fixed while the agent exists, new when it is deleted and stored again,
   * so that keys and files of a deleted agent never show up in a later one of the same name.
   */
  agentIncarnation(tenant: string, name: string): string | null

  /**
   * Records an execution that is about to run (status `running`), with what resuming it after a crash
   * needs (`resume`, JSON text) when it can be resumed. The write may be grouped with others into one
   * transaction; it is committed no later than the execution's `finishExecution` or the first intent
   * its journal commits.
   */
  beginExecution(tenant: string, record: ExecutionRecord, resume?: string): void
  /** Stores the final record of an execution (whether or not its begin was stored); resolves once committed. */
  finishExecution(tenant: string, record: ExecutionRecord): Promise<void>
  getExecution(tenant: string, id: string): ExecutionRecord | null
  /** Executions left `running` by a previous process (it crashed or was stopped), oldest first. */
  interruptedExecutions(): InterruptedExecution[]
  /** Counts one more attempt at resuming an execution; committed when it returns. */
  countResumeAttempt(tenant: string, id: string): void
  /** Ends an execution left running as killed / INTERRUPTED, its journal dropped. */
  abandonExecution(tenant: string, id: string, reason: string, code?: GuestErrorCode): Promise<void>

  /**
   * Claims an idempotency key for a request: stores (key -> request fingerprint, execution id) and
   * answers null, or answers what an earlier request with the same key stored (nothing changes).
   */
  claimIdempotencyKey(
    tenant: string,
    key: string,
    fingerprint: string,
    execution: string,
  ): { fingerprint: string; execution: string } | null
  /** Frees a key whose request was refused before anything ran (the queue was full). */
  releaseIdempotencyKey(tenant: string, key: string, execution: string): void
  /**
   * Moves a key to a new execution when the one it named left no record (the process died before
   * recording it, so it never did anything); answers whether this caller got it.
   */
  reclaimIdempotencyKey(tenant: string, key: string, from: string, to: string): boolean

  readonly kv: KvStore
  readonly files: FileStore
  readonly audit: AuditStore
  readonly secrets: SecretStore
  readonly journal: JournalStore
  readonly runs: RunStore

  close(): void
}

/** A journaled step of a run and the model messages it adds to the conversation (JSON text). */
export interface JournaledStep {
  step: RunStep
  messages: string
}

/** A run a previous process left running, and what resuming it needs. */
export interface InterruptedRun {
  tenant: string
  record: RunRecord
  resume: string | null
  attempts: number
}

/**
 * Agent runs and their step journal. Writes are on disk when they return: a journaled model call is
 * never paid for twice, and a run's record always says how far it got.
 */
export interface RunStore {
  /** Records a run that is about to start (status `running`), with what resuming it needs (JSON text). */
  begin(tenant: string, record: RunRecord, resume: string): void
  /** Stores a run's record as it is now (its usage, status, and at the end its outcome). */
  update(tenant: string, record: RunRecord): void
  /** A run with its steps. */
  get(tenant: string, id: string): RunRecord | null
  /** The runs of a conversation, oldest first (without steps). */
  conversation(tenant: string, conversation: string): RunRecord[]
  /** Journals a completed step; throws when its seq is journaled already (steps never share one). */
  step(tenant: string, run: string, step: RunStep, messages: string): void
  steps(tenant: string, run: string): JournaledStep[]
  /** Runs left `running` by a previous process, oldest first. */
  interrupted(): InterruptedRun[]
  countAttempt(tenant: string, id: string): void
}

/** An execution a previous process left running, and what resuming it needs. */
export interface InterruptedExecution {
  tenant: string
  record: ExecutionRecord
  /** The request (JSON text, see `beginExecution`), or null: it cannot be resumed. */
  resume: string | null
  /** How many times resuming it was started before. */
  attempts: number
}

/** One journaled binding call of an execution, by its place in the order the guest made its calls. */
export interface JournalEntry {
  seq: number
  /** `kind.op`, as the audit log names it. */
  call: string
  /** SHA-256 of the call and its arguments (see `CallJournal`): the same call made again matches. */
  fingerprint: string
  /** The reply the guest got (JSON text), or null: the call began and its outcome is unknown. */
  reply: string | null
}

/** Where a journal entry belongs: the client's execution (`root`) and the execution that made it. */
export interface JournalScope {
  tenant: string
  root: string
  execution: string
}

/**
 * The execution journal: binding calls of running executions, each with its reply once known. A
 * root execution's entries (its tools' included) are dropped with its final record.
 */
export interface JournalStore {
  /** The journaled calls of an execution, by seq. */
  entries(tenant: string, execution: string): Map<number, JournalEntry>
  /**
   * Commits that a call is about to run, with every write queued before it; durable when it returns
   * (on disk, not only written: a power loss after the call went out must not lose it).
   */
  intend(scope: JournalScope, entry: Omit<JournalEntry, 'reply'>): void
  /** Records a call's reply; committed with the next group commit (at the latest, the end of this turn). */
  record(scope: JournalScope, entry: JournalEntry): void
  /**
   * Runs `apply` (a write to the store itself: kv, fs) and records the reply it computes in one
   * transaction, so that its outcome is never unknown: either both happened or neither did.
   */
  atomically<T>(
    scope: JournalScope,
    entry: Omit<JournalEntry, 'reply'>,
    apply: () => { value: T; reply: string },
  ): T
  /** Drops a root execution's entries; committed with its final record. */
  drop(tenant: string, root: string): void
  /** Drops every entry whose client's execution is not running (for a start); answers how many. */
  sweep(): number
}

/**
 * Each agent's key-value namespace. Values are JSON text. The namespace's size is the UTF-8 bytes of
 * its keys and values; a write that would take it past the quota is refused and changes nothing.
 */
export interface KvStore {
  get(tenant: string, agent: string, key: string): string | null
  set(
    tenant: string,
    agent: string,
    key: string,
    value: string,
    quotaBytes: number,
  ): { ok: true } | { ok: false; usedBytes: number }
  delete(tenant: string, agent: string, key: string): boolean
  /** Deletes a whole namespace (an agent that was deleted); answers how many keys it held. */
  drop(tenant: string, agent: string): number
  /** Keys starting with `prefix` and sorting after `after`, in UTF-8 byte order, at most `limit`. */
  list(tenant: string, agent: string, prefix: string, limit: number, after?: string): string[]
  usage(tenant: string, agent: string): number
}

export const AUDIT_DECISIONS = ['allow', 'deny', 'error', 'info'] as const
export type AuditDecision = (typeof AUDIT_DECISIONS)[number]

/** One audited action or decision. `detail` is bounded and never holds a secret or a guest payload. */
export interface AuditEntry {
  /** What happened: `binding.fetch`, `binding.kv.set`, `secret.exfiltration`, `execution`, ... */
  kind: string
  agent: string | null
  execution: string | null
  decision: AuditDecision
  /** The decision's code (`ALLOWED`, `PRIVATE_ADDRESS`, `QUOTA_EXCEEDED`...). */
  code: string
  /** The profile rule that decided it, when a rule did. */
  rule: string | null
  detail: { [key: string]: JsonValue }
}

export interface AuditRecord extends AuditEntry {
  /** Position in the log, increasing (shared by all tenants: a tenant's records skip numbers). */
  seq: number
  at: string
  /** The link of the tenant's record before this one ('' for the first). */
  prev?: string | null
  /** This record's link in the tenant's hash chain (see `GET /v1/audit/verify`). */
  hash?: string | null
}

export interface AuditFilter {
  agent?: string | undefined
  kind?: string | undefined
  execution?: string | undefined
  /** ISO time: records at or after it. */
  since?: string | undefined
  /** A cursor: records with a larger `seq`. */
  after?: number | undefined
  limit: number
}

/** The append-only audit log, per tenant. */
export interface AuditStore {
  append(tenant: string, entry: AuditEntry): void
  list(tenant: string, filter: AuditFilter): AuditRecord[]
  /** Checks the tenant's hash chain from its first record to its newest link. */
  verify(tenant: string): AuditVerification
}

/** What a chain check found: intact with its newest link, or the first place it breaks. */
export type AuditVerification =
  | { ok: true; records: number; head: { seq: number; hash: string } | null }
  | { ok: false; records: number; brokenAt: { seq: number; reason: string } }

export interface SecretInfo {
  name: string
  createdAt: string
  updatedAt: string
}

/** Write-only secrets of a tenant: values go in through `put` and out only to the egress binding. */
export interface SecretStore {
  put(tenant: string, name: string, value: string): SecretInfo
  value(tenant: string, name: string): string | null
  list(tenant: string): SecretInfo[]
  delete(tenant: string, name: string): boolean
}
