import type { Sandbox, SandboxHost, SandboxShape } from './sandbox.ts'

/** Workspace sizes the pool keeps sandboxes for at once; a new size evicts the least recently used. */
const MAX_SHAPES = 4
/** Limits a pooled sandbox waits under, until a job gives it its own. */
const IDLE_MEMORY_BYTES = 32 * 1024 * 1024
const IDLE_PROCESSES = 4
/** After a failed start, the pool stops refilling for this long (the job path still starts its own). */
const RETRY_AFTER_MS = 5000

/**
 * Sandboxes started ahead of time, so that a short command pays neither namespaces nor cgroup set-up
 * nor the init's start on the request path. A sandbox is used for one execution and then destroyed,
 * never returned: the pool only moves its start earlier. Kept per workspace shape (a tmpfs of a given
 * size, or no workspace); read-only workspaces are staged per job and never pooled.
 */
export class SandboxPool {
  readonly #host: SandboxHost
  readonly #size: number
  readonly #ready = new Map<string, Sandbox[]>()
  readonly #starting = new Map<string, number>()
  readonly #inflight = new Set<Promise<void>>()
  #pausedUntil = 0
  #closed = false

  constructor(host: SandboxHost, size: number) {
    this.#host = host
    this.#size = size
  }

  /**
   * A started sandbox of this shape with the job's limits set: a pooled one when one is ready (and the
   * pool refills behind it), else one started now.
   */
  async take(shape: SandboxShape): Promise<Sandbox> {
    const key = keyOf(shape)
    if (key === null || this.#size === 0) return this.#host.start(shape)
    const ready = this.#ready.get(key) ?? []
    // Most recently used shape last, so eviction takes the least recently used.
    this.#ready.delete(key)
    this.#ready.set(key, ready)
    this.#evict()
    let sandbox = ready.shift()
    while (sandbox !== undefined && !sandbox.alive) {
      void sandbox.destroy()
      sandbox = ready.shift()
    }
    if (sandbox === undefined) return this.#host.start(shape)
    sandbox.limit(shape.memoryBytes, shape.processes)
    return sandbox
  }

  /** Destroys every pooled sandbox; the pool starts no more. */
  async close(): Promise<void> {
    this.#closed = true
    const all = [...this.#ready.values()].flat()
    this.#ready.clear()
    // Sandboxes still starting are destroyed as soon as they are up.
    await Promise.all([...all.map((sandbox) => sandbox.destroy()), ...this.#inflight])
  }

  get readyCount(): number {
    return [...this.#ready.values()].reduce((sum, list) => sum + list.length, 0)
  }

  /**
   * Starts sandboxes of this shape until the pool holds its size. Called once a job is done, not when
   * it takes its sandbox: starting one costs a fork of this process and the init's start, which would
   * otherwise compete with the job for the CPU.
   */
  refill(shape: SandboxShape): void {
    const key = keyOf(shape)
    if (key === null || this.#size === 0 || !this.#ready.has(key)) return
    this.#refill(key, shape)
  }

  #refill(key: string, shape: SandboxShape): void {
    if (this.#closed || Date.now() < this.#pausedUntil) return
    const have = (this.#ready.get(key)?.length ?? 0) + (this.#starting.get(key) ?? 0)
    for (let i = have; i < this.#size; i++) {
      this.#starting.set(key, (this.#starting.get(key) ?? 0) + 1)
      const started = this.#host
        .start({ ...shape, memoryBytes: IDLE_MEMORY_BYTES, processes: IDLE_PROCESSES })
        .then(
          async (sandbox) => {
            const list = this.#ready.get(key)
            if (this.#closed || list === undefined) await sandbox.destroy()
            else list.push(sandbox)
          },
          () => {
            this.#pausedUntil = Date.now() + RETRY_AFTER_MS
          },
        )
        .finally(() => {
          this.#inflight.delete(started)
          const left = (this.#starting.get(key) ?? 1) - 1
          if (left === 0) this.#starting.delete(key)
          else this.#starting.set(key, left)
        })
      this.#inflight.add(started)
    }
  }

  #evict(): void {
    while (this.#ready.size > MAX_SHAPES) {
      const [oldest, list] = this.#ready.entries().next().value as [string, Sandbox[]]
      this.#ready.delete(oldest)
      for (const sandbox of list) void sandbox.destroy()
    }
  }
}

/** The pool's key for a shape, or null when sandboxes of that shape cannot be started ahead. */
function keyOf(shape: SandboxShape): string | null {
  if (shape.workspace === null) return `none/${shape.tmpBytes}`
  if (shape.workspace.kind === 'tmpfs') return `tmpfs:${shape.workspace.bytes}/${shape.tmpBytes}`
  return null
}
