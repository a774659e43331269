import { fromBase64, toBase64 } from './base64.ts'
import { CordonApiError, CordonSandboxError, fileError, shellError } from './errors.ts'
import type { ShellResult } from './exec-result.ts'
import { type ExecOptions, runCommand, runScript } from './run-command.ts'
import { SessionClient, type SessionClientOptions } from './session-client.ts'
import {
  existsScript,
  mkdirScript,
  readdirScript,
  readScript,
  rmScript,
  statScript,
  writeScript,
} from './shell-scripts.ts'
import { parentOf, routable, type WorkspacePath, workspacePath } from './workspace-paths.ts'

/** Flue's `FileStat`, every field read from the sandbox (none made up). */
export interface FileStat {
  isFile: boolean
  isDirectory: boolean
  isSymbolicLink: boolean
  size: number
  mtime: Date
}

/** Entries a files-API listing holds at most: a listing that long may be cut, so a command lists. */
const LISTED_MAX = 1000
/** The largest file written through a command (its base64 must fit one execution's code). */
const COMMAND_WRITE_MAX = 96 * 1024
const S_IFMT = 0o170000

/**
 * Flue's sandbox driver (`SandboxDriver`, formerly `SandboxApi`) over one Cordon container session,
 * opened on first use and reopened if Cordon ended it. File verbs reach `/workspace` only: paths
 * outside it are refused (EACCES) before any request. They use Cordon's files API, which follows no
 * symbolic link and reads only regular files; what it cannot do (stat, mkdir, rm of one entry, a
 * symbolic link, a name with control characters) runs as a bash command in the same sandbox, with
 * every path single-quoted. Errors are Node-style (`code: 'ENOENT'`...) or, for refusals that are
 * not about a file (auth, limits, an unreachable service), `CordonApiError`; neither holds the token.
 */
export class CordonSandbox {
  readonly #client: SessionClient

  constructor(options: SessionClientOptions) {
    this.#client = new SessionClient(options)
  }

  /** The Cordon session in use, or null before the first operation (and after one ended). */
  get sessionId(): string | null {
    return this.#client.sessionId
  }

  async readFile(path: string): Promise<string> {
    return new TextDecoder().decode(await this.readFileBuffer(path))
  }

