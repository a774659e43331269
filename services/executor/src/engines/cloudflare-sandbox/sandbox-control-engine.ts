import { GuestErrorCode, type Language, type RunOutcome } from '@cordon/contracts'
import type { BindingChannel, RunJob } from '../../engine.ts'
import type { InProcessEngine } from '../../in-process-runner.ts'
import { outcomeOf } from '../../outcome.ts'
import { OutputBuffer, type OutputListener } from '../../output-buffer.ts'
import { classifyFailure, classifyResult } from '../quickjs/classify.ts'

/**
 * What the container engine uses of `@cloudflare/sandbox`'s `SandboxClient` (the SDK's client of its
 * container's HTTP control protocol). Declared here by shape, so that the executor does not load the
 * SDK (it needs `cloudflare:workers`): the SDK's own client satisfies it, pointed at a container (on
 * Cloudflare, a `Sandbox` Durable Object's `containerFetch`) or at a base URL (Cordon's local engine
 * serving the same protocol, `startSandboxProtocolServer`).
 */
export interface SandboxControl {
  utils: {
    createSession(request: { id: string; env?: Record<string, string>; cwd?: string }): Promise<unknown>
    deleteSession(sessionId: string): Promise<unknown>
  }
  commands: {
    execute(
      command: string,
      sessionId: string,
      options?: { timeoutMs?: number },
    ): Promise<{ stdout: string; stderr: string; exitCode: number }>
  }
  files: {
    mkdir(path: string, sessionId: string, options?: { recursive?: boolean }): Promise<unknown>
    writeFile(
      path: string,
      content: string,
      sessionId: string,
      options?: { encoding?: string },
    ): Promise<unknown>
    readFile(
      path: string,
      sessionId: string,
      options?: { encoding?: 'utf-8' | 'base64' },
    ): Promise<{ content: string; encoding?: string }>
  }
}

/** Where a job's own files go in the container: code, input and result (not the guest's workspace files). */
const RUN_DIR = '/workspace/.cordon'
const COMMANDS: Partial<Record<Language, { interpreter: string; file: string }>> = {
  bash: { interpreter: '/bin/bash', file: 'main.sh' },
  python: { interpreter: 'python3', file: 'main.py' },
}

let sessionCounter = 0

/**
 * The container engine on Cloudflare: each job runs in a fresh session of a `@cloudflare/sandbox`
 * container, deleted afterwards. The contract is the Node container engine's: the interpreter on the
 * code, `input` as a JSON file named by `$CORDON_INPUT`, JSON written to `$CORDON_RESULT` as the
 * result, the workspace's input files put in `/workspace` first, exit status 0 for `ok`. Enforced
 * here: the wall time (the command's `timeoutMs`, and the session deleted at the deadline or when the
 * job is cancelled) and the output budget. CPU, memory and processes are the container's own (its
 * instance type on Cloudflare; cgroups in the local engine). The container has no network: egress
 * through the policy (the container's outbound handlers) is not wired yet, so a profile granting
 * `network` gets a command without it.
 */
export class SandboxControlEngine implements InProcessEngine {
  readonly name = 'container' as const
  readonly languages: readonly Language[] = ['bash', 'python']
  readonly #control: (job: RunJob) => SandboxControl

  /** `control` gives the client for a job (one container for all, or one per tenant). */
  constructor(control: SandboxControl | ((job: RunJob) => SandboxControl)) {
    this.#control = typeof control === 'function' ? control : () => control
  }

