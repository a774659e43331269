/**
 * The messages a sandbox's init sends on its control socket, read as untrusted input: the init runs
 * as the sandbox's user, beside the code it runs, so everything it says is checked here (shape,
 * encodings, names and sizes) before the host acts on it. A message that fails is a sandbox lost,
 * never an exception in the worker.
 */

export interface CollectedFileMessage {
  path: string
  size: number
  data?: string
  omitted?: 'size' | 'count' | 'name'
}

/** An entry of a workspace directory, as a session's file listing answers it. */
export interface WorkspaceEntry {
  name: string
  type: 'file' | 'directory' | 'other'
  size: number
}

/** Answers to a session's file operations. */
export type FileReply =
  | { t: 'file'; size: number; data: Buffer }
  | { t: 'entries'; entries: WorkspaceEntry[] }
  | { t: 'done'; created: boolean }
  | { t: 'error'; code: string; message: string }

export type InitMessage =
  | FileReply
  | { t: 'ready' }
  | { t: 'out'; fd: 1 | 2; data: Buffer }
  | {
      t: 'exit'
      code: number | null
      signal: number | null
      output: 'ok' | 'limit'
      files: CollectedFileMessage[]
      result: string | null
      resultTooLarge: boolean
    }

/** What one execution's answer may hold at most (its collection limits and result size). */
export interface ExitBounds {
  maxFiles: number
  maxFileBytes: number
  maxTotalBytes: number
  resultBytes: number
}

/** Files past the count limit the init may name (see sandbox-init.py's OMITTED_NAMED). */
const OMITTED_NAMED = 16
const MAX_PATH_LENGTH = 1024
/** Entries one listing answers at most (the init stops there). */
export const MAX_ENTRIES = 1000
// biome-ignore lint/suspicious/noControlCharactersInRegex: replacing control characters is the point
const CONTROL_GLOBAL = /[\u0000-\u001f\u007f-\u009f]/g
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

/** Parses and checks one line; answers the message, or why it is refused. */
export function readInitMessage(line: string): InitMessage | { refused: string } {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return { refused: 'a malformed control message' }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { refused: 'a malformed control message' }
  }
  const message = value as Record<string, unknown>
  switch (message.t) {
    case 'ready':
      return { t: 'ready' }
    case 'out': {
      const data = base64(message.data)
      if ((message.fd !== 1 && message.fd !== 2) || data === null)
        return { refused: 'a malformed output message' }
      return { t: 'out', fd: message.fd, data }
    }
    case 'exit': {
      const { code, signal, output, files, result, resultTooLarge } = message
      const status = (n: unknown) =>
        n === null || (Number.isInteger(n) && (n as number) >= 0 && (n as number) < 256)
      if (
        !status(code) ||
        !status(signal) ||
        (output !== 'ok' && output !== 'limit') ||
        !Array.isArray(files) ||
        (result !== null && typeof result !== 'string') ||
        typeof resultTooLarge !== 'boolean'
      ) {
        return { refused: 'a malformed exit message' }
      }
      const checked: CollectedFileMessage[] = []
      for (const file of files as unknown[]) {
        const entry = collectedFile(file)
        if (entry === null) return { refused: 'a malformed file in the exit message' }
        checked.push(entry)
      }
      return {
        t: 'exit',
        code: code as number | null,
        signal: signal as number | null,
        output,
        files: checked,
        result: result as string | null,
        resultTooLarge,
      }
    }
    case 'file': {
      const data = base64(message.data)
      if (data === null || message.size !== data.length) return { refused: 'a malformed file message' }
      return { t: 'file', size: data.length, data }
    }
    case 'entries': {
      if (!Array.isArray(message.entries) || message.entries.length > MAX_ENTRIES) {
        return { refused: 'a malformed listing' }
      }
      const entries: WorkspaceEntry[] = []
      for (const entry of message.entries as unknown[]) {
        const { name, type, size } = (entry ?? {}) as Record<string, unknown>
        if (
          typeof name !== 'string' ||
          !cleanPath(name) ||
          name.includes('/') ||
          (type !== 'file' && type !== 'directory' && type !== 'other') ||
          !Number.isSafeInteger(size) ||
          (size as number) < 0
        ) {
          return { refused: 'a malformed listing' }
        }
        entries.push({ name, type, size: size as number })
      }
      return { t: 'entries', entries }
    }
    case 'done':
      return typeof message.created === 'boolean'
        ? { t: 'done', created: message.created }
        : { refused: 'a malformed answer' }
    case 'error': {
      const { code, message: text } = message
      if (typeof code !== 'string' || !/^[A-Z_]{1,40}$/.test(code) || typeof text !== 'string') {
        return { refused: 'a malformed error' }
      }
      return { t: 'error', code, message: text.slice(0, 300).replace(CONTROL_GLOBAL, ' ') }
    }
    default:
      return { refused: 'an unknown control message' }
  }
}

/**
 * Checks an exit message against the execution's own bounds (the init applies them too; a message
 * beyond them did not come from an init that works as written).
 */
export function exitWithinBounds(message: Extract<InitMessage, { t: 'exit' }>, bounds: ExitBounds): boolean {
  if (message.files.length > bounds.maxFiles + OMITTED_NAMED) return false
  let total = 0
  let inlined = 0
  for (const file of message.files) {
    if (file.data === undefined) continue
    inlined += 1
    const size = decodedLength(file.data)
    if (size !== file.size || size > bounds.maxFileBytes) return false
    total += size
  }
  if (inlined > bounds.maxFiles || total > bounds.maxTotalBytes) return false
  return message.result === null || decodedLength(message.result) <= bounds.resultBytes
}

function collectedFile(value: unknown): CollectedFileMessage | null {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null
  const { path, size, data, omitted } = value as Record<string, unknown>
  if (typeof path !== 'string' || !cleanPath(path)) return null
  if (!Number.isSafeInteger(size) || (size as number) < 0) return null
  if (data !== undefined && (typeof data !== 'string' || !BASE64.test(data) || data.length % 4 !== 0))
    return null
  if (omitted !== undefined && omitted !== 'size' && omitted !== 'count' && omitted !== 'name') return null
  if ((data === undefined) === (omitted === undefined)) return null
  return {
    path,
    size: size as number,
    ...(data === undefined ? {} : { data: data as string }),
    ...(omitted === undefined ? {} : { omitted: omitted as 'size' | 'count' | 'name' }),
  }
}

/** A relative path of clean segments: no empty, `.` or `..` segment, no control character. */
function cleanPath(path: string): boolean {
  if (path.length === 0 || path.length > MAX_PATH_LENGTH || !path.isWellFormed() || CONTROL.test(path))
    return false
  return path.split('/').every((segment) => segment !== '' && segment !== '.' && segment !== '..')
}

function base64(value: unknown): Buffer | null {
  if (typeof value !== 'string' || value.length % 4 !== 0 || !BASE64.test(value)) return null
  return Buffer.from(value, 'base64')
}

function decodedLength(text: string): number {
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0
  return (text.length / 4) * 3 - padding
}
