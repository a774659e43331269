import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import type * as IVM from 'isolated-vm'
import { failure, replyJSON } from '../../bridge/bridge.ts'
import { MIN_ISOLATE_MEMORY_MB } from '../../limits.ts'
import { ENTRY_MODULE, ISOLATE_GLUE, PROBE_MODULE, SETUP_MODULE } from './isolate-glue.ts'

// isolated-vm is a native CommonJS addon: loaded with require, and only by processes that run guests.
const ivm = createRequire(import.meta.url)('isolated-vm') as typeof IVM

/** The glue as a script whose value is its factory (parameters `$0`..`$4`, see `ISOLATE_GLUE`). */
const GLUE_SCRIPT = `(function ($0, $1, $2, $3, $4) {\n${ISOLATE_GLUE}\n})`

/**
 * V8's code cache for the glue, produced by this process from its own constant source on the first
 * compile and used for every later isolate (compiling the glue drops from about 1.3 ms to 0.4 ms).
 * Never anything a client supplied: the cache is made right after compiling the constant source in a
 * fresh isolate, before any code runs, and never leaves the process. V8 checks a cache against the
 * source's length, its own version and flags (a rejected one is produced afresh on the next compile).
 */
let glueCache: IVM.ExternalCopy<ArrayBuffer> | undefined

/** What isolated-vm sets on a compiled script besides its typings (`cachedDataRejected`). */
type CompiledScript = IVM.Script & IVM.CachedDataResult & { cachedDataRejected?: boolean }

function compileGlue(isolate: IVM.Isolate): IVM.Script {
  const filename = 'cordon:glue.js'
  if (glueCache === undefined) {
    const script = isolate.compileScriptSync(GLUE_SCRIPT, {
      filename,
      produceCachedData: true,
    }) as CompiledScript
    glueCache = script.cachedData
    return script
  }
  const script = isolate.compileScriptSync(GLUE_SCRIPT, { filename, cachedData: glueCache }) as CompiledScript
  if (script.cachedDataRejected === true) glueCache = undefined
  return script
}

/** What the glue's host functions hand to the run in progress. */
export interface GlueSession {
  /** Appends console text; answers bytes of budget left, negative once the budget is exhausted. */
  write(stream: 'stdout' | 'stderr', text: string): number
  /** A binding call: reply JSON text now, or a call id whose reply comes later through `deliver`. */
  call(kind: unknown, op: unknown, argsJSON: unknown): string | number
  /** UTF-8 text of a reply body, or null when it is not one the host will decode. */
  decode(body: unknown): string | null
  /** The guest's outcome, reported once by the glue's `done`. */
  report(kind: unknown, text: unknown): void
}

/**
 * One V8 isolate with a fresh context, the glue compiled in it and the two glue modules (setup and
 * entry) compiled: everything an execution needs before the guest's code, made ahead of time. It
 * serves exactly one execution and is then disposed: no tenant, agent or execution ever sees an
 * isolate another one used.
 *
 * The guest reaches the host only through the four `Callback`s held in the glue's closure; the host
 * holds `Reference`s to the glue's `begin` and `deliver` and never hands a `Reference`,
 * `ExternalCopy` or the `ivm` module to the guest. Every host callback catches its own errors and
 * answers plain values, so no host error (with its host stack) is ever thrown into the guest.
 */
export class PreparedIsolate {
  readonly isolate: IVM.Isolate
  readonly context: IVM.Context
  readonly memoryMb: number
  readonly setup: IVM.Module
  readonly entry: IVM.Module
  readonly #begin: IVM.Reference
  readonly #deliver: IVM.Reference
  #session: GlueSession | null = null
  #lost: string | null = null
  #onLost: ((reason: string) => void) | null = null

