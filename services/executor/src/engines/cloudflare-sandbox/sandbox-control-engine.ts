import { GuestErrorCode, type Language, type RunOutcome } from '@cordon/contracts'
import { BRIDGE_LIMITS, failure, MAX_REPLY_BYTES_PER_RUN } from '../../bridge/bridge.ts'
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
  }
}

/**
 * A container for one job: its client, and how to end the container when the job is done (on
 * Cloudflare, a `Sandbox` object of its own, destroyed afterwards; against the local engine, a session
 * there, which is a sandbox of its own, and nothing more to end).
 */
export interface SandboxLease {
  control: SandboxControl
  /** Variables for the job's session (in development, the egress grant the local server routes by). */
  env?: Record<string, string>
  /** Settles once the container's egress is routed to the job (on Cloudflare, its outbound handler). */
  ready?: Promise<void>
  close(): Promise<void>
}

/**
 * Opens a container for a job. `egress` is given when the profile grants network: the container's
 * outbound requests must reach it (each is then decided by the fetch binding, secrets and all);
 * without it the container has no network.
 */
export type SandboxOpener = (job: RunJob, egress: BindingChannel | undefined) => SandboxLease

/**
 * The session variable by which a job's egress grant reaches the local sandbox server (development):
 * the server keeps it for the session's proxy, and commands never see it.
 */
export const EGRESS_TOKEN_VARIABLE = 'CORDON_EGRESS_TOKEN'

/** Variables the engine sets itself: a secret of the same name is not put into the environment. */
const RESERVED_ENV =
  /^(PATH|HOME|TMPDIR|USER|LOGNAME|LANG|PYTHON.*|CORDON_.*|HTTPS?_PROXY|NO_PROXY|ALL_PROXY)$/

/** Time the clean-up of a job's container may take before the job returns anyway. */
const CLOSE_TIMEOUT_MS = 5_000

/** Where a job's own files go in the container: code, input and result (not the guest's workspace files). */
const RUN_DIR = '/workspace/.cordon'
const COMMANDS: Partial<Record<Language, { interpreter: string; file: string }>> = {
  bash: { interpreter: '/bin/bash', file: 'main.sh' },
  python: { interpreter: 'python3', file: 'main.py' },
}

/**
 * The container engine on Cloudflare: each job runs in a container of its own (`@cloudflare/sandbox`),
 * in a session there, both ended afterwards. The contract is the Node container engine's: the
 * interpreter on the code, `input` as a JSON file named by `$CORDON_INPUT`, JSON written to
 * `$CORDON_RESULT` as the result, the workspace's input files put in `/workspace` first, exit status 0
 * for `ok`. Enforced here: the wall time (the command's `timeoutMs`, and the job ended at the deadline
 * or when cancelled), CPU time, address space, processes and open files (`ulimit` on the command), and
 * the output budget (output read back only up to it). Network exists only where the profile grants
 * it: then the container's outbound requests are routed to the job's fetch binding (see
 * `SandboxOpener`), counted against its binding calls, and its secrets are variables holding
 * placeholders.
 */
export class SandboxControlEngine implements InProcessEngine {
  readonly name = 'container' as const
  readonly languages: readonly Language[] = ['bash', 'python']
  /** A container's memory is its own (its instance type's), held to the job's by `ulimit -v`. */
  readonly maxMemoryMb = 16 * 1024
  readonly #open: SandboxOpener

  /**
   * `open` gives each job a container of its own: sessions inside one container share its files and
   * processes (they are not a security boundary), so jobs never share a container.
   */
  constructor(open: SandboxOpener) {
    this.#open = open
  }

