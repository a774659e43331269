import type { RunRecord, RunStep } from '@cordon/contracts'
import type { SqlDatabase } from './sql.ts'
import type { InterruptedRun, JournaledStep, RunStore } from './store.ts'

interface RunRow {
  tenant: string
  record: string
  resume: string | null
  attempts: number
}

/**
 * Runs and their step journal in the `runs` and `run_steps` tables. A step is on disk when `step`
 * returns (it stands for a model call that is paid for, or a tool call that happened), as are a run's
 * begin and its end.
 */
export class SqliteRuns implements RunStore {
  readonly #db: SqlDatabase
  readonly #flush: () => void
  readonly #sql

  constructor(db: SqlDatabase, flush: () => void) {
    this.#db = db
    this.#flush = flush
    this.#sql = {
      begin: db.prepare(
        `INSERT INTO runs (id, tenant, agent, conversation, status, record, resume, created_at)
         VALUES (@id, @tenant, @agent, @conversation, 'running', @record, @resume, @createdAt)`,
      ),
      update: db.prepare(
        `UPDATE runs SET status = @status, record = @record, finished_at = @finishedAt,
           resume = CASE WHEN @status = 'running' THEN resume ELSE NULL END
         WHERE tenant = @tenant AND id = @id`,
      ),
      get: db.prepare<[string, string], { record: string }>(
        'SELECT record FROM runs WHERE tenant = ? AND id = ?',
      ),
      conversation: db.prepare<[string, string], { record: string }>(
        'SELECT record FROM runs WHERE tenant = ? AND conversation = ? ORDER BY created_at, id',
      ),
      step: db.prepare(
        `INSERT INTO run_steps (tenant, run, seq, step, messages) VALUES (@tenant, @run, @seq, @step, @messages)
         ON CONFLICT (tenant, run, seq) DO NOTHING`,
      ),
      steps: db.prepare<[string, string], { step: string; messages: string }>(
        'SELECT step, messages FROM run_steps WHERE tenant = ? AND run = ? ORDER BY seq',
      ),
      interrupted: db.prepare<[], RunRow>(
        `SELECT tenant, record, resume, attempts FROM runs WHERE status = 'running' ORDER BY created_at`,
      ),
      countAttempt: db.prepare('UPDATE runs SET attempts = attempts + 1 WHERE tenant = ? AND id = ?'),
    }
  }

  begin(tenant: string, record: RunRecord, resume: string): void {
    const { id, agent, conversation, createdAt } = record
    this.#durably(() =>
      this.#sql.begin.run({ id, tenant, agent, conversation, record: recordText(record), resume, createdAt }),
    )
  }

  update(tenant: string, record: RunRecord): void {
    const { id, status, finishedAt } = record
    this.#durably(() => this.#sql.update.run({ tenant, id, status, finishedAt, record: recordText(record) }))
  }

  get(tenant: string, id: string): RunRecord | null {
    this.#flush()
    const row = this.#sql.get.get(tenant, id)
    if (row === undefined) return null
    return { ...(JSON.parse(row.record) as RunRecord), steps: this.steps(tenant, id).map((s) => s.step) }
  }

  conversation(tenant: string, conversation: string): RunRecord[] {
    this.#flush()
    return this.#sql.conversation.all(tenant, conversation).map((row) => JSON.parse(row.record) as RunRecord)
  }

  step(tenant: string, run: string, step: RunStep, messages: string): void {
    let changes = 0
    this.#durably(() => {
      changes = this.#sql.step.run({
        tenant,
        run,
        seq: step.seq,
        step: JSON.stringify(step),
        messages,
      }).changes
    })
    // Two steps under one seq would lose one of them: a broken invariant, never ignored.
    if (changes === 0) throw new Error(`run ${run} has a step ${step.seq} journaled already`)
  }

  steps(tenant: string, run: string): JournaledStep[] {
    this.#flush()
    return this.#sql.steps.all(tenant, run).map((row) => ({
      step: JSON.parse(row.step) as RunStep,
      messages: row.messages,
    }))
  }

  interrupted(): InterruptedRun[] {
    this.#flush()
    return this.#sql.interrupted.all().map((row) => ({
      tenant: row.tenant,
      record: JSON.parse(row.record) as RunRecord,
      resume: row.resume,
      attempts: row.attempts,
    }))
  }

  countAttempt(tenant: string, id: string): void {
    this.#durably(() => this.#sql.countAttempt.run(tenant, id))
  }

  #durably(write: () => void): void {
    this.#flush()
    this.#db.durably(write)
  }
}

/** A run's record as stored: without its steps (those are rows of their own). */
function recordText(record: RunRecord): string {
  return JSON.stringify({ ...record, steps: [] })
}
