import type { JsonValue } from '@cordon/contracts'
import { type CheckedPath, decideFile, type FileOperation, ruleRef } from '@cordon/policy'
import { FILE_MAX_BYTES, type FileFailure, SPACE_MAX_ENTRIES } from '../storage/file-store.ts'
import {
  auditText,
  type BindingContext,
  type Handled,
  type LocalBindingHandler,
  refused,
} from './binding-context.ts'

/** Most bytes one `readFile` answers (every file is at most this large). */
export const FS_MAX_READ_BYTES = FILE_MAX_BYTES

const OPERATION: ReadonlyMap<string, FileOperation> = new Map([
  ['readFile', 'read'],
  ['writeFile', 'write'],
  ['readdir', 'list'],
  ['stat', 'stat'],
  ['rm', 'delete'],
])

type Detail = { [key: string]: JsonValue }

/**
 * The `fs` binding: the execution's virtual filesystem (`context.fileSpace`), rooted at `/workspace`.
 * Every call's path is decided by the profile (`read`, `write`, `list`, `stat`, `delete`) and only
 * the checked path, normalised and NFC, is used after that. `readdir` answers only the entries the
 * profile lets the guest read; a recursive `rm` removes nothing unless the profile lets the guest
 * delete every entry below. Writes are held to the profile's `quotaBytes`, the store's entry limit
 * and its 4 MiB per file, each checked with the write in one transaction. The audit detail holds the
 * path (at most 200 characters) and sizes, never file content.
 */
export const fsBinding: LocalBindingHandler = (context, op, args) => {
  // A call that arrives after its execution ended must not write into a scratch space already dropped.
  if (context.signal.aborted) return refused('ABORTED', 'the execution ended', { decision: 'error' })
  const operation = OPERATION.get(op)
  if (operation === undefined) return refused('INVALID_ARGUMENT', `fs has no operation "${op.slice(0, 32)}"`)
  const input = args[0]
  if (typeof input !== 'string') return refused('INVALID_ARGUMENT', `fs.${op}: the path must be a string`)
  const decision = decideFile(context.profile, input, operation)
  if (decision.effect === 'deny') {
    return refused('FS_DENIED', decision.message, {
      reason: decision.code,
      rule: decision.rule,
      detail: { path: auditText(input) },
    })
  }
  const checked = decision.path
  const call: Call = { context, checked, rule: decision.rule, detail: { path: auditText(checked.path) } }
  switch (checked.operation) {
    case 'read':
      return readFile(call)
    case 'write':
      return writeFile(call, args)
    case 'list':
      return readdir(call)
    case 'stat':
      return stat(call)
    case 'delete':
      return rm(call, args)
  }
}

/**
 * A path as the audit log shows it: at most 200 characters, with control and format characters
 * (a refused path may hold U+202E to reorder what an operator reads) and lone surrogates escaped.
 */

interface Call {
  context: BindingContext
  checked: CheckedPath
  /** The profile rule that allowed the path. */
  rule: string
  detail: Detail
}

function allowed(
  call: Call,
  value: JsonValue,
  extra: { bytes?: string; sent?: number; detail?: Detail } = {},
) {
  return {
    reply: { ok: true, value, ...(extra.bytes === undefined ? {} : { bytes: extra.bytes }) },
    decision: 'allow',
    code: 'ALLOWED',
    rule: call.rule,
    bytes: extra.sent ?? 0,
    detail: { ...call.detail, ...extra.detail },
  } satisfies Handled
}

function readFile(call: Call): Handled {
  const { tenant, fileSpace, store } = call.context
  // Sizes are checked before anything is read: a refused read costs the host one lookup.
  const size = store.files.stat(tenant, fileSpace, call.checked.path)?.size ?? 0
  if (size > call.context.replyBudget.bytes && size <= FS_MAX_READ_BYTES) {
    return refused('REPLY_TOO_LARGE', "the bodies of this execution's binding calls exceed their budget", {
      decision: 'error',
      detail: { ...call.detail, size },
    })
  }
  const read = store.files.read(tenant, fileSpace, call.checked.path)
  if (!read.ok) return failed(call, read)
  if (read.data.byteLength > FS_MAX_READ_BYTES) {
    return refused('FILE_TOO_LARGE', `a read answers at most ${FS_MAX_READ_BYTES} bytes`, {
      decision: 'error',
      detail: call.detail,
    })
  }
  const budget = call.context.replyBudget
  if (read.data.byteLength > budget.bytes) {
    return refused('REPLY_TOO_LARGE', "the bodies of this execution's binding calls exceed their budget", {
      decision: 'error',
      detail: { ...call.detail, size: read.data.byteLength },
    })
  }
  budget.bytes -= read.data.byteLength
  const bytes = Buffer.from(read.data.buffer, read.data.byteOffset, read.data.byteLength).toString('base64')
  return allowed(call, null, { bytes, detail: { size: read.data.byteLength } })
}

