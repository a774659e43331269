import type { EngineName, ExecutionRecord, JsonValue, Language, RunOutcome } from '@cordon/contracts'
import { MAX_REPLY_BYTES_PER_RUN, type RunJob } from '@cordon/executor/portable'
import { decideTool, type ResolvedProfile } from '@cordon/policy'
import { agentSpace } from '../files.ts'
import { newExecutionId } from '../ids.ts'
import type { JournalEntry, Store } from '../storage/store.ts'
import type { ToolScope } from './binding-context.ts'
import { CallJournal } from './call-journal.ts'
import { type BindingHandlers, ExecutionBindings, type ExecutionContext } from './execution-bindings.ts'
import { SecretBroker } from './secrets.ts'

/** One execution, ready to run: its record (not yet started), the job, and the host side of its bindings. */
export interface ExecutionPlan {
  readonly record: ExecutionRecord
  readonly job: RunJob
  readonly bindings: ExecutionBindings
  readonly context: ExecutionContext
}

export interface PlanRequest {
  tenant: string
  agent: string
  /** The agent's storage namespace (see `BindingContext.namespace`). */
  namespace: string
  profile: ResolvedProfile
  engine: EngineName
  language: Language
  code: string
  input: JsonValue
  /** Container engine: input files for `/workspace` (relative paths, base64 content). */
  files?: { path: string; content: string }[]
  tools: ToolScope
  store: Store
  handlers: BindingHandlers
  /** Values `env:` secrets may take. */
  env: Readonly<Record<string, string>>
  /** The execution's id when it has one already (resumed, or a tool's: `<caller>.<seq>`); else a new one. */
  id?: string | undefined
  /** When it was first started (a resumed execution keeps its own). */
  createdAt?: string | undefined
  /**
   * Journal its binding calls under the client's execution `root`; `replay` holds what an interrupted
   * run journaled (empty for a first run). Without it, nothing is journaled.
   */
  journal?:
    | { root: string; replay: ReadonlyMap<number, JournalEntry>; lifetime?: { open: boolean } }
    | undefined
}

/**
 * Plans an execution the same way for a client's request and for a tool a guest called: a fresh id,
 * a secret broker with fresh placeholders, the filesystem space the profile's scope names, the
 * bindings with their audit, and the guest's grants (the tools the agent declares and the profile
 * allows).
 */
export function planExecution(request: PlanRequest): ExecutionPlan {
  const { tenant, agent, profile, store } = request
  const id = request.id ?? newExecutionId()
  const context: ExecutionContext = {
    tenant,
    agent,
    namespace: request.namespace,
    execution: id,
    engine: request.engine,
    profile,
    store,
    fileSpace: profile.filesystem.scope === 'agent' ? agentSpace(request.namespace) : `exec:${id}`,
    secrets: new SecretBroker(profile, {
      env: request.env,
      store: (name) => store.secrets.value(tenant, name),
    }),
    tools: request.tools,
    replyBudget: { bytes: MAX_REPLY_BYTES_PER_RUN },
    journal:
      request.journal === undefined
        ? null
        : new CallJournal({
            store: store.journal,
            scope: { tenant, root: request.journal.root, execution: id },
            replay: request.journal.replay,
            tools: request.tools.agent.tools,
            lifetime: request.journal.lifetime,
          }),
  }
  const tools = (request.tools.agent.tools ?? [])
    .map((tool) => tool.name)
    .filter((name) => decideTool(profile, name).effect === 'allow')
  return {
    context,
    record: {
      id,
      agent,
      engine: request.engine,
      language: request.language,
      status: 'ok',
      result: null,
      stdout: '',
      stderr: '',
      error: null,
      usage: { cpuMs: 0, wallMs: 0, memoryBytes: 0 },
      createdAt: request.createdAt ?? new Date().toISOString(),
      finishedAt: null,
    },
    job: {
      engine: request.engine,
      language: request.language,
      code: request.code,
      inputJSON: JSON.stringify(request.input),
      limits: { ...profile.limits },
      tenantKey: tenant,
      grants: ExecutionBindings.grants(context, tools),
      ...(request.engine === 'container'
        ? {
            workspace: {
              access: profile.filesystem.access,
              quotaBytes: profile.filesystem.quotaBytes,
              files: request.files ?? [],
            },
          }
        : {}),
    },
    bindings: new ExecutionBindings({
      context,
      handlers: request.handlers,
      audit: (entry) => store.audit.append(tenant, entry),
    }),
  }
}

/**
 * The final record of a planned execution: the outcome with every secret the execution used redacted
 * (stdout, stderr, result, error), its scratch filesystem dropped, and an `execution` audit record. Call it once the execution has
 * ended (its bindings' signal aborted), so no late write can bring the space back.
 */
export function finishPlan(plan: ExecutionPlan, outcome: RunOutcome): ExecutionRecord {
  const { context } = plan
  if (context.fileSpace.startsWith('exec:')) context.store.files.dropSpace(context.tenant, context.fileSpace)
  const finished = {
    ...plan.record,
    ...context.secrets.redactOutcome(outcome),
    finishedAt: new Date().toISOString(),
  }
  context.store.audit.append(context.tenant, {
    kind: 'execution',
    agent: context.agent,
    execution: finished.id,
    decision: 'info',
    code: finished.status.toUpperCase(),
    rule: null,
    detail: {
      engine: finished.engine,
      language: finished.language,
      depth: context.tools.depth,
      error: finished.error?.code ?? null,
    },
  })
  return finished
}
