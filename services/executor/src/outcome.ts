import type { GuestError, RunOutcome } from '@cordon/contracts'

/** An outcome without a result or output: a job answered by the host (refused, cancelled, killed). */
export function outcomeOf(status: RunOutcome['status'], error: GuestError): RunOutcome {
  return {
    status,
    result: null,
    stdout: '',
    stderr: '',
    error,
    usage: { cpuMs: 0, wallMs: 0, memoryBytes: 0 },
  }
}
