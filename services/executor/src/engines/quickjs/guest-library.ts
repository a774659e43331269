/**
 * The guest library: `describe(error)` (name, message and the start of the stack, each bounded, every
 * getter guarded) and `format(args)` (a Node-like `inspect` for a few levels). Compiled into the image
 * with the intrinsics the host captured before any user code as parameters.
 * (It still uses a few built-ins the guest may patch, such as `Math.min` or `Array.prototype.join`:
 * that changes only the guest's own console text; the host re-checks type and length of all it reads.)
 */
export const GUEST_LIBRARY = `(function (J, S, isArray, keys, protoOf, ErrorProto, create) {
'use strict'
const MAX_DEPTH = 4, MAX_ITEMS = 100
// Captured now, before any user code: a guest that replaces String.prototype.slice must not make the
// host read its whole text.
const sliceOf = S.prototype.slice, apply = Reflect.apply
const str = (v, n) => { try { return apply(sliceOf, S(v), [0, n]) } catch (_) { return '' } }
// A null-prototype copy: JSON.stringify must not find a toJSON the guest put on Object.prototype.
const plain = (fields) => { const o = create(null); o.name = fields.name; o.message = fields.message; if (fields.stack !== undefined) o.stack = fields.stack; return o }
const describe = (e) => {
  if (e !== null && (typeof e === 'object' || typeof e === 'function')) {
    let name = 'Error', message = '', stack = ''
    try { name = str(e.name, 200) } catch (_) {}
    try { message = str(e.message, 4000) } catch (_) {}
    try { stack = str(e.stack, 200) } catch (_) {}
    return plain({ name, message, stack })
  }
  return plain({ name: e === null ? 'null' : 'Error', message: str(e, 4000) })
}
const safe = (v) => { try { return S(v) } catch (_) { return '[unprintable]' } }
const isError = (v) => { try { for (let p = protoOf(v); p !== null; p = protoOf(p)) if (p === ErrorProto) return true } catch (_) {} return false }
const inspect = (value, depth, seen) => {
  switch (typeof value) {
    case 'string': return depth === 0 ? value : J(value)
    case 'function': return '[Function' + (value.name ? ': ' + safe(value.name) : '') + ']'
    case 'bigint': return safe(value) + 'n'
    case 'object': break
    default: return safe(value)
  }
  if (value === null) return 'null'
  if (isError(value)) { const d = describe(value); return d.message ? d.name + ': ' + d.message : d.name }
  if (seen.includes(value)) return '[Circular]'
  if (depth >= MAX_DEPTH) return isArray(value) ? '[Array]' : '[Object]'
  seen.push(value)
  const parts = []
  let out
  if (isArray(value)) {
    const n = Math.min(value.length, MAX_ITEMS)
    for (let i = 0; i < n; i++) parts.push(inspect(value[i], depth + 1, seen))
    if (value.length > n) parts.push('... ' + (value.length - n) + ' more items')
    out = '[ ' + parts.join(', ') + ' ]'
  } else {
    const k = keys(value), n = Math.min(k.length, MAX_ITEMS)
    for (let i = 0; i < n; i++) parts.push(k[i] + ': ' + inspect(value[k[i]], depth + 1, seen))
    if (k.length > n) parts.push('... ' + (k.length - n) + ' more keys')
    out = parts.length === 0 ? '{}' : '{ ' + parts.join(', ') + ' }'
  }
  seen.pop()
  return out
}
const format = (...args) => {
  const parts = []
  for (let i = 0; i < args.length; i++) {
    try { parts.push(inspect(args[i], 0, [])) } catch (e) { parts.push('[unprintable: ' + describe(e).message + ']') }
  }
  return parts.join(' ') + '\\n'
}
return { describe, format }
})`

/**
 * The parameters of `GUEST_LIBRARY`, in order: `[global, property]` (null: the global itself), read
 * from the fresh context before any user code runs.
 */
export const GUEST_LIBRARY_INTRINSICS = [
  ['JSON', 'stringify'],
  ['String', null],
  ['Array', 'isArray'],
  ['Object', 'keys'],
  ['Object', 'getPrototypeOf'],
  ['Error', 'prototype'],
  ['Object', 'create'],
] as const
