import type { EngineName, ExecutionRecord, JsonValue } from '@cordon/contracts'
import { decideRun, decideTool } from '@cordon/policy'
import {
  auditText,
  type BindingContext,
  type BindingHandler,
  type Handled,
  refused,
  type Unavailable,
} from './binding-context.ts'
import type { BindingHandlers } from './execution-bindings.ts'
import { finishPlan, planExecution } from './execution-plan.ts'
import type { ToolInputChecker } from './tool-input.ts'

/** How deep tools may call tools (a client's execution is depth 0). */
export const MAX_TOOL_DEPTH = 3
/** Tool calls one client execution may cause, nested ones included. */
export const MAX_TOOL_CALLS = 16

export interface ToolsBindingOptions {
  /** The deployment's handlers, for the tool's own execution. */
  handlers: () => BindingHandlers
  /** Why this deployment cannot run a job of this engine, language and limits, or null. */
  unavailable: Unavailable
  /** Checks a tool's input against its JSON Schema. */
  toolInput: ToolInputChecker
  /** The `env:` values the tenant may use. */
  env: (tenant: string) => Readonly<Record<string, string>>
}

/**
 * The `tools` binding: `tools.call(name, input)` runs another tool of the same agent, when the
 * caller's profile grants it, as a nested execution: input validated against the tool's JSON Schema,
 * the tool's own profile (its `sandbox`, else the agent's) with its own limits and bindings, in the
 * caller's worker (it never waits for a free worker). Depth and the total number of tool calls under
 * one client execution are bounded. The tool's execution is recorded like any other.
 */
export function toolsBinding(options: ToolsBindingOptions): BindingHandler {
  return async (context, op, args) => {
    const [name, input = null] = args
    if (op !== 'call' || typeof name !== 'string')
      return refused('INVALID_ARGUMENT', 'tools.call(name, input)')
    const detail = { tool: auditText(name.slice(0, 64)) }
    const decision = decideTool(context.profile, name)
    if (decision.effect === 'deny') {
      return refused('TOOL_DENIED', decision.message, { reason: decision.code, rule: decision.rule, detail })
    }
    const { tools } = context
    const tool = tools.agent.tools?.find((candidate) => candidate.name === name)
    if (tool === undefined) {
      return refused('TOOL_DENIED', `the agent declares no tool "${name.slice(0, 64)}"`, {
        reason: 'TOOL_NOT_DECLARED',
        rule: decision.rule,
        detail,
      })
    }
    if (tools.depth >= MAX_TOOL_DEPTH) {
      return refused('TOOL_LIMIT', `tools may nest at most ${MAX_TOOL_DEPTH} deep`, {
        rule: decision.rule,
        detail,
      })
    }
    if (tools.budget.calls >= MAX_TOOL_CALLS) {
      return refused('TOOL_LIMIT', `one execution may cause at most ${MAX_TOOL_CALLS} tool calls`, {
        rule: decision.rule,
        detail,
      })
    }
    // Counted before anything is awaited: parallel calls cannot all pass the check above.
    tools.budget.calls++
    const problem = await options.toolInput.check(tool.input, input)
    if (problem !== null) return refused('TOOL_INPUT_INVALID', problem, { rule: decision.rule, detail })
    const profile = tools.toolProfiles[name] ?? context.profile
    const run = decideRun(profile, { language: tool.language, engine: undefined })
    if (run.effect === 'deny') {
      return refused('TOOL_DENIED', run.message, { reason: run.code, rule: run.rule, detail })
    }
    const unavailable = options.unavailable(run.engine, tool.language, profile.limits)
    if (unavailable !== null) {
      return refused('TOOL_FAILED', unavailable, { decision: 'error', rule: decision.rule, detail })
    }
    const record = await runTool(context, options, { input, profile, engine: run.engine, tool })
    const extra = { ...detail, execution: record.id, status: record.status }
    if (record.status === 'ok') {
      return {
        reply: { ok: true, value: record.result },
        decision: 'allow',
        code: 'ALLOWED',
        rule: decision.rule,
        bytes: 0,
        detail: extra,
      } satisfies Handled
    }
    const reason = record.error?.code ?? record.status
    return refused(
      'TOOL_FAILED',
      `tool "${name}" ended with ${record.status}: ${record.error?.message ?? ''}`.slice(0, 600),
      {
        reason,
        decision: 'error',
        rule: decision.rule,
        detail: extra,
      },
    )
  }
}

type Tool = NonNullable<BindingContext['tools']['agent']['tools']>[number]

async function runTool(
  context: BindingContext,
  options: ToolsBindingOptions,
  call: {
    input: JsonValue
    profile: BindingContext['profile']
    engine: EngineName
    tool: Tool
  },
): Promise<ExecutionRecord> {
  // A tool's execution is named by its call (`<caller>.<seq>`), so that a resumed caller's tool,
  // run again, finds its own journal; it journals under the client's execution.
  const id = `${context.execution}.${context.seq}`
  const { journal } = context
  const plan = planExecution({
    id,
    ...(journal === null
      ? {}
      : {
          journal: {
            root: journal.scope.root,
            replay: context.resumed ? journal.store.entries(context.tenant, id) : new Map(),
            lifetime: journal.lifetime,
          },
        }),
    tenant: context.tenant,
    agent: context.agent,
    namespace: context.namespace,
    profile: call.profile,
    engine: call.engine,
    language: call.tool.language,
    code: call.tool.code,
    input: call.input,
    tools: { ...context.tools, depth: context.tools.depth + 1 },
    store: context.store,
    handlers: options.handlers(),
    env: options.env(context.tenant),
  })
  const finished = finishPlan(plan, await context.nest(plan.job, plan.bindings))
  await context.store.finishExecution(context.tenant, finished)
  return finished
}
