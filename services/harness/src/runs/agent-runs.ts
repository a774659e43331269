import {
  CordonError,
  ErrorCode,
  type ExecutionRecord,
  type JsonValue,
  LANGUAGES,
  type Language,
  RunErrorCode,
  type RunRecord,
  type RunStatus,
  type RunStep,
  type RunToolCall,
  type RunToolDecision,
} from '@cordon/contracts'
import { decideRunTool, RUN_BUDGET_DEFAULTS, RUN_TOOLS } from '@cordon/policy'
import type { LanguageModel, ModelMessage } from 'ai'
import { type RunnableAgent, sha256Hex } from '../executions.ts'
import { newId } from '../ids.ts'
import type { AuditEntry, JournaledStep, Store } from '../storage/store.ts'
import type { ModelCatalog } from './model-catalog.ts'
import { modelStep } from './model-step.ts'
import { RunEventLog } from './run-events.ts'
import {
  activatedIn,
  batchedText,
  boundedOutput,
  type CallOutcome,
  cutAnswer,
  estimateTokens,
  executionOutput,
  MAX_SKILL_OUTPUT_CHARS,
  MAX_TOOL_OUTPUT_CHARS,
  MAY_HAVE_RUN,
  NOT_RUN,
  nextSeq,
  stoppedCalls,
  toDecision,
  unanswered,
  usageOf,
  userMessage,
} from './run-steps.ts'
import { runTools, skillOutput, systemPrompt } from './run-tools.ts'

/** What run and conversation ids look like (`newId`): anything else names none. */
export const RUN_ID = /^run_[A-Za-z0-9_-]{1,64}$/
export const CONVERSATION_ID = /^conv_[A-Za-z0-9_-]{1,64}$/
/** Longest user message of a run, in characters. */
export const MAX_RUN_MESSAGE_CHARS = 64 * 1024
/** Runs one tenant may have running at once in this service. */
export const MAX_RUNNING_RUNS = 32
/** Runs one conversation may hold (its history goes to the model on every call). */
export const MAX_CONVERSATION_RUNS = 200
/** Characters of history (JSON) a conversation may send to the model; a longer one takes no more runs. */
export const MAX_CONVERSATION_CHARS = 4 * 1024 * 1024
/** How long a stopping service waits for runs' tool calls in flight to end before it goes on. */
const STOP_GRACE_MS = 10_000
/** Times a run is resumed after restarts before it is given up. */
const MAX_RESUME_ATTEMPTS = 3
/** Ended runs whose event logs are kept for clients to reattach, and for how long. */
const KEEP_ENDED = 64
const KEEP_ENDED_MS = 5 * 60_000

/** How a client starts a run: the message, and the conversation it continues (else a new one). */
export interface StartRunRequest {
  message: string
  conversation?: string | undefined
}

/** What runs need of the harness: agents as they are now, and executions of their code and tools. */
export interface RunHost {
  store: Store
  models: ModelCatalog
  runnable(tenant: string, agent: string): RunnableAgent
  execute(
    tenant: string,
    agent: string,
    request: { language: Language; code: string; input: JsonValue },
    options: { idempotencyKey: string; signal: AbortSignal },
  ): Promise<ExecutionRecord>
  invokeTool(
    tenant: string,
    agent: string,
    tool: string,
    input: JsonValue,
    options: { idempotencyKey: string; signal: AbortSignal },
  ): Promise<ExecutionRecord>
}

/** Stored with a running run: what resuming it checks. */
interface RunResume {
  incarnation: string
  /** SHA-256 of the declaration's source as stored when the run started: it resumes only under the same. */
  agent?: string
}

/** A run being driven in this process. */
interface Drive {
  tenant: string
  runnable: RunnableAgent
  model: LanguageModel
  record: RunRecord
  /** The conversation so far, this run's steps included. */
  messages: ModelMessage[]
  activeSkills: string[]
  log: RunEventLog
  cancel: AbortController
  /** Aborted when the service stops: the run is left running in the store, to resume at the next start. */
  stop: AbortController
  /** Cancel or the wall-time budget: what ends tool executions. */
  signal: AbortSignal
  deadline: number
  /** Settles when the run's loop has ended (or left the run for the next start). */
  done: Promise<RunRecord>
  /** The final record, once stored. */
  ended?: RunRecord
}