  async run(
    job: RunJob,
    channel?: BindingChannel,
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
    // The container's requests count against the job's binding calls, and end with it.
    let ended = false
    let calls = 0
    let pending = 0
    let replyBytes = 0
    // The container's requests are the job's binding calls: counted, at most 32 in flight, their reply
    // bodies within the run's budget, and none after the job ends. The container runs guest code
    // (maybe as root), so these bounds are kept here, in the object, never in the container.
    const egress: BindingChannel | undefined =
      job.grants?.fetch === true && channel !== undefined
        ? async (call) => {
            if (ended) return failure('INVALID_STATE', 'the execution has ended')
            if (++calls > job.limits.bindingCalls) {
              return failure(
                'BINDING_LIMIT',
                `this execution may make at most ${job.limits.bindingCalls} binding calls`,
              )
            }
            if (pending >= BRIDGE_LIMITS.maxPendingCalls) {
              return failure(
                'BINDING_BUSY',
                `at most ${BRIDGE_LIMITS.maxPendingCalls} requests may wait at once`,
              )
            }
            pending++
            try {
              const reply = await channel(call)
              if (reply.ok && reply.bytes !== undefined) {
                replyBytes += Math.ceil((reply.bytes.length * 3) / 4)
                if (replyBytes > MAX_REPLY_BYTES_PER_RUN) {
                  return failure(
                    'REPLY_TOO_LARGE',
                    "the bodies of this execution's requests exceed their budget",
                  )
                }
              }
              return ended ? failure('INVALID_STATE', 'the execution has ended') : reply
            } finally {
              pending--
            }
          }
        : undefined
    const lease = this.#open(job, egress)
    const control = lease.control
    const session = `cordon-${crypto.randomUUID()}`
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
      if (lease.ready !== undefined && (await until(lease.ready)) === 'stopped') return stopped()
      // Granted secrets are variables holding their placeholders, never values: the fetch binding puts
      // the value in on requests to the secret's hosts.
      const secrets = Object.fromEntries(
        Object.entries(egress === undefined ? {} : (job.grants?.secrets ?? {})).filter(
          ([name]) => !RESERVED_ENV.test(name),
        ),
      )
      const env = { ...secrets, ...lease.env, ...ENV }
      if ((await until(control.utils.createSession({ id: session, cwd: '/workspace', env }))) === 'stopped') {
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
      // The command's limits, as the shell can set them on it: CPU seconds, address space, processes,
      // open files. Its output goes to files, read back only up to the output budget: a container
      // never sends the object more than the job may keep.
      const { limits } = job
      // SIGXCPU at the soft limit (reported as the CPU limit), SIGKILL a second later at the hard one.
      const cpuSeconds = Math.max(1, Math.ceil(limits.cpuMs / 1000))
      const line = [
        `export CORDON_INPUT=${RUN_DIR}/input.json CORDON_RESULT=${RUN_DIR}/result.json`,
        `(ulimit -t ${cpuSeconds + 1} -v ${limits.memoryMb * 1024} -u ${limits.processes} -n ${limits.openFiles} && ulimit -S -t ${cpuSeconds} && exec ${command.interpreter} ${RUN_DIR}/${command.file}) > ${RUN_DIR}/stdout 2> ${RUN_DIR}/stderr`,
      ].join('; ')
      const executed = await until(
        control.commands.execute(line, session, { timeoutMs: Math.ceil(remaining) }),
      )
      if (executed === 'stopped') return stopped()
      const head = (file: string) =>
        control.commands.execute(`head -c ${limits.outputBytes + 1} ${RUN_DIR}/${file}`, session, {
          timeoutMs: 10_000,
        })
      const kept = await until(Promise.all([head('stdout'), head('stderr'), head('result.json')]))
      if (kept === 'stopped') return stopped()
      const [stdout, stderr, resultFile] = kept
      output.append('stdout', stdout.stdout)
      output.append('stderr', stderr.stdout)
      if (output.exceeded)
        return finish({ ...classifyFailure(null, 'output', job.limits), exitCode: executed.exitCode })
      // 128 + the signal the shell saw: the CPU limit (SIGXCPU, or SIGKILL at the hard limit) or
      // another signal, reported as the Node engine reports them.
      const killedBy =
        executed.exitCode > 128 && executed.exitCode <= 128 + 64 ? executed.exitCode - 128 : null
      if (killedBy === 24 || (killedBy === 9 && performance.now() - started >= cpuSeconds * 1000)) {
        return finish({ ...classifyFailure(null, 'cpu', limits), exitCode: null })
      }
      if (killedBy !== null) {
        return finish({
          status: 'error',
          result: null,
          error: {
            code: GuestErrorCode.KILLED_BY_SIGNAL,
            message: `the command was killed by signal ${killedBy}`,
          },
          exitCode: null,
        })
      }
      const result = resultFile.exitCode === 0 ? resultFile.stdout : 'null'
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
      ended = true
      clearTimeout(timer)
      // The session and the container go with the job, whatever it left running; a container that
      // does not answer does not hold the job past its end.
      // Both at once: a session that does not end never keeps its container (or its grant) alive.
      const cleanUp = async () => {
        await Promise.allSettled([
          created ? control.utils.deleteSession(session) : Promise.resolve(),
          lease.close(),
        ])
      }
      await Promise.race([cleanUp(), new Promise((resolve) => setTimeout(resolve, CLOSE_TIMEOUT_MS))])
    }
  }

  dispose(): void {}
}

const ENV = { HOME: '/workspace', LANG: 'C.UTF-8', PYTHONUNBUFFERED: '1' }
