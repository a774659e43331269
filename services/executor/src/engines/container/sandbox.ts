import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import {
  chmodSync,
  chownSync,
  closeSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import {
  type CgroupHost,
  detectCgroups,
  type SandboxGroup,
  type SandboxLimits,
  sweepStaleGroups,
} from './cgroups.ts'
import { EgressProxy, type ProxySession } from './egress-proxy.ts'
import { exitWithinBounds, type FileReply, type InitMessage, readInitMessage } from './init-messages.ts'
import { seccompProgram } from './seccomp.ts'

/**
 * The Linux process sandbox behind the container engine: bubblewrap with every namespace unshared,
 * the project's seccomp filter, a cgroup per sandbox and rlimits as a floor, run as a host uid of its
 * own (never root). Inside, `sandbox-init.py` runs commands on request over a socket (fd 3).
 */

/** Where the sandbox's private files live inside it: the init, and each execution's code/input/result. */
const INIT_PATH = '/.cordon/init.py'
/** The egress proxy's socket inside the sandbox (the forwarder connects to it). */
const PROXY_PATH = '/.cordon/proxy.sock'
export const PRIVATE_DIR = '/.cordon/run'
/** The sandbox's user inside its user namespace (a different, unused host uid outside). */
export const SANDBOX_UID = 1000
/**
 * Host uids given to sandboxes: one per sandbox of a worker from this range (two workers whose pids
 * agree modulo 1000 may hand out the same ones; the uid is defence in depth beside the cgroup).
 */
const HOST_UID_BASE = 1_700_000_000
const HOST_UID_RANGE = 1_000_000
/** Tasks Cordon itself runs in every sandbox: bubblewrap (outside the namespace), the init, its forwarder. */
export const SANDBOX_OWN_TASKS = 3
/** Memory Cordon's own processes in a sandbox may use on top of the profile's `memoryMb`. */
export const SANDBOX_OWN_MEMORY_BYTES = 24 * 1024 * 1024
/** How long a sandbox may take to start before the run is failed. */
const START_TIMEOUT_MS = 10_000
/** How long the init may take over one file operation. */
const FILE_OPERATION_MS = 10_000
/** How long the outer bubblewrap gets to exit once everything inside it is gone. */
const OUTER_EXIT_MS = 2000
/** Largest control message the host accepts from an init (base64 of collected files included). */
const MAX_CONTROL_LINE = 64 * 1024 * 1024

/** Files and directories of the host's /etc a sandbox sees (read-only, each only if present). */
const HOST_ETC = [
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  'alternatives',
  'ssl',
  'ca-certificates',
  'ca-certificates.conf',
  'localtime',
  'mime.types',
  'protocols',
  'services',
  'nsswitch.conf',
  'gai.conf',
  'host.conf',
  'debian_version',
  'os-release',
  'python3',
  'python3.11',
  'magic',
]

/** Files of /etc written by Cordon rather than shown from the host (no host accounts, no DNS). */
const OWN_ETC: Record<string, string> = {
  passwd: `root:x:0:0:root:/:/usr/sbin/nologin\nsandbox:x:${SANDBOX_UID}:${SANDBOX_UID}:sandbox:/workspace:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`,
  group: `root:x:0:\nsandbox:x:${SANDBOX_UID}:\nnogroup:x:65534:\n`,
  hosts: '127.0.0.1 localhost sandbox\n::1 localhost\n',
  'resolv.conf': '# No name servers: the sandbox reaches the network only through its proxy.\n',
  hostname: 'sandbox\n',
}

/** What a sandbox is given at start (fixed for its lifetime). */
export interface SandboxShape {
  /**
   * The sandbox's /workspace: a writable tmpfs of this size, read-only files staged by the host
   * (a profile with `filesystem.access: read`), or none.
   */
  workspace: { kind: 'tmpfs'; bytes: number } | { kind: 'read-only'; files: StagedFile[] } | null
  /** Size of the writable /tmp tmpfs. */
  tmpBytes: number
  /** The cgroup limits it starts with (a pooled sandbox gets its job's with `limit`). */
  processes: number
  memoryBytes: number
}

/** A file of a read-only workspace: a path relative to /workspace, already checked by the harness. */
export interface StagedFile {
  path: string
  data: Buffer
}

/** One command run inside a started sandbox. */
export interface ExecRequest {
  argv: string[]
  /** Most processes of the command at once (RLIMIT_NPROC, beside the cgroup's pids.max). */
  processes: number
  /** The command's working directory (/workspace, or /tmp when there is none). */
  cwd: string
  env: Record<string, string>
  files: { path: string; data: Buffer }[]
  code: Buffer
  codeName: string
  input: Buffer
  outputBytes: number
  cpuMs: number
  wallMs: number
  fileBytes: number
  openFiles: number
  resultBytes: number
  collect: { maxFiles: number; maxFileBytes: number; maxTotalBytes: number }
}

export interface CollectedFile {
  path: string
  size: number
  data?: Buffer
  omitted?: 'size' | 'count' | 'name'
}

export type ExecEnd =
  | { kind: 'exited'; code: number | null; signal: number | null; outputOver: boolean }
  | { kind: 'limit'; limit: 'cpu' | 'wall' | 'memory' }
  | { kind: 'cancelled' }
  | { kind: 'lost'; reason: string }

export interface ExecResult {
  end: ExecEnd
  stdout: Buffer[]
  stderr: Buffer[]
  files: CollectedFile[]
  result: Buffer | null
  resultTooLarge: boolean
  cpuMs: number
  wallMs: number
  memoryBytes: number
}

/** Why sandboxes cannot run here, or null when they can. */
export type SandboxAvailability = { ok: true } | { ok: false; problem: string }

/**
 * What every sandbox of one worker shares: the bubblewrap binary, the cgroup host, and a private
 * directory holding the init script, the seccomp program and Cordon's /etc files.
 */
export class SandboxHost {
  readonly #bwrap: string
  readonly #setpriv: string
  readonly #cgroups: CgroupHost
  readonly #runtime: string
  readonly #seccompFile: string
  readonly #systemArgs: string[]
  #count = 0

  private constructor(bwrap: string, setpriv: string, cgroups: CgroupHost) {
    this.#bwrap = bwrap
    this.#setpriv = setpriv
    this.#cgroups = cgroups
    // Readable by the sandbox's host uid (bubblewrap opens the bind sources as that uid).
    sweepRuntimes()
    this.#runtime = mkdtempSync(join(tmpdir(), `cordon-sandbox-${process.pid}-`))
    chmodSync(this.#runtime, 0o755)
    const init = join(this.#runtime, 'init.py')
    copyFileSync(new URL('./sandbox-init.py', import.meta.url), init)
    chmodSync(init, 0o644)
    this.#seccompFile = join(this.#runtime, 'seccomp.bpf')
    writeFileSync(this.#seccompFile, seccompProgram(), { mode: 0o644 })
    for (const [name, text] of Object.entries(OWN_ETC)) {
      writeFileSync(join(this.#runtime, name), text, { mode: 0o644 })
    }
    this.#systemArgs = systemView(this.#runtime)
  }

  /**
   * A host for this worker's sandboxes, or why there can be none: bubblewrap and setpriv must be
   * installed, the process must be root (to run each sandbox as a uid of its own and to manage
   * cgroups), the machine must be x86_64 (the seccomp filter's ABI) and usable cgroups must exist.
   */
  static open(name: string): SandboxHost | { problem: string } {
    if (process.arch !== 'x64')
      return { problem: `the seccomp filter is x86_64 only (this is ${process.arch})` }
    if (process.getuid?.() !== 0) return { problem: 'the service must run as root to start sandboxes' }
    const bwrap = which('bwrap')
    if (bwrap === null) return { problem: 'bubblewrap (bwrap) is not installed' }
    const setpriv = which('setpriv')
    if (setpriv === null) return { problem: 'setpriv (util-linux) is not installed' }
    const cgroups = detectCgroups(name)
    if ('problem' in cgroups) return cgroups
    return new SandboxHost(bwrap, setpriv, cgroups)
  }

  /** Starts one trivial sandbox with this host's settings, without cgroups, and says whether it ran. */
  static probe(): SandboxAvailability {
    const opened = SandboxHost.open(`probe-${process.pid}`)
    if ('problem' in opened) return { ok: false, problem: opened.problem }
    const seccomp = openSync(opened.#seccompFile, 'r')
    const result = spawnSync(
      opened.#setpriv,
      [
        '--reuid=65534',
        '--regid=65534',
        '--clear-groups',
        '--inh-caps=-all',
        '--no-new-privs',
        '--',
        opened.#bwrap,
        ...opened.#bwrapArgs({
          workspace: { kind: 'tmpfs', bytes: 4096 },
          tmpBytes: 4096,
          processes: 4,
          memoryBytes: 0,
        }),
        '--',
        '/bin/true',
      ],
      { stdio: ['ignore', 'ignore', 'pipe', 'ignore', seccomp], timeout: 10_000 },
    )
    closeSync(seccomp)
    opened.close()
    if (result.status === 0) return { ok: true }
    const said = result.stderr?.toString('utf8').trim().slice(0, 300) ?? ''
    return { ok: false, problem: `a test sandbox did not run${said === '' ? '' : `: ${said}`}` }
  }

  /** Removes this host's private directory and parent cgroups (its sandboxes must have ended). */
  close(): void {
    rmSync(this.#runtime, { recursive: true, force: true })
    this.#cgroups.removeParents()
  }

  get cgroupVersion(): 1 | 2 {
    return this.#cgroups.version
  }

  /** Starts a sandbox and waits until its init is ready for commands. */
  async start(shape: SandboxShape): Promise<Sandbox> {
    this.#count += 1
    const id = `cordon-${process.pid}-${this.#count}`
    const hostUid = HOST_UID_BASE + (((process.pid % 1000) * 1000 + (this.#count % 1000)) % HOST_UID_RANGE)
    const limits: SandboxLimits = {
      memoryBytes: shape.memoryBytes + SANDBOX_OWN_MEMORY_BYTES,
      tasks: shape.processes + SANDBOX_OWN_TASKS,
      cores: 1,
    }
    const staged =
      shape.workspace?.kind === 'read-only' ? this.#stage(id, shape.workspace.files, hostUid) : null
    let group: SandboxGroup
    let proxy: EgressProxy
    try {
      proxy = await EgressProxy.open(join(this.#runtime, `proxy-${id}`), hostUid)
    } catch (error) {
      if (staged !== null) rmSync(staged, { recursive: true, force: true })
      throw error
    }
    try {
      group = this.#cgroups.create(id, limits)
    } catch (error) {
      if (staged !== null) rmSync(staged, { recursive: true, force: true })
      proxy.close()
      throw error
    }
    const args = [
      ...this.#bwrapArgs(shape, staged, proxy.path),
      '--',
      '/usr/bin/python3',
      '-I',
      '-S',
      INIT_PATH,
    ]
    const seccomp = openSync(this.#seccompFile, 'r')
    let child: ChildProcess
    try {
      child = spawn(
        '/bin/sh',
        [
          '-c',
          // Join every controller's group first, so nothing of the sandbox ever runs outside it; then
          // become the sandbox's own host uid, with no groups, capabilities or way to gain any.
          'for f; do [ "$f" = -- ] && break; echo $$ > "$f" || exit 125; shift; done; shift; exec "$@"',
          'cordon-sandbox',
          ...group.procsFiles,
          '--',
          this.#setpriv,
          `--reuid=${hostUid}`,
          `--regid=${hostUid}`,
          '--clear-groups',
          '--inh-caps=-all',
          '--bounding-set=-all',
          '--no-new-privs',
          '--',
          this.#bwrap,
          ...args,
        ],
        { stdio: ['ignore', 'pipe', 'pipe', 'pipe', seccomp], env: {}, cwd: '/' },
      )
    } finally {
      closeSync(seccomp)
    }
    const sandbox = new Sandbox(id, child, group, staged, proxy)
    try {
      await sandbox.ready(START_TIMEOUT_MS)
    } catch (error) {
      await sandbox.destroy()
      throw error
    }
    return sandbox
  }

  /**
   * Writes a read-only workspace's files into a fresh host directory that only the sandbox's own host
   * uid (and root) can read: other local users never see a tenant's files.
   */
  #stage(id: string, files: readonly StagedFile[], owner: number): string {
    const dir = join(this.#runtime, `workspace-${id}`)
    mkdirSync(dir, { mode: 0o700 })
    const owned = new Set<string>([dir])
    for (const file of files) {
      const target = join(dir, file.path)
      let parent = dirname(target)
      mkdirSync(parent, { recursive: true, mode: 0o700 })
      while (parent.startsWith(`${dir}/`) && !owned.has(parent)) {
        owned.add(parent)
        parent = dirname(parent)
      }
      writeFileSync(target, file.data, { mode: 0o400, flag: 'wx' })
      owned.add(target)
    }
    for (const path of owned) chownSync(path, owner, owner)
    return dir
  }

  #bwrapArgs(shape: SandboxShape, staged: string | null = null, proxy: string | null = null): string[] {
    const args = [
      '--unshare-all',
      '--unshare-user',
      '--uid',
      String(SANDBOX_UID),
      '--gid',
      String(SANDBOX_UID),
      '--hostname',
      'sandbox',
      '--disable-userns',
      // The init is the namespace's first process: nothing inside can signal it, and when it ends
      // the kernel ends everything else in the sandbox.
      '--as-pid-1',
      '--die-with-parent',
      '--new-session',
      '--clearenv',
      '--cap-drop',
      'ALL',
      ...this.#systemArgs,
      '--proc',
      '/proc',
      '--dev',
      '/dev',
      '--size',
      String(shape.tmpBytes),
      '--tmpfs',
      '/tmp',
      '--dir',
      '/.cordon',
      '--ro-bind',
      join(this.#runtime, 'init.py'),
      INIT_PATH,
      '--size',
      String(1024 * 1024 * 1024),
      '--tmpfs',
      PRIVATE_DIR,
    ]
    if (shape.workspace?.kind === 'tmpfs') {
      args.push('--size', String(shape.workspace.bytes), '--tmpfs', '/workspace', '--chdir', '/workspace')
    } else if (staged !== null) {
      args.push('--ro-bind', staged, '/workspace', '--chdir', '/workspace')
    } else {
      args.push('--chdir', '/tmp')
    }
    if (proxy !== null) args.push('--ro-bind', proxy, PROXY_PATH)
    // The root itself (bubblewrap's own tmpfs holding the mount points) becomes read-only last.
    args.push('--remount-ro', '/', '--seccomp', '4')
    return args
  }
}

/** The read-only view of the host's system directories: /usr, its merged-/usr links, chosen /etc files. */
function systemView(runtime: string): string[] {
  const args = ['--ro-bind', '/usr', '/usr']
  for (const dir of ['bin', 'sbin', 'lib', 'lib64', 'lib32', 'libx32']) {
    const path = `/${dir}`
    let link: string | null = null
    try {
      const info = lstatSync(path)
      if (info.isSymbolicLink()) link = spawnSync('readlink', [path], { encoding: 'utf8' }).stdout.trim()
      else if (!info.isDirectory()) continue
    } catch {
      continue
    }
    if (link !== null) args.push('--symlink', link, path)
    else args.push('--ro-bind', path, path)
  }
  for (const name of HOST_ETC) {
    if (existsSync(`/etc/${name}`)) args.push('--ro-bind', `/etc/${name}`, `/etc/${name}`)
  }
  for (const name of Object.keys(OWN_ETC)) args.push('--ro-bind', join(runtime, name), `/etc/${name}`)
  return args
}

/**
 * Removes what sandboxes of ended worker processes left: their cgroups and their hosts' private
 * directories. Called when a worker exits and when the service starts.
 */
export function sweepSandboxLeftovers(): void {
  sweepStaleGroups()
  sweepRuntimes()
}

/** Removes the private directories of sandbox hosts whose process has ended. */
function sweepRuntimes(): void {
  let entries: string[]
  try {
    entries = readdirSync(tmpdir())
  } catch {
    return
  }
  for (const entry of entries) {
    const pid = /^cordon-sandbox-(\d+)-/.exec(entry)?.[1]
    if (pid !== undefined && !existsSync(`/proc/${pid}`)) {
      rmSync(join(tmpdir(), entry), { recursive: true, force: true })
    }
  }
}

function which(command: string): string | null {
  for (const dir of ['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/local/bin']) {
    const path = join(dir, command)
    if (existsSync(path)) return path
  }
  return null
}

/** One started sandbox: its process tree (in its own cgroup) and the socket to its init. */
export class Sandbox {
  readonly id: string
  readonly #child: ChildProcess
  readonly #group: SandboxGroup
  readonly #control: Socket
  #buffer = ''
  #listener: ((message: InitMessage) => void) | null = null
  #gone: string | null = null
  /** Told when the sandbox is lost; each waiter removes itself once its own operation is over. */
  readonly #goneWaiters = new Set<(reason: string) => void>()
  #diagnostics = ''
  #destroyed: Promise<void> | null = null

  readonly #staged: string | null

  readonly #proxy: EgressProxy

  constructor(
    id: string,
    child: ChildProcess,
    group: SandboxGroup,
    staged: string | null,
    proxy: EgressProxy,
  ) {
    this.id = id
    this.#staged = staged
    this.#proxy = proxy
    this.#child = child
    this.#group = group
    this.#control = child.stdio[3] as Socket
    this.#control.setEncoding('utf8')
    this.#control.on('data', (text: string) => this.#receive(text))
    this.#control.on('error', () => this.#lose('the sandbox closed its control socket'))
    this.#control.on('close', () => this.#lose('the sandbox closed its control socket'))
    const keep = (chunk: Buffer) => {
      if (this.#diagnostics.length < 4096) this.#diagnostics += chunk.toString('utf8')
    }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    child.on('exit', () => this.#lose('the sandbox exited'))
    child.on('error', (error) => this.#lose(`cannot start the sandbox: ${error.message}`))
  }

  /** Whether the sandbox still runs (a pooled one may have been killed while it waited). */
  get alive(): boolean {
    return this.#gone === null && this.#destroyed === null
  }

  /** Sets the sandbox's cgroup limits for the job it is about to run (memory and processes). */
  limit(memoryBytes: number, processes: number): void {
    this.#group.setLimits({
      memoryBytes: memoryBytes + SANDBOX_OWN_MEMORY_BYTES,
      tasks: processes + SANDBOX_OWN_TASKS,
      cores: 1,
    })
  }

  /** Anything bubblewrap or the init printed (for an operator reading why a sandbox failed). */
  get diagnostics(): string {
    return this.#diagnostics.slice(0, 4096)
  }

  ready(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(`the sandbox did not start within ${timeoutMs} ms`), timeoutMs)
      const fail = (reason: string) => {
        clearTimeout(timer)
        this.#listener = null
        reject(
          new Error(
            `${reason}${this.#diagnostics === '' ? '' : `: ${this.#diagnostics.trim().slice(0, 500)}`}`,
          ),
        )
      }
      this.#goneWaiters.add(fail)
      this.#listener = (message) => {
        if (message.t !== 'ready') return
        clearTimeout(timer)
        this.#goneWaiters.delete(fail)
        this.#listener = null
        resolve()
      }
    })
  }

  /**
   * Runs one command and waits for it, enforcing CPU time (from the cgroup's own clock), wall time
   * and memory (the cgroup's OOM kills) from outside: at a limit, the whole sandbox is killed.
   */
  exec(request: ExecRequest, signal?: AbortSignal, session?: ProxySession): Promise<ExecResult> {
    const stdout: Buffer[] = []
    const stderr: Buffer[] = []
    const cpuStart = this.#group.cpuUsageMicros()
    const oomStart = this.#group.oomKills()
    const started = performance.now()
    let outputSeen = 0
    return new Promise((resolve) => {
      let settled = false
      const finish = (end: ExecEnd, extra?: Partial<ExecResult>) => {
        if (settled) return
        settled = true
        this.#goneWaiters.delete(onGone)
        this.#proxy.detach()
        clearInterval(watchdog)
        clearTimeout(deadline)
        signal?.removeEventListener('abort', onAbort)
        this.#listener = null
        // Usage is read before a sandbox killed at a limit is destroyed (its group goes with it).
        const cpuMs = Math.max(0, (this.#group.cpuUsageMicros() - cpuStart) / 1000)
        const memoryBytes = this.#group.memoryPeakBytes()
        const wallMs = performance.now() - started
        const ended = () => {
          const oom = this.#group.oomKills() > oomStart
          resolve({
            end: oom && end.kind !== 'limit' ? { kind: 'limit', limit: 'memory' } : end,
            stdout,
            stderr,
            files: [],
            result: null,
            resultTooLarge: false,
            cpuMs,
            wallMs,
            memoryBytes,
            ...extra,
          })
        }
        // A sandbox killed at a limit is destroyed before the answer, so its usage is final.
        if (end.kind === 'exited') ended()
        else void this.destroy().then(ended, ended)
      }
      const watchdog = setInterval(() => {
        if ((this.#group.cpuUsageMicros() - cpuStart) / 1000 > request.cpuMs) {
          finish({ kind: 'limit', limit: 'cpu' })
        } else if (this.#group.oomKills() > oomStart) {
          finish({ kind: 'limit', limit: 'memory' })
        }
      }, 5)
      const deadline = setTimeout(() => finish({ kind: 'limit', limit: 'wall' }), request.wallMs)
      const onAbort = () => finish({ kind: 'cancelled' })
      signal?.addEventListener('abort', onAbort, { once: true })
      const onGone = (reason: string) => finish({ kind: 'lost', reason })
      this.#goneWaiters.add(onGone)
      this.#listener = (message) => {
        if (message.t === 'out') {
          const { data } = message
          outputSeen += data.byteLength
          if (outputSeen > request.outputBytes) {
            finish({ kind: 'exited', code: null, signal: null, outputOver: true })
            return
          }
          ;(message.fd === 1 ? stdout : stderr).push(data)
        } else if (message.t === 'error') {
          finish({ kind: 'lost', reason: `the sandbox could not run the command: ${message.message}` })
        } else if (message.t === 'exit') {
          if (!exitWithinBounds(message, { ...request.collect, resultBytes: request.resultBytes })) {
            finish({ kind: 'lost', reason: 'the sandbox answered beyond its bounds' })
            return
          }
          finish(
            {
              kind: 'exited',
              code: message.code,
              signal: message.signal,
              outputOver: message.output === 'limit',
            },
            {
              files: message.files.map((file) => ({
                path: file.path,
                size: file.size,
                ...(file.data === undefined ? {} : { data: Buffer.from(file.data, 'base64') }),
                ...(file.omitted === undefined ? {} : { omitted: file.omitted }),
              })),
              result: message.result === null ? null : Buffer.from(message.result, 'base64'),
              resultTooLarge: message.resultTooLarge,
            },
          )
        }
      }
      if (signal?.aborted === true) {
        onAbort()
        return
      }
      if (this.#gone !== null) {
        onGone(this.#gone)
        return
      }
      if (session !== undefined) this.#proxy.attach(session)
      this.#send({
        t: 'exec',
        proxy: session?.granted === true,
        argv: request.argv,
        cwd: request.cwd,
        env: request.env,
        files: request.files.map((file) => ({ path: file.path, data: file.data.toString('base64') })),
        private: {
          code: { path: `${PRIVATE_DIR}/${request.codeName}`, data: request.code.toString('base64') },
          input: { path: `${PRIVATE_DIR}/input.json`, data: request.input.toString('base64') },
          result: `${PRIVATE_DIR}/result.json`,
        },
        outputBytes: request.outputBytes,
        processes: request.processes,
        cpuSeconds: Math.ceil(request.cpuMs / 1000) + 1,
        fileBytes: request.fileBytes,
        openFiles: request.openFiles,
        resultBytes: request.resultBytes,
        collect: request.collect,
      })
    })
  }

  /**
   * One file operation on the workspace, done by the init (so it sees only the sandbox, and follows
   * no symbolic link): never while a command runs (the caller serialises). Answers the init's reply;
   * rejects when the sandbox is gone or does not answer in time.
   */
  fileOperation(
    request:
      | { t: 'read'; path: string; max: number }
      | { t: 'write'; path: string; data: Buffer }
      | { t: 'list'; path: string; max: number }
      | { t: 'remove'; path: string },
  ): Promise<FileReply> {
    if (this.#gone !== null) return Promise.reject(new Error(this.#gone))
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        done()
        reject(new Error('the sandbox did not answer a file operation in time'))
        void this.destroy()
      }, FILE_OPERATION_MS)
      const onGone = (reason: string) => {
        done()
        reject(new Error(reason))
      }
      const done = () => {
        clearTimeout(timer)
        this.#goneWaiters.delete(onGone)
        this.#listener = null
      }
      this.#goneWaiters.add(onGone)
      this.#listener = (message) => {
        if (
          message.t === 'file' ||
          message.t === 'entries' ||
          message.t === 'done' ||
          message.t === 'error'
        ) {
          done()
          resolve(message)
        }
      }
      this.#send(request.t === 'write' ? { ...request, data: request.data.toString('base64') } : request)
    })
  }

  /** Kills every process of the sandbox and removes its cgroup; safe to call more than once. */
  destroy(): Promise<void> {
    this.#destroyed ??= (async () => {
      // Inner processes first: the outer bubblewrap then reaps the inner one and exits to us, so no
      // process of the sandbox is left for the host's init to reap.
      this.#control.destroy()
      const exited = new Promise<void>((resolve) => {
        if (this.#child.exitCode !== null || this.#child.signalCode !== null) resolve()
        else this.#child.once('exit', () => resolve())
      })
      await this.#group.killAllBut(this.#child.pid)
      const late = setTimeout(() => this.#child.kill('SIGKILL'), OUTER_EXIT_MS)
      await exited
      clearTimeout(late)
      await this.#group.destroy()
      this.#proxy.close()
      if (this.#staged !== null) rmSync(this.#staged, { recursive: true, force: true })
    })()
    return this.#destroyed
  }

  #send(message: unknown): void {
    this.#control.write(`${JSON.stringify(message)}\n`)
  }

  /** Splits the control stream into lines (searching only what is new) and hands on checked messages. */
  #receive(text: string): void {
    if (this.#gone !== null) return
    const searched = this.#buffer.length
    this.#buffer += text
    let newline = this.#buffer.indexOf('\n', searched)
    while (newline >= 0) {
      const line = this.#buffer.slice(0, newline)
      this.#buffer = this.#buffer.slice(newline + 1)
      const message = readInitMessage(line)
      if ('refused' in message) {
        this.#lose(`the sandbox sent ${message.refused}`)
        return
      }
      try {
        this.#listener?.(message)
      } catch {
        this.#lose('the sandbox sent a message the host could not use')
        return
      }
      newline = this.#buffer.indexOf('\n')
    }
    if (this.#buffer.length > MAX_CONTROL_LINE) this.#lose('the sandbox sent an oversized control message')
  }

  #lose(reason: string): void {
    if (this.#gone !== null) return
    this.#gone = reason
    const waiters = [...this.#goneWaiters]
    this.#goneWaiters.clear()
    for (const waiter of waiters) waiter(reason)
  }
}

let availability: SandboxAvailability | null = null

/**
 * Whether the container engine can run on this machine, checked once per process: the host's
 * prerequisites (`SandboxHost.open`'s), then a real sandbox start (user namespaces may be disabled
 * by the kernel or by a security module even where bubblewrap is installed).
 */
export function sandboxAvailability(): SandboxAvailability {
  if (availability !== null) return availability
  const host = SandboxHost.probe()
  availability = host
  return host
}
