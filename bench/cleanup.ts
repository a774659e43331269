/** One thing to undo: `run` awaits it; `runSync` is the last resort when nothing can be awaited. */
export interface CleanupTask {
  name: string
  run(): Promise<void>
  runSync(): void
}

/**
 * Undoes what the bench set up (child processes, temp dir), last in first out, each task at most
 * once, on success, failure or interrupt. A failing task is reported and the others still run.
 */
export class Cleanup {
  readonly #tasks: CleanupTask[] = []
  readonly #done = new Set<CleanupTask>()

  add(task: CleanupTask): void {
    this.#tasks.push(task)
  }

  async run(): Promise<void> {
    for (const task of [...this.#tasks].reverse()) {
      if (this.#done.has(task)) continue
      this.#done.add(task)
      try {
        await task.run()
      } catch (error) {
        console.error(`bench: cleanup of ${task.name} failed: ${message(error)}`)
      }
    }
  }

  /** For `process.on('exit')` and a second Ctrl-C: synchronous, best effort. */
  runSync(): void {
    for (const task of [...this.#tasks].reverse()) {
      if (this.#done.has(task)) continue
      this.#done.add(task)
      try {
        task.runSync()
      } catch (error) {
        console.error(`bench: cleanup of ${task.name} failed: ${message(error)}`)
      }
    }
  }
}

export function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