  constructor(memoryMb: number) {
    this.memoryMb = memoryMb
    this.isolate = new ivm.Isolate({
      memoryLimit: Math.max(MIN_ISOLATE_MEMORY_MB, memoryMb),
      // V8 ran out of heap where isolated-vm's limit did not catch it first: isolated-vm parks the
      // isolate's thread for good instead of aborting the process, and says so here.
      onCatastrophicError: (message: string) => {
        this.#lost = String(message)
        this.#onLost?.(this.#lost)
      },
    })
    try {
      this.context = this.isolate.createContextSync()
      const key = `cordon:${randomBytes(16).toString('hex')}`
      const session = () => this.#session
      const write = new ivm.Callback((stream: unknown, text: unknown) => {
        try {
          const current = session()
          if (current === null || typeof text !== 'string') return -1
          return current.write(stream === 2 ? 'stderr' : 'stdout', text)
        } catch {
          return -1
        }
      })
      const call = new ivm.Callback((kind: unknown, op: unknown, args: unknown) => {
        try {
          const current = session()
          if (current === null) return replyJSON(failure('INVALID_STATE', 'no run in progress'), undefined)
          return current.call(kind, op, args)
        } catch {
          return replyJSON(failure('BINDING_FAILED', 'the binding failed'), undefined)
        }
      })
      const decode = new ivm.Callback((body: unknown) => {
        try {
          return session()?.decode(body) ?? null
        } catch {
          return null
        }
      })
      const report = new ivm.Callback((kind: unknown, text: unknown) => {
        try {
          session()?.report(kind, text)
        } catch {
          // The run classifies a missing report; nothing here may reach the guest.
        }
      })
      const factory = compileGlue(this.isolate).runSync(this.context, { reference: true }) as IVM.Reference
      const glue = factory.applySync(undefined, [write, call, decode, report, key], {
        result: { reference: true },
      }) as IVM.Reference
      factory.release()
      this.#begin = glue.getSync('begin', { reference: true }) as IVM.Reference
      this.#deliver = glue.getSync('deliver', { reference: true }) as IVM.Reference
      glue.release()
      this.setup = this.isolate.compileModuleSync(SETUP_MODULE.replaceAll('%KEY%', JSON.stringify(key)), {
        filename: 'cordon:setup',
      })
      this.entry = this.isolate.compileModuleSync(ENTRY_MODULE, { filename: 'cordon:entry' })
    } catch (error) {
      this.dispose()
      throw error
    }
  }

  /**
   * Starts the one execution this isolate serves: `input`, the granted bindings, the output budget.
   * `onLost` hears of a catastrophic failure (the isolate's thread is then parked for good).
   */
  begin(
    session: GlueSession,
    inputJSON: string,
    grantsJSON: string,
    outputBytes: number,
    onLost: (reason: string) => void,
  ): void {
    this.#session = session
    this.#onLost = onLost
    this.#begin.applySync(undefined, [inputJSON, grantsJSON, outputBytes], { timeout: 1000 })
  }

  /** Settles a pending call's promise in the guest (a task of its own, run on the isolate's thread). */
  deliver(
    id: number,
    replyJSON: string,
    bytesId: number | undefined,
    body: ArrayBuffer | undefined,
  ): Promise<unknown> {
    return this.#deliver.apply(undefined, [id, replyJSON, bytesId, body], { arguments: { copy: true } })
  }

  /** A module that imports the guest's module again (see `PROBE_MODULE`). */
  compileProbe(): Promise<IVM.Module> {
    return this.isolate.compileModule(PROBE_MODULE, { filename: 'cordon:probe' })
  }

  /** Ends the session; host callbacks made later answer nothing. */
  end(): void {
    this.#session = null
    this.#onLost = null
  }

  /** Why the isolate was lost to a catastrophic error, or null. Its thread never returns then. */
  get lost(): string | null {
    return this.#lost
  }

  get disposed(): boolean {
    return this.isolate.isDisposed
  }

  /** Disposes the isolate (terminating whatever runs in it, where V8 can interrupt it). */
  dispose(): void {
    this.#session = null
    // A parked thread holds the isolate's lock: disposing would wait for it forever.
    if (this.#lost !== null) return
    // The host-side handles first: each holds memory of its own until released.
    for (const handle of [this.#begin, this.#deliver, this.setup, this.entry, this.context]) {
      try {
        handle?.release()
      } catch {
        // Released with the isolate already.
      }
    }
    try {
      if (!this.isolate.isDisposed) this.isolate.dispose()
    } catch {
      // Already disposed by isolated-vm (memory limit).
    }
  }
}

export type { IVM }

export { MIN_ISOLATE_MEMORY_MB }
