import type { ExecutionRecord } from '@cordon/contracts'
import type { DocumentFormat } from '@cordon/policy'

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
   * Records an execution that is about to run (status `running`). The write may be grouped with
   * others into one transaction; it is committed no later than the execution's `finishExecution`.
   */
  beginExecution(tenant: string, record: ExecutionRecord): void
  /** Stores the final record of an execution (whether or not its begin was stored); resolves once committed. */
  finishExecution(tenant: string, record: ExecutionRecord): Promise<void>
  getExecution(tenant: string, id: string): ExecutionRecord | null
  /** Marks executions left `running` by a previous process as killed; returns how many. */
  abandonRunning(reason: string): number

  close(): void
}