  async run(
    job: RunJob,
    _channel?: BindingChannel,
    signal?: AbortSignal,
    listener?: OutputListener,
  ): Promise<RunOutcome> {
    const started = performance.now()
    const command = COMMANDS[job.language]
    if (command === undefined) {
      return outcomeOf('error', {
        code: GuestErrorCode.WORKER_CRASHED,
        message: `the container engine does not run ${job.language}`,
      })
    }
    const control = this.#control(job)
    const session = `cordon-${Date.now().toString(36)}-${(sessionCounter++).toString(36)}`
    const deadline = new AbortController()
    const timer = setTimeout(() => deadline.abort(), job.limits.wallMs)
    const stop = AbortSignal.any([deadline.signal, ...(signal === undefined ? [] : [signal])])
    const output = new OutputBuffer(job.limits.outputBytes, listener)
    const finish = (outcome: Omit<RunOutcome, 'stdout' | 'stderr' | 'usage'>): RunOutcome => ({
      ...outcome,
      stdout: output.stdout,
      stderr: output.stderr,
      usage: { cpuMs: 0, wallMs: Math.round((performance.now() - started) * 10) / 10, memoryBytes: 0 },
    })
    /** The call, unless the job's deadline or cancellation comes first. */
    const until = <T>(call: Promise<T>): Promise<T | 'stopped'> =>
      Promise.race([
        call,
        new Promise<'stopped'>((resolve) => {
          if (stop.aborted) resolve('stopped')
          stop.addEventListener('abort', () => resolve('stopped'), { once: true })
        }),
      ])
    const stopped = () =>
      signal?.aborted === true
        ? finish(outcomeOf('killed', { code: GuestErrorCode.CANCELLED, message: 'cancelled' }))
        : finish({ ...classifyFailure(null, 'wall', job.limits), exitCode: null })
    let created = false
    try {
      if (
        (await until(control.utils.createSession({ id: session, cwd: '/workspace', env: ENV }))) === 'stopped'
      ) {
        return stopped()
      }
      created = true
      const prepare = async () => {
        await control.files.mkdir(RUN_DIR, session, { recursive: true })
        await control.files.writeFile(`${RUN_DIR}/${command.file}`, job.code, session)
        await control.files.writeFile(`${RUN_DIR}/input.json`, job.inputJSON, session)
        for (const file of job.workspace?.files ?? []) {
          const path = `/workspace/${file.path}`
          const parent = path.slice(0, path.lastIndexOf('/'))
          if (parent !== '/workspace') await control.files.mkdir(parent, session, { recursive: true })
          await control.files.writeFile(path, file.content, session, { encoding: 'base64' })
        }
      }
      if ((await until(prepare())) === 'stopped') return stopped()
      const remaining = Math.max(1, job.limits.wallMs - (performance.now() - started))
      const line = [
        `export CORDON_INPUT=${RUN_DIR}/input.json CORDON_RESULT=${RUN_DIR}/result.json`,
        `${command.interpreter} ${RUN_DIR}/${command.file}`,
      ].join('; ')
      const executed = await until(
        control.commands.execute(line, session, { timeoutMs: Math.ceil(remaining) }),
      )
      if (executed === 'stopped') return stopped()
      output.append('stdout', executed.stdout)
      output.append('stderr', executed.stderr)
      if (output.exceeded)
        return finish({ ...classifyFailure(null, 'output', job.limits), exitCode: executed.exitCode })
      const result = await until(readResult(control, session))
      if (result === 'stopped') return stopped()
      const classified = classifyResult(result, output.remaining)
      if (executed.exitCode !== 0) {
        return finish({
          status: 'error',
          result: classified.result,
          error: {
            code: GuestErrorCode.EXIT_NONZERO,
            message: `the command exited with status ${executed.exitCode}`,
          },
          exitCode: executed.exitCode,
        })
      }
      return finish({ ...classified, exitCode: 0 })
    } catch (error) {
      if (stop.aborted) return stopped()
      // The container's own message may name its internals: only that it failed goes to the guest.
      const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : ''
      return finish({
        ...outcomeOf('error', {
          code: GuestErrorCode.WORKER_CRASHED,
          message: `the sandbox container failed${code === '' ? '' : ` (${code})`}`,
        }),
        exitCode: null,
      })
    } finally {
      clearTimeout(timer)
      // The session goes with the job, whatever it left running.
      if (created) await control.utils.deleteSession(session).catch(() => {})
    }
  }

  dispose(): void {}
}

const ENV = { HOME: '/workspace', LANG: 'C.UTF-8', PYTHONUNBUFFERED: '1' }

/** The result file's text, or a JSON null when the command wrote none. */
async function readResult(control: SandboxControl, session: string): Promise<string> {
  try {
    const read = await control.files.readFile(`${RUN_DIR}/result.json`, session)
    return read.encoding === 'base64' ? Buffer.from(read.content, 'base64').toString('utf8') : read.content
  } catch {
    return 'null'
  }
}
