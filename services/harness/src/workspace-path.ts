import { CordonError, ErrorCode } from '@cordon/contracts'
import { FILESYSTEM_ROOT, normalisePath } from '@cordon/policy'

/**
 * A path a client gave for a container sandbox's workspace, normalised by the policy's rules (the fs
 * binding's), relative to `/workspace` as the sandbox's init takes it; PATH_INVALID naming `what` when
 * it is malformed or names nothing under `/workspace`.
 */
export function workspacePath(input: string, what: string): string {
  const normalised = normalisePath(input, FILESYSTEM_ROOT)
  if (!normalised.ok || !normalised.path.startsWith(`${FILESYSTEM_ROOT}/`)) {
    throw new CordonError(
      ErrorCode.PATH_INVALID,
      `${what} must name something under ${FILESYSTEM_ROOT}${normalised.ok ? '' : ` (${normalised.message})`}`,
    )
  }
  return normalised.path.slice(FILESYSTEM_ROOT.length + 1)
}
