import { CordonError, ErrorCode } from '@cordon/contracts'
import { normalisePath, type ResolvedProfile } from '@cordon/policy'
import {
  FILE_NAME_MAX_BYTES,
  type FileEntry,
  type FileFailure,
  type FileInfo,
  SPACE_MAX_ENTRIES,
} from './storage/file-store.ts'
import type { AuditDecision, Store } from './storage/store.ts'

/**
 * The space of an agent's kept files, the one executions under `filesystem.scope: agent` see, for
 * its storage namespace (name and incarnation).
 */
export function agentSpace(namespace: string): string {
  return `agent:${namespace}`
}

/**
 * An agent's persistent filesystem as operators see it through the files API: upload inputs,
 * download outputs. Paths are relative to `/workspace` and normalised exactly as guest paths are
 * (the same refusals; the same NFC spelling), and must stay under it. The operator is not bound
 * by the profile's `access`, `paths` or `deny` (those limit guest code), but is bound by its
 * `quotaBytes`, the entry limit and the size of one file, like the guest; and uploads need a
 * profile that keeps files (`scope: agent`, some access), since no execution would see them
 * otherwise. Uploads, downloads and removals are audited with the path and sizes, never content.
 */
export class AgentFiles {
  readonly #store: Store
  readonly #tenant: string
  readonly #agent: string
  readonly #profile: ResolvedProfile
  readonly #space: string

  constructor(options: {
    store: Store
    tenant: string
    agent: string
    namespace: string
    profile: ResolvedProfile
  }) {
    this.#store = options.store
    this.#tenant = options.tenant
    this.#agent = options.agent
    this.#profile = options.profile
    this.#space = agentSpace(options.namespace)
  }

  /** Creates or replaces a file; answers its absolute path, its size, and whether it is new. */
  put(input: string, data: Uint8Array): { path: string; size: number; created: boolean } {
    const path = this.#path(input)
    const fs = this.#profile.filesystem
    if (fs.scope !== 'agent' || fs.access === 'none') {
      throw new CordonError(
        ErrorCode.NO_AGENT_FILESYSTEM,
        `agent "${this.#agent}" keeps no files: its profile needs filesystem.scope "agent" and access "read" or "read-write"`,
      )
    }
    const written = this.#store.files.write(this.#tenant, this.#space, path, data, fs.quotaBytes)
    this.#audit('files.write', written.ok ? 'allow' : 'deny', written.ok ? 'ALLOWED' : written.code, {
      path: path.slice(0, 200),
      size: data.byteLength,
    })
    if (!written.ok) throw this.#error(written, path)
    return { path, size: data.byteLength, created: written.created }
  }

  get(input: string): { data: Uint8Array; info: FileInfo } {
    const path = this.#path(input)
    const read = this.#store.files.read(this.#tenant, this.#space, path)
    if (!read.ok) throw this.#error(read, path)
    this.#audit('files.read', 'allow', 'ALLOWED', { path: path.slice(0, 200), size: read.data.byteLength })
    return { data: read.data, info: read.info }
  }

  /** A directory's entries (the root when `input` is empty). */
  list(input: string): FileEntry[] {
    const path = this.#path(input)
    const listed = this.#store.files.list(this.#tenant, this.#space, path)
    if (!listed.ok) throw this.#error(listed, path)
    return listed.entries
  }

  remove(input: string, recursive: boolean): { removed: number } {
    const path = this.#path(input)
    const removed = this.#store.files.remove(this.#tenant, this.#space, path, { recursive })
    if (!removed.ok) throw this.#error(removed, path)
    this.#audit('files.delete', 'allow', 'ALLOWED', { path: path.slice(0, 200), removed: removed.removed })
    return { removed: removed.removed }
  }

  #path(input: string): string {
    const root = this.#profile.filesystem.root
    if (input.startsWith('/')) {
      throw new CordonError(ErrorCode.PATH_INVALID, `paths are relative to ${root}: drop the leading "/"`)
    }
    const normal = normalisePath(input === '' ? root : `${root}/${input}`, root)
    if (!normal.ok) throw new CordonError(ErrorCode.PATH_INVALID, `the path ${normal.message}`)
    if (normal.path !== root && !normal.path.startsWith(`${root}/`)) {
      throw new CordonError(ErrorCode.PATH_INVALID, `the path leaves ${root}`)
    }
    return normal.path
  }

  #error(failure: FileFailure, path: string): CordonError {
    const shown = `"${path.slice(0, 200)}"`
    switch (failure.code) {
      case 'NOT_FOUND':
        return new CordonError(ErrorCode.FILE_NOT_FOUND, `no file or directory ${shown}`)
      case 'NOT_DIRECTORY':
        return new CordonError(ErrorCode.NOT_DIRECTORY, `${shown} or one of its parents is a file`)
      case 'IS_DIRECTORY':
        return new CordonError(ErrorCode.IS_DIRECTORY, `${shown} is a directory`)
      case 'NOT_EMPTY':
        return new CordonError(ErrorCode.NOT_EMPTY, `${shown} is not empty; add ?recursive=true`)
      case 'ROOT':
      case 'DENIED':
        return new CordonError(ErrorCode.BAD_REQUEST, `${shown} cannot be removed`)
      case 'NAME_TOO_LONG':
        return new CordonError(ErrorCode.PATH_INVALID, `a name may hold at most ${FILE_NAME_MAX_BYTES} bytes`)
      case 'FILE_TOO_LARGE':
        return new CordonError(
          ErrorCode.FILE_TOO_LARGE,
          `a file may hold at most ${this.#store.files.maxFileBytes} bytes`,
        )
      case 'QUOTA_EXCEEDED':
        return new CordonError(
          ErrorCode.QUOTA_EXCEEDED,
          failure.reason === 'BYTES'
            ? `the agent's filesystem quota of ${this.#profile.filesystem.quotaBytes} bytes would be exceeded (${failure.usage.bytes} used)`
            : `the agent's filesystem may hold at most ${SPACE_MAX_ENTRIES} files and directories`,
        )
    }
  }

  #audit(
    kind: string,
    decision: AuditDecision,
    code: string,
    detail: { [key: string]: string | number },
  ): void {
    this.#store.audit.append(this.#tenant, {
      kind,
      agent: this.#agent,
      execution: null,
      decision,
      code,
      rule: null,
      detail,
    })
  }
}