/**
 * The agent loop, durable: model call, tool calls through the policy, results back to the model,
 * until the model answers without calling a tool or the run's budget (steps, tokens, wall time, from
 * the declaration) runs out. Every completed model call and tool call is a journaled step, on disk
 * before the next one starts: a run resumed after a crash rebuilds its conversation from the journal
 * and never calls the model again for a completed step; a tool call it had begun runs again under
 * the same idempotency key, which answers the execution's record (or waits for its own resumption)
 * instead of running it twice.
 */
export class AgentRuns {
  readonly #host: RunHost
  readonly #running = new Map<string, Drive>()
  readonly #busyConversations = new Set<string>()
  readonly #logs = new Map<string, RunEventLog>()
  readonly #ended: { key: string; at: number }[] = []
  /** Set by `stopAll`: no run starts or resumes any more. */
  #stopping = false

  constructor(host: RunHost) {
    this.#host = host
  }

  /**
   * Starts a run and answers its final record (`onStart` hears its id once it is recorded). Refused
   * before anything runs: an unknown agent or conversation (404), an agent without a usable model
   * (422), a conversation with a run still running (409), too many runs (429).
   */
  async start(
    tenant: string,
    agentName: string,
    request: StartRunRequest,
    onStart?: (record: RunRecord) => void,
  ): Promise<RunRecord> {
    if (this.#stopping) throw new CordonError(ErrorCode.SHUTTING_DOWN, 'the service is stopping')
    const runnable = this.#host.runnable(tenant, agentName)
    const model = this.#openModel(tenant, runnable)
    if (request.message.length > MAX_RUN_MESSAGE_CHARS) {
      throw new CordonError(
        ErrorCode.PAYLOAD_TOO_LARGE,
        `message exceeds ${MAX_RUN_MESSAGE_CHARS} characters`,
      )
    }
    const conversation = request.conversation ?? newId('conv')
    const busyKey = `${tenant}\u0000${conversation}`
    const history =
      request.conversation === undefined ? [] : this.#conversation(tenant, agentName, conversation)
    if (this.#busyConversations.has(busyKey) || history.some((run) => run.status === 'running')) {
      throw new CordonError(
        ErrorCode.CONVERSATION_BUSY,
        `conversation "${conversation}" has a run still running; wait for it to end`,
      )
    }
    if (history.length >= MAX_CONVERSATION_RUNS) {
      throw new CordonError(
        ErrorCode.CONVERSATION_BUSY,
        `conversation "${conversation}" has ${MAX_CONVERSATION_RUNS} runs, the most one may hold; start a new one`,
      )
    }
    if ([...this.#running.values()].filter((drive) => drive.tenant === tenant).length >= MAX_RUNNING_RUNS) {
      throw new CordonError(
        ErrorCode.QUEUE_FULL,
        `${MAX_RUNNING_RUNS} runs are running already; wait for one to end`,
      )
    }
    const { agent } = runnable
    const record: RunRecord = {
      id: newId('run'),
      agent: agentName,
      conversation,
      model: agent.model ?? '',
      status: 'running',
      message: request.message,
      output: null,
      error: null,
      budget: { ...RUN_BUDGET_DEFAULTS, ...agent.budget },
      usage: { steps: 0, toolCalls: 0, inputTokens: 0, outputTokens: 0, wallMs: 0 },
      steps: [],
      skills: [],
      createdAt: new Date().toISOString(),
      finishedAt: null,
      resumed: 0,
    }
    const earlier = this.#historySteps(tenant, history)
    const messages = [...earlier.messages, userMessage(record.message)]
    const size = JSON.stringify(messages).length
    if (size > MAX_CONVERSATION_CHARS) {
      throw new CordonError(
        ErrorCode.PAYLOAD_TOO_LARGE,
        `conversation "${conversation}" holds ${size} characters, more than ${MAX_CONVERSATION_CHARS}; start a new one`,
      )
    }
    const resume: RunResume = {
      incarnation: runnable.incarnation,
      agent: this.#declarationHash(tenant, agentName),
    }
    this.#busyConversations.add(busyKey)
    try {
      this.#host.store.runs.begin(tenant, record, JSON.stringify(resume))
    } catch (error) {
      this.#busyConversations.delete(busyKey)
      throw error
    }
    this.#audit(tenant, record, 'run.start', 'info', 'STARTED', { model: record.model, conversation })
    const drive = this.#open(tenant, runnable, model, record, messages, 0, earlier.activated)
    onStart?.(structuredClone(record))
    return this.#run(drive, [])
  }

  /** A run with its steps (404 for an unknown id, or another tenant's). */
  get(tenant: string, id: string): RunRecord {
    const running = this.#running.get(`${tenant}\u0000${id}`)
    if (running !== undefined) return structuredClone(running.record)
    const record = this.#host.store.runs.get(tenant, id)
    if (record === null) throw new CordonError(ErrorCode.RUN_NOT_FOUND, `no run with id "${id.slice(0, 64)}"`)
    return record
  }

  /** A run's live event log while it runs here (and a while after), else undefined. */
  events(tenant: string, id: string): RunEventLog | undefined {
    return this.#logs.get(`${tenant}\u0000${id}`)
  }

  /** Cancels a run running here: it ends as `cancelled`; its final record is the answer. */
  async cancel(tenant: string, id: string): Promise<RunRecord> {
    const drive = this.#running.get(`${tenant}\u0000${id}`)
    if (drive === undefined) {
      const record = this.get(tenant, id)
      throw new CordonError(ErrorCode.RUN_NOT_RUNNING, `run "${record.id}" is not running (${record.status})`)
    }
    const ended = new Promise<RunRecord>((resolve) => {
      drive.log.attach(drive.log.lastId, (event) => {
        if (event.event === 'end') resolve(event.data)
      })
    })
    drive.cancel.abort()
    return ended
  }

  /**
   * Resumes the runs a previous process left running, in the background, from their journals; one
   * that cannot be resumed (its agent deleted or re-created, its model gone, resumed too often) ends
   * as failed / INTERRUPTED. Call after executions were resumed (a run's tool call may wait for one).
   */
  resumeInterrupted(): { resumed: number; abandoned: number; idle: Promise<void> } {
    let abandoned = 0
    const resuming: Promise<unknown>[] = []
    if (this.#stopping) return { resumed: 0, abandoned: 0, idle: Promise.resolve() }
    for (const { tenant, record, resume, attempts } of this.#host.store.runs.interrupted()) {
      // Its final answer journaled: it completed then, whatever became of its agent since.
      const journal = this.#host.store.runs.steps(tenant, record.id)
      const last = journal.at(-1)?.step
      if (last?.kind === 'model' && last.toolCalls.length === 0 && last.finishReason !== 'length') {
        this.#completeFromJournal(
          tenant,
          record,
          journal.map((entry) => entry.step),
          last.text,
        )
        continue
      }
      try {
        if (attempts >= MAX_RESUME_ATTEMPTS) {
          throw new Error(`it was interrupted ${attempts + 1} times`)
        }
        const runnable = this.#host.runnable(tenant, record.agent)
        const stored = JSON.parse(resume ?? 'null') as RunResume | null
        if (stored === null || stored.incarnation !== runnable.incarnation) {
          throw new Error(`the agent "${record.agent}" was deleted and created again`)
        }
        if (stored.agent !== undefined && stored.agent !== this.#declarationHash(tenant, record.agent)) {
          // Its tools may have changed: a call the run had begun must not run again as another one.
          throw new Error(`the agent "${record.agent}" was changed (stored again) since the run started`)
        }
        const model = this.#openModel(tenant, runnable)
        this.#host.store.runs.countAttempt(tenant, record.id)
        resuming.push(this.#resume(tenant, runnable, model, record, journal, attempts + 1))
      } catch (error) {
        abandoned++
        const message = error instanceof Error ? error.message : String(error)
        this.#abandon(
          tenant,
          record,
          `the service restarted while this run was running; it is not resumed: ${message}`,
        )
      }
    }
    return { resumed: resuming.length, abandoned, idle: Promise.allSettled(resuming).then(() => {}) }
  }

  /** Whether any run is running here (for a graceful stop). */
  get running(): number {
    return this.#running.size
  }

  /**
   * Stops every run running here (the service is stopping): model calls in flight are dropped, tool
   * calls in flight may end (for up to `graceMs`), and each run stays `running` in the store, to be
   * resumed at the next start.
   */
  async stopAll(graceMs = STOP_GRACE_MS): Promise<void> {
    this.#stopping = true
    const drives = [...this.#running.values()]
    for (const drive of drives) drive.stop.abort()
    let timer: ReturnType<typeof setTimeout> | undefined
    await Promise.race([
      Promise.allSettled(drives.map((drive) => drive.done)),
      new Promise((resolve) => {
        timer = setTimeout(resolve, graceMs)
      }),
    ])
    clearTimeout(timer)
  }

  #resume(
    tenant: string,
    runnable: RunnableAgent,
    model: LanguageModel,
    stored: RunRecord,
    journal: readonly JournaledStep[],
    attempt: number,
  ): Promise<RunRecord> {
    const steps = journal.map((entry) => entry.step)
    // The journal is the truth of how far the run got; the stored record may lag a step behind.
    const record: RunRecord = { ...stored, steps, usage: usageOf(stored.usage, steps), resumed: attempt }
    const history = this.#conversation(tenant, record.agent, record.conversation).filter(
      (run) => run.id !== record.id && run.createdAt <= record.createdAt,
    )
    const earlier = this.#historySteps(tenant, history)
    const messages = [
      ...earlier.messages,
      userMessage(record.message),
      ...journal.flatMap((entry) => JSON.parse(entry.messages) as ModelMessage[]),
    ]
    record.skills = activatedIn(steps)
    this.#busyConversations.add(`${tenant}\u0000${record.conversation}`)
    this.#audit(tenant, record, 'run.resume', 'info', 'RESUMED', { attempt, steps: journal.length })
    const drive = this.#open(tenant, runnable, model, record, messages, attempt, earlier.activated)
    return this.#run(drive, unanswered(record.steps))
  }

  #open(
    tenant: string,
    runnable: RunnableAgent,
    model: LanguageModel,
    record: RunRecord,
    messages: ModelMessage[],
    attempt: number,
    inherited: readonly string[],
  ): Drive {
    const deadline = Date.parse(record.createdAt) + record.budget.wallMs
    const cancel = new AbortController()
    const stop = new AbortController()
    const signal = AbortSignal.any([cancel.signal, AbortSignal.timeout(Math.max(0, deadline - Date.now()))])
    const log = new RunEventLog(attempt)
    const key = `${tenant}\u0000${record.id}`
    this.#logs.set(key, log)
    log.push({
      event: 'started',
      data: {
        id: record.id,
        agent: record.agent,
        conversation: record.conversation,
        ...(attempt > 0 ? { resumed: attempt } : {}),
      },
    })
    const drive: Drive = {
      tenant,
      runnable,
      model,
      record,
      messages,
      activeSkills: [...new Set([...inherited, ...record.skills])],
      log,
      cancel,
      stop,
      signal,
      deadline,
      done: Promise.resolve(record),
    }
    this.#running.set(key, drive)
    return drive
  }

