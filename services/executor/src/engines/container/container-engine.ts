import { constants } from 'node:os'
import { GuestErrorCode, type OutputFile, type RunOutcome } from '@cordon/contracts'
import type { Limits } from '@cordon/policy'
import type { BindingChannel, Engine, RunJob } from '../../engine.ts'
import { outcomeOf } from '../../outcome.ts'
import { classifyFailure, classifyResult, memoryLimit } from '../quickjs/classify.ts'
import {
  type CollectedFile,
  type ExecResult,
  PRIVATE_DIR,
  type Sandbox,
  SandboxHost,
  type SandboxShape,
} from './sandbox.ts'
import { SandboxPool } from './sandbox-pool.ts'

/** At most this many output files are reported per execution. */
export const MAX_OUTPUT_FILES = 64
/** `/tmp` inside a sandbox holds at most this much (and counts against `memoryMb`). */
export const SANDBOX_TMP_BYTES = 64 * 1024 * 1024
/** The largest file a command may write when the profile gives it no workspace. */
const NO_WORKSPACE_FILE_BYTES = 1024 * 1024

/** How each language runs: the interpreter and the name of the code file. */
const COMMANDS: Readonly<Record<string, { argv: string[]; file: string }>> = {
  python: { argv: ['/usr/bin/python3'], file: 'main.py' },
  bash: { argv: ['/bin/bash'], file: 'main.sh' },
}

/**
 * The container engine: each execution runs in a fresh Linux process sandbox (see `sandbox.ts`),
 * destroyed afterwards with everything in it. The command is the language's interpreter on the
 * code; `input` is a JSON file named by `$CORDON_INPUT`, and a command that writes JSON to
 * `$CORDON_RESULT` makes that its result. Output files come back from `/workspace`.
 */
export class ContainerEngine implements Engine {
  readonly name = 'container' as const
  readonly #engine: { host: SandboxHost; pool: SandboxPool } | { problem: string }
  /** Used sandboxes being destroyed. */
  readonly #retiring = new Set<Promise<void>>()

  /** `warmSandboxes`: sandboxes kept started per workspace shape (0: each started on demand). */
  constructor(options: { name?: string; warmSandboxes?: number } = {}) {
    const host = SandboxHost.open(options.name ?? String(process.pid))
    this.#engine =
      'problem' in host ? host : { host, pool: new SandboxPool(host, options.warmSandboxes ?? 0) }
  }

  /** Why this engine cannot run here, or null when it can. */
  get problem(): string | null {
    return 'problem' in this.#engine ? this.#engine.problem : null
  }

  async run(job: RunJob, channel?: BindingChannel, signal?: AbortSignal): Promise<RunOutcome> {
    const engine = this.#engine
    if ('problem' in engine) {
      return outcomeOf('killed', {
        code: GuestErrorCode.ENGINE_FAULT,
        message: `the container engine is not available here: ${engine.problem}`,
      })
    }
    const { pool } = engine
    const command = COMMANDS[job.language]
    if (command === undefined) {
      return outcomeOf('error', {
        code: GuestErrorCode.ENGINE_FAULT,
        message: `the container engine does not run ${job.language}`,
      })
    }
    const shape = shapeOf(job)
    let sandbox: Sandbox
    try {
      sandbox = await pool.take(shape)
    } catch (error) {
      return outcomeOf('killed', {
        code: GuestErrorCode.ENGINE_FAULT,
        message:
          `the sandbox could not start: ${error instanceof Error ? error.message : String(error)}`.slice(
            0,
            1000,
          ),
      })
    }
    try {
      const executed = await execInSandbox(sandbox, job, channel, signal)
      // A command that exited has had every other process of its sandbox ended by the init: what is
      // left (the init and bubblewrap) is taken down after the answer. Any other sandbox (a limit, a
      // cancellation, a lost init) is destroyed before it.
      if (executed.end.kind === 'exited') this.#retire(sandbox)
      else await sandbox.destroy()
      return toOutcome(executed, job.limits)
    } catch (error) {
      this.#retire(sandbox)
      throw error
    } finally {
      // After the answer has gone out (the worker sends it before immediates run).
      setImmediate(() => pool.refill(shape))
    }
  }