  async readFileBuffer(path: string): Promise<Uint8Array> {
    const target = workspacePath(path, 'open')
    if (target.relative === '') throw new CordonSandboxError('EISDIR', 'read', path)
    if (routable(target)) {
      try {
        return await this.#client.withSession((id) => this.#client.readFile(id, target.relative))
      } catch (error) {
        if (!refusedByFilesAPI(error)) throw fileError(error, 'open', path)
      }
    }
    return fromBase64((await this.#shell(readScript(target.absolute), 'open', path)).trim())
  }

  /** Creates or replaces the file, creating missing parents (as Flue's contract asks). */
  async writeFile(path: string, content: string | Uint8Array): Promise<void> {
    const target = workspacePath(path, 'open')
    if (target.relative === '') throw new CordonSandboxError('EISDIR', 'open', path)
    const data = typeof content === 'string' ? new TextEncoder().encode(content) : content
    if (routable(target)) {
      try {
        return await this.#client.withSession((id) => this.#client.writeFile(id, target.relative, data))
      } catch (error) {
        if (!refusedByFilesAPI(error)) throw fileError(error, 'open', path)
      }
    }
    if (data.byteLength > COMMAND_WRITE_MAX) {
      const why = `the files API refused this path, and a command writes at most ${COMMAND_WRITE_MAX} bytes`
      throw new CordonSandboxError('EINVAL', 'open', path, why)
    }
    const script = writeScript(target.absolute, parentOf(target.absolute), toBase64(data))
    await this.#shell(script, 'open', path)
  }

  /** `stat` of what the path names (following symbolic links), `isSymbolicLink` of the path itself. */
  async stat(path: string): Promise<FileStat> {
    const target = workspacePath(path, 'stat')
    const [link, real] = (await this.#shell(statScript(target.absolute), 'stat', path))
      .trim()
      .split('\n')
      .map(parseStat)
    if (link === undefined || real === undefined) throw new CordonSandboxError('EIO', 'stat', path)
    return {
      isFile: (real.mode & S_IFMT) === 0o100000,
      isDirectory: (real.mode & S_IFMT) === 0o040000,
      isSymbolicLink: (link.mode & S_IFMT) === 0o120000,
      size: real.size,
      mtime: real.mtime,
    }
  }

  async readdir(path: string): Promise<string[]> {
    const target = workspacePath(path, 'scandir')
    if (routable(target)) {
      try {
        const entries = await this.#client.withSession((id) => this.#client.list(id, target.relative))
        if (complete(entries)) return entries.map((entry) => entry.name)
      } catch (error) {
        if (!refusedByFilesAPI(error)) throw fileError(error, 'scandir', path)
      }
    }
    const listed = await this.#shell(readdirScript(target.absolute), 'scandir', path)
    const decoder = new TextDecoder()
    return listed
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => decoder.decode(fromBase64(line)))
      .sort()
  }

  /**
   * Whether the path names a file or directory. Missing paths and paths outside `/workspace` are
   * `false`; a failure to reach Cordon is thrown rather than read as "missing".
   */
  async exists(path: string): Promise<boolean> {
    let target: WorkspacePath
    try {
      target = workspacePath(path, 'access')
    } catch {
      return false
    }
    if (target.relative === '') return true
    if (routable(target)) {
      const cut = target.relative.lastIndexOf('/')
      const parent = cut === -1 ? '' : target.relative.slice(0, cut)
      const name = target.relative.slice(cut + 1)
      try {
        const entries = await this.#client.withSession((id) => this.#client.list(id, parent))
        const entry = entries.find((candidate) => candidate.name === name)
        if (entry?.type === 'file' || entry?.type === 'directory') return true
        if (entry === undefined && complete(entries)) return false
      } catch (error) {
        if (isCode(error, 'FILE_NOT_FOUND')) return false
        if (!refusedByFilesAPI(error)) throw error
      }
    }
    try {
      return (await this.#shell(existsScript(target.absolute), 'access', path)).trim() === 'yes'
    } catch (error) {
      if (error instanceof CordonSandboxError) return false
      throw error
    }
  }

  async mkdir(path: string, options?: { recursive?: boolean | undefined }): Promise<void> {
    const target = workspacePath(path, 'mkdir')
    await this.#shell(mkdirScript(target.absolute, options?.recursive === true), 'mkdir', path)
  }

  /** fs.rm's semantics: `recursive` for directories, `force` ignores a missing path. */
  async rm(
    path: string,
    options?: { recursive?: boolean | undefined; force?: boolean | undefined },
  ): Promise<void> {
    const target = workspacePath(path, 'rm')
    const recursive = options?.recursive === true
    const force = options?.force === true
    if (target.relative === '') {
      throw new CordonSandboxError('EPERM', 'rm', path, `${target.absolute} itself is never removed`)
    }
    // The files API removes a tree (of any depth, following no link) but cannot refuse a directory.
    if (recursive && routable(target)) {
      try {
        return await this.#client.withSession((id) => this.#client.remove(id, target.relative))
      } catch (error) {
        if (force && isCode(error, 'FILE_NOT_FOUND')) return
        if (!refusedByFilesAPI(error)) throw fileError(error, 'rm', path)
      }
    }
    await this.#shell(rmScript(target.absolute, recursive, force), 'rm', path)
  }

  exec(command: string, options?: ExecOptions): Promise<ShellResult> {
    return runCommand(this.#client, command, options)
  }

  /** Ends the Cordon session (its /workspace with it); every later call is refused. */
  close(): Promise<void> {
    return this.#client.close()
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  /** A bash script for a file verb: its stdout, or its failure as a file error. */
  async #shell(script: string, syscall: string, path: string): Promise<string> {
    const { record } = await runScript(this.#client, () => script)
    if (record.status === 'ok') return record.stdout
    if (record.error?.code === 'EXIT_NONZERO') throw shellError(record.stderr, syscall, path)
    if (record.status === 'output_limit') {
      const why = "the answer is larger than the profile's outputBytes lets a command print"
      throw new CordonSandboxError('EFBIG', syscall, path, why)
    }
    throw new CordonSandboxError('EIO', syscall, path, record.error?.message ?? record.status)
  }
}

function parseStat(line: string): { mode: number; size: number; mtime: Date } | undefined {
  const [mode, size, mtime] = line.split(' ')
  const parsed = { mode: Number.parseInt(mode ?? '', 16), size: Number(size), mtime: Number(mtime) }
  if (!Number.isFinite(parsed.mode) || !Number.isFinite(parsed.size) || !Number.isFinite(parsed.mtime)) return
  return { mode: parsed.mode, size: parsed.size, mtime: new Date(Math.round(parsed.mtime * 1000)) }
}

/** A listing that is surely whole and whose names are real (not made readable by the init). */
function complete(entries: readonly { name: string }[]): boolean {
  return entries.length < LISTED_MAX && !entries.some((entry) => entry.name.includes('\uFFFD'))
}

/**
 * What the files API cannot settle, so a command does: it refuses symbolic links (PATH_INVALID; a
 * symlinked directory on the way is NOT_DIRECTORY), some names, and special files (BAD_REQUEST).
 */
function refusedByFilesAPI(error: unknown): boolean {
  return isCode(error, 'PATH_INVALID') || isCode(error, 'NOT_DIRECTORY') || isCode(error, 'BAD_REQUEST')
}

function isCode(error: unknown, code: string): boolean {
  return error instanceof CordonApiError && error.code === code
}