function writeFile(call: Call, args: JsonValue[]): Handled {
  const data = content(args)
  if (typeof data === 'string')
    return refused('INVALID_ARGUMENT', `fs.writeFile: ${data}`, { detail: call.detail })
  const { tenant, fileSpace, store, profile } = call.context
  const quota = profile.filesystem.quotaBytes
  const written = store.files.write(tenant, fileSpace, call.checked.path, data, quota)
  const detail = { size: data.byteLength }
  if (!written.ok) return failed(call, written, data.byteLength)
  return allowed(call, null, { sent: data.byteLength, detail: { ...detail, created: written.created } })
}

/** The bytes to write: `[path, text]` (UTF-8) or `[path, null, byteString]` (one char 0-255 a byte). */
function content(args: JsonValue[]): Uint8Array | string {
  const [, text, binary] = args
  if (typeof text === 'string' && binary === undefined) return Buffer.from(text, 'utf8')
  if (text === null && typeof binary === 'string') {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: a byte string holds every byte value
    if (!/^[\u0000-\u00ff]*$/.test(binary)) return 'binary data must hold one byte (0-255) per character'
    return Buffer.from(binary, 'latin1')
  }
  return 'the data must be a string or bytes'
}

function readdir(call: Call): Handled {
  const { tenant, fileSpace, store, profile } = call.context
  const listed = store.files.list(tenant, fileSpace, call.checked.path)
  if (!listed.ok) return failed(call, listed)
  // Entries the guest may not read are left out, never counted: it learns nothing of them.
  const names = listed.entries
    .map((entry) => entry.name)
    .filter((name) => decideFile(profile, `${call.checked.path}/${name}`, 'read').effect === 'allow')
  return allowed(call, names, {
    detail: { entries: names.length, hidden: listed.entries.length - names.length },
  })
}

function stat(call: Call): Handled {
  const { tenant, fileSpace, store } = call.context
  const info = store.files.stat(tenant, fileSpace, call.checked.path)
  if (info === null) return failed(call, { ok: false, code: 'NOT_FOUND' })
  return allowed(call, { type: info.type, size: info.size, mtime: info.mtime })
}

function rm(call: Call, args: JsonValue[]): Handled {
  const recursive = args[1] ?? false
  if (typeof recursive !== 'boolean') {
    return refused('INVALID_ARGUMENT', 'fs.rm: recursive must be true or false', { detail: call.detail })
  }
  const { tenant, fileSpace, store, profile } = call.context
  // Whatever lies below must be deletable one by one: a recursive rm reaches no further than that.
  const allow = (path: string) => decideFile(profile, path, 'delete').effect === 'allow'
  const removed = store.files.remove(tenant, fileSpace, call.checked.path, { recursive, allow })
  if (!removed.ok) return failed(call, removed)
  return allowed(call, null, { detail: { removed: removed.removed, size: removed.bytes } })
}

/** A store failure as the guest sees it. Policy refusals are `deny`, the rest `error`. */
function failed(call: Call, failure: FileFailure, sent = 0): Handled {
  const path = call.checked.path.slice(0, 200)
  const options = { decision: 'error' as const, bytes: sent, detail: call.detail }
  switch (failure.code) {
    case 'NOT_FOUND':
      return refused('NOT_FOUND', `no such file or directory: "${path}"`, options)
    case 'NOT_DIRECTORY':
      return refused('NOT_DIRECTORY', `"${path}" or one of its parents is a file, not a directory`, options)
    case 'IS_DIRECTORY':
      return refused('IS_DIRECTORY', `"${path}" is a directory`, options)
    case 'NOT_EMPTY':
      return refused(
        'NOT_EMPTY',
        `"${path}" is not empty; pass { recursive: true } to remove it all`,
        options,
      )
    case 'ROOT':
      return refused('INVALID_ARGUMENT', `the root "${path}" cannot be removed`, options)
    case 'NAME_TOO_LONG':
      return refused('INVALID_ARGUMENT', 'a file or directory name may hold at most 255 bytes', {
        ...options,
        reason: 'NAME_TOO_LONG',
      })
    case 'FILE_TOO_LARGE':
      return refused(
        'FILE_TOO_LARGE',
        `a file may hold at most ${call.context.store.files.maxFileBytes} bytes`,
        {
          ...options,
          decision: 'deny',
        },
      )
    case 'QUOTA_EXCEEDED': {
      const { profile } = call.context
      const limit =
        failure.reason === 'BYTES'
          ? `the filesystem's quota of ${profile.filesystem.quotaBytes} bytes`
          : `the filesystem's limit of ${SPACE_MAX_ENTRIES} files and directories`
      return refused('QUOTA_EXCEEDED', `${limit} would be exceeded`, {
        ...options,
        decision: 'deny',
        reason: failure.reason,
        rule: failure.reason === 'BYTES' ? ruleRef(profile, '/filesystem/quotaBytes') : null,
        detail: { ...call.detail, usedBytes: failure.usage.bytes, usedEntries: failure.usage.entries },
      })
    }
    case 'DENIED': {
      // The entry the profile refused: say why, in the policy's own words.
      const denial = decideFile(call.context.profile, failure.path, 'delete')
      const reason = denial.effect === 'deny' ? denial : null
      return refused('FS_DENIED', `"${path}" holds entries the profile does not let you delete`, {
        ...options,
        decision: 'deny',
        ...(reason === null ? {} : { reason: reason.code, rule: reason.rule }),
      })
    }
  }
}