  /** Destroys a used sandbox in the background; `close` waits for all of them. */
  #retire(sandbox: Sandbox): void {
    const done = sandbox.destroy().catch((error: unknown) => {
      console.error(`container engine: a sandbox was not removed cleanly: ${String(error).slice(0, 300)}`)
    })
    this.#retiring.add(done)
    void done.finally(() => this.#retiring.delete(done))
  }

  /** Destroys the pooled sandboxes (the worker's graceful end). */
  async close(): Promise<void> {
    if ('problem' in this.#engine) return
    await Promise.all([this.#engine.pool.close(), ...this.#retiring])
    this.#engine.host.close()
  }

  dispose(): void {
    void this.close()
  }
}

/** The sandbox a job needs: its workspace (a tmpfs of the quota, staged read-only files, or none) and limits. */
export function shapeOf(job: Pick<RunJob, 'workspace' | 'limits'>): SandboxShape {
  const workspace = job.workspace ?? { access: 'none', quotaBytes: 0, files: [] }
  return {
    workspace:
      workspace.access === 'read-write'
        ? { kind: 'tmpfs', bytes: Math.max(workspace.quotaBytes, 4096) }
        : workspace.access === 'read'
          ? { kind: 'read-only', files: workspace.files.map(decodeFile) }
          : null,
    tmpBytes: SANDBOX_TMP_BYTES,
    processes: job.limits.processes,
    memoryBytes: job.limits.memoryMb * 1024 * 1024,
  }
}

const decodeFile = (file: { path: string; content: string }) => ({
  path: file.path,
  data: Buffer.from(file.content, 'base64'),
})

/**
 * Runs one job's command in a started sandbox (the interpreter on the code, `input` as a file, the
 * result read back) and answers what the sandbox reported. Egress exists only where the profile
 * grants it: then HTTP(S)_PROXY name the forwarder and each granted secret is a variable holding its
 * placeholder. The caller owns the sandbox: it is not destroyed here.
 */
export function execInSandbox(
  sandbox: Sandbox,
  job: RunJob,
  channel: BindingChannel | undefined,
  signal: AbortSignal | undefined,
): Promise<ExecResult> {
  const command = COMMANDS[job.language] as { argv: string[]; file: string }
  const { limits } = job
  const workspace = job.workspace ?? { access: 'none', quotaBytes: 0, files: [] }
  const egress = job.grants?.fetch === true && channel !== undefined
  const home = workspace.access === 'none' ? '/tmp' : '/workspace'
  return sandbox.exec(
    {
      argv: [...command.argv, `${PRIVATE_DIR}/${command.file}`],
      cwd: home,
      processes: limits.processes,
      env: {
        ...(egress ? secretPlaceholders(job.grants?.secrets ?? {}) : {}),
        ...(egress ? PROXY_ENV : {}),
        PATH: '/usr/local/bin:/usr/bin:/bin',
        HOME: home,
        TMPDIR: '/tmp',
        USER: 'sandbox',
        LOGNAME: 'sandbox',
        LANG: 'C.UTF-8',
        PYTHONUNBUFFERED: '1',
        PYTHONDONTWRITEBYTECODE: '1',
        CORDON_INPUT: `${PRIVATE_DIR}/input.json`,
        CORDON_RESULT: `${PRIVATE_DIR}/result.json`,
      },
      // A writable workspace gets them from the init; a read-only one was staged with them.
      files: workspace.access === 'read-write' ? workspace.files.map(decodeFile) : [],
      code: Buffer.from(job.code, 'utf8'),
      codeName: command.file,
      input: Buffer.from(job.inputJSON, 'utf8'),
      outputBytes: limits.outputBytes,
      cpuMs: limits.cpuMs,
      wallMs: limits.wallMs,
      fileBytes: workspace.access === 'none' ? NO_WORKSPACE_FILE_BYTES : Math.max(workspace.quotaBytes, 1),
      openFiles: limits.openFiles,
      resultBytes: limits.outputBytes,
      collect: {
        maxFiles: workspace.access === 'read-write' ? MAX_OUTPUT_FILES : 0,
        maxFileBytes: limits.outputBytes,
        maxTotalBytes: limits.outputBytes,
      },
    },
    signal,
    channel === undefined ? undefined : { granted: egress, call: channel },
  )
}

/** The run's record fields from what the sandbox reported; limits hit are decided by the host. */
export function toOutcome(executed: ExecResult, limits: Limits): RunOutcome {
  const stdout = Buffer.concat(executed.stdout).toString('utf8')
  const stderr = Buffer.concat(executed.stderr).toString('utf8')
  const usage = {
    cpuMs: Math.round(executed.cpuMs * 100) / 100,
    wallMs: Math.round(executed.wallMs * 100) / 100,
    memoryBytes: executed.memoryBytes,
  }
  const base = { stdout, stderr, usage, files: executed.files.map(outputFile) }
  const { end } = executed
  switch (end.kind) {
    case 'limit': {
      const outcome = end.limit === 'memory' ? memoryLimit(limits) : classifyFailure(null, end.limit, limits)
      return { ...base, ...outcome, exitCode: null, files: [] }
    }
    case 'cancelled':
      return {
        ...base,
        ...outcomeOf('killed', { code: GuestErrorCode.CANCELLED, message: 'cancelled' }),
        usage,
      }
    case 'lost':
      return {
        ...base,
        ...outcomeOf('killed', {
          code: GuestErrorCode.ENGINE_FAULT,
          message: `the sandbox failed: ${end.reason}`,
        }),
        usage,
        exitCode: null,
        files: [],
      }
    case 'exited': {
      if (end.outputOver) return { ...base, ...classifyFailure(null, 'output', limits), exitCode: end.code }
      if (end.signal !== null) {
        const name = signalName(end.signal)
        if (name === 'SIGXCPU') return { ...base, ...classifyFailure(null, 'cpu', limits), exitCode: null }
        const error =
          name === 'SIGXFSZ'
            ? {
                code: GuestErrorCode.FILE_SIZE_LIMIT,
                message: 'the command wrote a file larger than the profile allows',
              }
            : { code: GuestErrorCode.KILLED_BY_SIGNAL, message: `the command was killed by ${name}` }
        return { ...base, status: 'error', result: null, error, exitCode: null }
      }
      const code = end.code ?? 0
      if (executed.resultTooLarge)
        return { ...base, ...classifyFailure(null, 'output', limits), exitCode: code }
      const spent = Buffer.byteLength(stdout) + Buffer.byteLength(stderr)
      const result =
        executed.result === null
          ? { status: 'ok' as const, error: null, result: null }
          : classifyResult(executed.result.toString('utf8'), limits.outputBytes - spent)
      if (code !== 0) {
        return {
          ...base,
          status: 'error',
          result: result.result,
          error: { code: GuestErrorCode.EXIT_NONZERO, message: `the command exited with status ${code}` },
          exitCode: code,
        }
      }
      return { ...base, ...result, exitCode: code }
    }
  }
}

/** The proxy variables every common client reads (curl, python's urllib and requests, wget, git). */
const PROXY_URL = 'http://127.0.0.1:3128'
const PROXY_ENV: Readonly<Record<string, string>> = {
  HTTP_PROXY: PROXY_URL,
  HTTPS_PROXY: PROXY_URL,
  http_proxy: PROXY_URL,
  https_proxy: PROXY_URL,
}
/** Variables the engine sets itself: a secret of the same name is not put into the environment. */
const RESERVED_ENV =
  /^(PATH|HOME|TMPDIR|USER|LOGNAME|LANG|PYTHON.*|CORDON_.*|HTTPS?_PROXY|NO_PROXY|ALL_PROXY)$/

/**
 * Each granted secret as an environment variable holding its opaque placeholder (never the value):
 * the proxy's `fetch` puts the value in on plain-http requests to the secret's hosts.
 */
function secretPlaceholders(secrets: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(secrets).filter(([name]) => !RESERVED_ENV.test(name)))
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters mark binary content
const BINARY = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\uFFFD]/

function outputFile(file: CollectedFile): OutputFile {
  const path = `/workspace/${file.path}`
  if (file.data === undefined) return { path, size: file.size, omitted: file.omitted ?? 'size' }
  const text = file.data.toString('utf8')
  // Text: UTF-8 that decodes back to the same bytes, without control characters but tab and line ends.
  const isText = !BINARY.test(text) && Buffer.byteLength(text) === file.data.byteLength
  return isText
    ? { path, size: file.size, encoding: 'utf8', content: text }
    : { path, size: file.size, encoding: 'base64', content: file.data.toString('base64') }
}

function signalName(signal: number): string {
  const entry = Object.entries(constants.signals).find(([, value]) => value === signal)
  return entry?.[0] ?? `signal ${signal}`
}