  /** Drives a run to its end, remembering the loop's promise (for a graceful stop). */
  #run(drive: Drive, pending: RunToolCall[]): Promise<RunRecord> {
    drive.done = this.#drive(drive, pending)
    return drive.done
  }

  async #drive(drive: Drive, pending: RunToolCall[]): Promise<RunRecord> {
    const { record } = drive
    try {
      const last = record.steps.at(-1)
      if (pending.length === 0 && last?.kind === 'model' && last.toolCalls.length === 0) {
        // Resumed after its final answer was journaled (one cut at the output cap: see below).
        if (last.finishReason !== 'length') return this.#finish(drive, 'completed', null, last.text)
        return this.#finish(drive, 'budget_exceeded', cutAnswer(record.budget.maxOutputTokens), last.text)
      }
      await this.#runCalls(drive, pending, true)
      for (;;) {
        if (drive.stop.signal.aborted) throw new StopSignal()
        const stop = this.#stopReason(drive)
        if (stop !== null) return this.#finish(drive, stop.status, stop.error)
        if (record.usage.steps >= record.budget.steps) {
          return this.#finish(drive, 'budget_exceeded', {
            code: RunErrorCode.STEP_BUDGET,
            message: `the run made ${record.usage.steps} model calls, its budget, and the model asked for more`,
          })
        }
        const system = systemPrompt(drive.runnable.agent)
        const tools = runTools(drive.runnable.agent, drive.runnable.profile)
        const used = record.usage.inputTokens + record.usage.outputTokens
        const prompt = estimateTokens(system, drive.messages, drive.runnable.agent)
        if (used + prompt >= record.budget.tokens) {
          return this.#finish(drive, 'budget_exceeded', {
            code: RunErrorCode.TOKEN_BUDGET,
            message: `the next model call's prompt (about ${prompt} tokens) would take the run past its budget of ${record.budget.tokens} tokens (${used} used)`,
          })
        }
        const seq = nextSeq(drive.record.steps)
        const text = batchedText((delta) => drive.log.push({ event: 'text', data: { step: seq, delta } }))
        const step = await modelStep({
          model: drive.model,
          system,
          messages: drive.messages,
          tools,
          maxOutputTokens: Math.max(
            1,
            Math.min(record.budget.maxOutputTokens, record.budget.tokens - used - prompt),
          ),
          signal: AbortSignal.any([drive.signal, drive.stop.signal]),
          onText: text.add,
        })
        text.flush()
        if (drive.stop.signal.aborted) throw new StopSignal()
        if (!step.ok) {
          const stopped = this.#stopReason(drive)
          if (stopped !== null) return this.#finish(drive, stopped.status, stopped.error)
          return this.#finish(drive, 'failed', { code: RunErrorCode.MODEL_ERROR, message: step.message })
        }
        const journaled: RunStep = {
          seq,
          kind: 'model',
          text: step.text,
          toolCalls: step.toolCalls,
          finishReason: step.finishReason,
          usage: step.usage,
        }
        this.#journal(drive, journaled, step.messages)
        record.usage.steps++
        record.usage.inputTokens += step.usage.inputTokens
        record.usage.outputTokens += step.usage.outputTokens
        this.#audit(drive.tenant, record, 'run.model', 'info', 'CALLED', {
          step: seq,
          inputTokens: step.usage.inputTokens,
          outputTokens: step.usage.outputTokens,
          toolCalls: step.toolCalls.length,
        })
        drive.log.push({ event: 'step', data: { step: seq, usage: step.usage } })
        this.#host.store.runs.update(drive.tenant, this.#snapshot(drive))
        if (step.toolCalls.length === 0 && step.finishReason === 'length') {
          // The answer was cut at the output cap: what there is is returned, and said to be cut.
          const cap = Math.min(record.budget.maxOutputTokens, record.budget.tokens - used - prompt)
          return this.#finish(drive, 'budget_exceeded', cutAnswer(cap), step.text)
        }
        if (step.toolCalls.length === 0) return this.#finish(drive, 'completed', null, step.text)
        await this.#runCalls(drive, step.toolCalls)
      }
    } catch (error) {
      if (error instanceof StopSignal) {
        // The service is stopping: the run stays `running` in the store and resumes at the next start.
        this.#forget(drive)
        return this.#snapshot(drive)
      }
      // Stored as ended already (a later write failed, its audit say): that stands.
      if (drive.ended !== undefined) {
        drive.log.push({ event: 'end', data: drive.ended })
        this.#forget(drive)
        return drive.ended
      }
      // Failing because the service is stopping: left running, to resume at the next start.
      if (drive.stop.signal.aborted) {
        this.#forget(drive)
        return this.#snapshot(drive)
      }
      // A broken invariant (the store failed, say): the run ends here, as far as the store allows.
      try {
        return this.#finish(
          drive,
          'failed',
          { code: RunErrorCode.INTERNAL, message: 'the service failed while the run was running' },
          null,
          MAY_HAVE_RUN,
        )
      } catch {
        drive.log.push({ event: 'end', data: this.#snapshot(drive) })
        this.#forget(drive)
        throw error
      }
    }
  }

  /** Why the run must stop now, if it must: cancelled, out of time, out of tokens. */
  #stopReason(drive: Drive): { status: RunStatus; error: NonNullable<RunRecord['error']> } | null {
    const { record } = drive
    if (drive.cancel.signal.aborted) {
      return {
        status: 'cancelled',
        error: { code: RunErrorCode.CANCELLED, message: 'the run was cancelled' },
      }
    }
    if (drive.signal.aborted || Date.now() >= drive.deadline) {
      return {
        status: 'budget_exceeded',
        error: {
          code: RunErrorCode.TIME_BUDGET,
          message: `the run reached its wall-time budget of ${record.budget.wallMs} ms`,
        },
      }
    }
    const tokens = record.usage.inputTokens + record.usage.outputTokens
    if (tokens >= record.budget.tokens) {
      return {
        status: 'budget_exceeded',
        error: {
          code: RunErrorCode.TOKEN_BUDGET,
          message: `the run used ${tokens} tokens, its budget is ${record.budget.tokens}`,
        },
      }
    }
    return null
  }

  /** Decides and runs the model's tool calls one after another, each a journaled step. */
  async #runCalls(drive: Drive, calls: readonly RunToolCall[], resumed = false): Promise<void> {
    for (const call of calls) {
      const seq = nextSeq(drive.record.steps)
      const { agent, profile } = drive.runnable
      const decided: RunToolDecision =
        drive.signal.aborted || Date.now() >= drive.deadline
          ? {
              effect: 'deny',
              code: 'RUN_STOPPED',
              rule: null,
              reason: resumed ? MAY_HAVE_RUN : NOT_RUN,
            }
          : call.invalid !== undefined
            ? { effect: 'deny', code: 'INVALID_TOOL_CALL', rule: null, reason: call.invalid }
            : toDecision(decideRunTool(agent, profile, call.name, drive.activeSkills))
      drive.log.push({ event: 'tool_call', data: { step: seq, ...call, decision: decided } })
      this.#audit(
        drive.tenant,
        drive.record,
        'run.tool',
        decided.effect,
        decided.code,
        { step: seq, tool: call.name.slice(0, 64) },
        decided.rule,
      )
      const outcome: CallOutcome =
        decided.effect === 'deny'
          ? { ok: false, execution: null, output: { error: decided.reason ?? 'denied', code: decided.code } }
          : await this.#runCall(drive, call, seq)
      // Stopped meanwhile: its outcome may be the stop's doing; the next start runs it again (same key).
      if (drive.stop.signal.aborted) throw new StopSignal()
      const output = boundedOutput(outcome.output, outcome.bound ?? MAX_TOOL_OUTPUT_CHARS)
      const step: RunStep = {
        seq,
        kind: 'tool',
        call: { id: call.id, name: call.name },
        decision: decided,
        execution: outcome.execution,
        ok: outcome.ok,
        output,
        ...(outcome.activated === undefined ? {} : { activated: outcome.activated }),
      }
      const message: ModelMessage = {
        role: 'tool',
        content: [
          {
            type: 'tool-result',
            toolCallId: call.id,
            toolName: call.name,
            output: { type: 'json', value: output },
          },
        ],
      }
      this.#journal(drive, step, [message])
      drive.record.usage.toolCalls++
      drive.log.push({
        event: 'tool_result',
        data: { step: seq, id: call.id, name: call.name, ok: outcome.ok, output },
      })
    }
  }

  async #runCall(drive: Drive, call: RunToolCall, seq: number): Promise<CallOutcome> {
    const { tenant, record } = drive
    const options = { idempotencyKey: `run:${record.id}:${seq}`, signal: drive.signal }
    const declared = (drive.runnable.agent.tools ?? []).some((tool) => tool.name === call.name)
    try {
      if (declared) {
        return executionOutput(
          await this.#host.invokeTool(tenant, record.agent, call.name, call.input, options),
        )
      }
      if (call.name === RUN_TOOLS.activateSkill) {
        const input = call.input as { name?: unknown; file?: unknown } | null
        const skill = (drive.runnable.agent.skills ?? []).find((candidate) => candidate.name === input?.name)
        if (skill === undefined) return { ok: false, execution: null, output: { error: 'no such skill' } }
        const file = typeof input?.file === 'string' ? input.file : undefined
        const answer = skillOutput(skill, file)
        const activated = answer.ok && file === undefined
        if (activated && !drive.activeSkills.includes(skill.name)) drive.activeSkills.push(skill.name)
        if (activated && !record.skills.includes(skill.name)) record.skills.push(skill.name)
        return {
          ok: answer.ok,
          execution: null,
          output: answer.value as JsonValue,
          bound: MAX_SKILL_OUTPUT_CHARS,
          ...(activated ? { activated: skill.name } : {}),
        }
      }
      if (call.name === RUN_TOOLS.executeCode) {
        const input = call.input as { language?: unknown; code?: unknown; input?: JsonValue } | null
        const language = input?.language
        if (
          typeof language !== 'string' ||
          !LANGUAGES.includes(language as Language) ||
          typeof input?.code !== 'string'
        ) {
          return {
            ok: false,
            execution: null,
            output: {
              error: `execute_code needs { language: one of ${LANGUAGES.join(', ')}, code: string }`,
            },
          }
        }
        const executed = await this.#host.execute(
          tenant,
          record.agent,
          { language: language as Language, code: input.code, input: input.input ?? null },
          options,
        )
        return executionOutput(executed)
      }
      // decideRunTool allows nothing else.
      return { ok: false, execution: null, output: { error: `no tool "${call.name.slice(0, 64)}"` } }
    } catch (error) {
      if (error instanceof CordonError) {
        return { ok: false, execution: null, output: { error: error.message, code: error.code } }
      }
      throw error
    }
  }

  #journal(drive: Drive, step: RunStep, messages: ModelMessage[]): void {
    this.#host.store.runs.step(drive.tenant, drive.record.id, step, JSON.stringify(messages))
    drive.record.steps.push(step)
    drive.messages.push(...messages)
  }

  #finish(
    drive: Drive,
    status: RunStatus,
    error: RunRecord['error'],
    output: string | null = null,
    why = NOT_RUN,
  ): RunRecord {
    // Calls the model made that will not run are answered, so that the conversation stays whole.
    for (const { step, messages } of stoppedCalls(drive.record.steps, why)) {
      this.#journal(drive, step, messages)
    }
    const { record } = drive
    record.status = status
    record.error = error
    record.output = output
    record.finishedAt = new Date().toISOString()
    const final = this.#snapshot(drive)
    this.#host.store.runs.update(drive.tenant, final)
    drive.ended = final
    this.#audit(
      drive.tenant,
      record,
      'run.end',
      status === 'completed' ? 'info' : 'error',
      error?.code ?? 'COMPLETED',
      {
        status,
        steps: record.usage.steps,
        toolCalls: record.usage.toolCalls,
        inputTokens: record.usage.inputTokens,
        outputTokens: record.usage.outputTokens,
      },
    )
    if (output !== null) drive.log.push({ event: 'message', data: { text: output } })
    drive.log.push({ event: 'end', data: final })
    this.#forget(drive)
    return final
  }

  #snapshot(drive: Drive): RunRecord {
    const { record } = drive
    record.usage.wallMs = Math.max(0, Date.now() - Date.parse(record.createdAt))
    return structuredClone(record)
  }

  #forget(drive: Drive): void {
    const key = `${drive.tenant}\u0000${drive.record.id}`
    this.#running.delete(key)
    this.#busyConversations.delete(`${drive.tenant}\u0000${drive.record.conversation}`)
    // A stream nobody watched is not kept after its end: its events are rebuilt from the record.
    if (!drive.log.watched) {
      this.#logs.delete(key)
      return
    }
    const now = Date.now()
    this.#ended.push({ key, at: now })
    while (
      this.#ended.length > KEEP_ENDED ||
      (this.#ended.length > 0 && now - (this.#ended[0]?.at ?? now) > KEEP_ENDED_MS)
    ) {
      const old = this.#ended.shift()
      if (old !== undefined && !this.#running.has(old.key)) this.#logs.delete(old.key)
    }
  }

  /** SHA-256 of an agent's stored source: what the client sent, not what this release parsed it into. */
  #declarationHash(tenant: string, agent: string): string {
    return sha256Hex(this.#host.store.getAgent(tenant, agent)?.source ?? '')
  }

  /** Ends a run left running whose final answer is in its journal: completed, with that answer. */
  #completeFromJournal(tenant: string, stored: RunRecord, steps: RunStep[], output: string): void {
    const record: RunRecord = {
      ...stored,
      steps,
      status: 'completed',
      output,
      error: null,
      skills: activatedIn(steps),
      usage: usageOf(stored.usage, steps),
      finishedAt: new Date().toISOString(),
    }
    this.#host.store.runs.update(tenant, record)
    this.#audit(tenant, record, 'run.end', 'info', 'COMPLETED', { status: 'completed', resumed: true })
  }

  #abandon(tenant: string, stored: RunRecord, reason: string): void {
    // Its open tool calls are answered, so that its conversation can go on.
    const journal = this.#host.store.runs.steps(tenant, stored.id)
    const steps = journal.map((entry) => entry.step)
    for (const { step, messages } of stoppedCalls(steps, MAY_HAVE_RUN)) {
      this.#host.store.runs.step(tenant, stored.id, step, JSON.stringify(messages))
      steps.push(step)
    }
    const record: RunRecord = {
      ...stored,
      status: 'failed',
      error: { code: RunErrorCode.INTERRUPTED, message: reason.slice(0, 300) },
      finishedAt: new Date().toISOString(),
    }
    this.#host.store.runs.update(tenant, record)
    this.#audit(tenant, record, 'run.resume', 'error', RunErrorCode.INTERRUPTED, {
      reason: reason.slice(0, 300),
    })
  }

  /** The model an agent declares, opened for a tenant; 422 MODEL_UNAVAILABLE when there is none. */
  #openModel(tenant: string, runnable: RunnableAgent): LanguageModel {
    const { agent } = runnable
    if (agent.model === undefined) {
      throw new CordonError(ErrorCode.MODEL_UNAVAILABLE, `agent "${agent.name}" declares no model`)
    }
    const opened = this.#host.models.open(agent.model, {
      tenant,
      secret: (name) => this.#host.store.secrets.value(tenant, name),
      audit: (entry) =>
        this.#host.store.audit.append(tenant, {
          ...entry,
          kind: 'model.request',
          agent: agent.name,
          execution: null,
        }),
    })
    if (!opened.ok) throw new CordonError(ErrorCode.MODEL_UNAVAILABLE, opened.problem)
    return opened.model
  }

  /** The runs of a conversation of this agent; 404 when it has none. */
  #conversation(tenant: string, agent: string, conversation: string): RunRecord[] {
    const runs = CONVERSATION_ID.test(conversation)
      ? this.#host.store.runs.conversation(tenant, conversation)
      : []
    if (runs.length === 0 || runs[0]?.agent !== agent) {
      throw new CordonError(
        ErrorCode.CONVERSATION_NOT_FOUND,
        `agent "${agent}" has no conversation "${conversation.slice(0, 80)}"`,
      )
    }
    return runs
  }

  /**
   * What earlier runs of a conversation hand the next one: each one's user message and journaled
   * messages, and the skills they activated (their `allowed-tools` hold on in the conversation).
   */
  #historySteps(
    tenant: string,
    runs: readonly RunRecord[],
  ): { messages: ModelMessage[]; activated: string[] } {
    const messages: ModelMessage[] = []
    const steps: RunStep[] = []
    for (const run of runs) {
      messages.push(userMessage(run.message))
      for (const entry of this.#host.store.runs.steps(tenant, run.id)) {
        messages.push(...(JSON.parse(entry.messages) as ModelMessage[]))
        steps.push(entry.step)
      }
    }
    return { messages, activated: activatedIn(steps) }
  }

  #audit(
    tenant: string,
    record: RunRecord,
    kind: string,
    decision: AuditEntry['decision'],
    code: string,
    detail: AuditEntry['detail'],
    rule: string | null = null,
  ): void {
    this.#host.store.audit.append(tenant, {
      kind,
      agent: record.agent,
      execution: null,
      decision,
      code,
      rule,
      detail: { run: record.id, ...detail },
    })
  }
}

/** Unwinds a run the service's stop interrupted (it resumes at the next start). */
class StopSignal extends Error {}
