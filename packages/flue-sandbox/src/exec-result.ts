/** What `exec` resolves with (Flue's `ShellResult`). */
export interface ShellResult {
  stdout: string
  stderr: string
  exitCode: number
}

/** The part of Cordon's execution record that `exec` reads. */
export interface ExecutionRecord {
  id: string
  status: 'ok' | 'error' | 'timeout' | 'memory_limit' | 'output_limit' | 'killed'
  stdout: string
  stderr: string
  error: { code: string; message: string } | null
  exitCode?: number | null
  usage?: { wallMs: number }
}

/** The statuses after which Cordon ends the session's sandbox (its /workspace with it). */
export const ENDING_STATUSES: ReadonlySet<ExecutionRecord['status']> = new Set([
  'timeout',
  'memory_limit',
  'killed',
])

const SIGNALS: Readonly<Record<string, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGXCPU: 24,
  SIGXFSZ: 25,
}

/**
 * A record as a shell's result: the command's own exit status when it exited, 128 + the signal
 * when one ended it (the shell convention), 124 when a Cordon time limit stopped it (timeout(1)'s
 * convention), 137 when Cordon killed it (memory, cancellation), and 1 when its output passed the
 * profile's budget. Whatever was not the command's own doing is said on stderr, after its output.
 */
export function shellResult(record: ExecutionRecord, notes: readonly string[] = []): ShellResult {
  const said = [...notes]
  const cordon = (note: string) => said.unshift(note)
  const message = record.error?.message ?? record.status
  let exitCode: number
  switch (record.status) {
    case 'ok':
      exitCode = record.exitCode ?? 0
      break
    case 'error':
      if (record.error?.code === 'EXIT_NONZERO' && typeof record.exitCode === 'number') {
        exitCode = record.exitCode
      } else if (record.error?.code === 'KILLED_BY_SIGNAL' || record.error?.code === 'FILE_SIZE_LIMIT') {
        const signal = /SIG[A-Z0-9]+/.exec(message)?.[0]
        exitCode = 128 + (SIGNALS[signal ?? ''] ?? (record.error.code === 'FILE_SIZE_LIMIT' ? 25 : 0))
        if (exitCode === 128) exitCode = 1
        cordon(message)
      } else {
        exitCode = 1
        cordon(message)
      }
      break
    case 'timeout':
      exitCode = 124
      cordon(`${message}: Cordon stopped the command`)
      break
    case 'output_limit':
      exitCode = 1
      cordon(`${message}: Cordon stopped the command at the profile's outputBytes`)
      break
    default:
      exitCode = 137
      cordon(`${message}: Cordon killed the command`)
  }
  return { stdout: record.stdout, stderr: withNotes(record.stderr, said), exitCode }
}

/** stderr with Cordon's notes appended, one `cordon: ...` line each. */
export function withNotes(stderr: string, notes: readonly string[]): string {
  if (notes.length === 0) return stderr
  const lead = stderr === '' || stderr.endsWith('\n') ? stderr : `${stderr}\n`
  return `${lead}${notes.map((note) => `cordon: ${note}\n`).join('')}`
}
