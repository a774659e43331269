/**
 * The guest side of the binding bridge, compiled into the engine's image before any user code runs.
 * It gets three host functions and the intrinsics it relies on as parameters, captured from the fresh
 * realm, and returns `install(grantsJSON)`, which defines the granted globals (`fetch`, `kv`, `fs`,
 * `tools`, `secrets`) on the guest's global object.
 *
 * Host functions, all taking and returning guest-realm values only:
 * - `call(kind, op, argsJSON)`: a promise (created in the guest realm) that resolves with the reply as
 *   JSON text `{ ok, value | error, bytes? }`; never rejects. Failures become guest `Error`s here.
 * - `take(id)`: the `ArrayBuffer` of a reply's bytes, created in the guest heap (counted against the
 *   guest's memory limit); each id can be taken once.
 * - `decode(buffer)`: the UTF-8 text of an `ArrayBuffer` (malformed sequences become U+FFFD).
 *
 * Binary arguments travel as "byte strings" (one character per byte) inside the JSON arguments.
 * Everything here runs in the guest under its limits; a guest that patches a built-in the shim still
 * uses (a prototype method) changes only what it sees itself: the host re-reads and re-checks every
 * argument from the JSON text.
 */
export const GUEST_API = `(function (call, take, decode, J, P, S, isArray, keys, E, TE, define, freeze, create, AB, U8, isView, fromCharCode, apply, iteratorSymbol, G) {
'use strict'
// A class of its own, so that engines that read an error's constructor (V8's copies) name it too.
class CordonError extends E {}
define(CordonError.prototype, 'name', { value: 'CordonError', writable: true, configurable: true })
const fail = (e) => {
  const error = new CordonError(S(e.code) + ': ' + S(e.message))
  define(error, 'code', { value: S(e.code), enumerable: true, configurable: true })
  if (e.reason !== undefined) define(error, 'reason', { value: S(e.reason), enumerable: true, configurable: true })
  if (e.rule !== undefined) define(error, 'rule', { value: S(e.rule), enumerable: true, configurable: true })
  return error
}
const invoke = async (kind, op, args) => {
  let text
  try { text = J(args) } catch (_) { throw new TE(kind + '.' + op + ': the arguments must be JSON-serialisable') }
  if (typeof text !== 'string') throw new TE(kind + '.' + op + ': the arguments must be JSON-serialisable')
  const reply = await call(kind, op, text)
  if (typeof reply !== 'string') throw fail({ code: 'OUT_OF_MEMORY', message: 'the reply does not fit in the guest memory limit' })
  const r = P(reply)
  if (r.ok !== true) throw fail(r.error)
  return r
}
// Captured now: a guest that patches ArrayBuffer.prototype.slice must not be handed the body itself.
const sliceBuffer = AB.prototype.slice
const bytesOf = (r) => {
  if (typeof r.bytes !== 'number') return new AB(0)
  const buffer = take(r.bytes)
  if (buffer === undefined) throw fail({ code: 'OUT_OF_MEMORY', message: 'the body does not fit in the guest memory limit' })
  return buffer
}
// A byte string: one character (0-255) per byte of an ArrayBuffer or view.
const byteString = (data) => {
  const view = isView(data) ? new U8(data.buffer, data.byteOffset, data.byteLength) : new U8(data)
  let out = ''
  for (let i = 0; i < view.length; i += 8192) out += apply(fromCharCode, null, view.subarray(i, i + 8192))
  return out
}
const isBinary = (v) => v instanceof AB || isView(v)

const headerPairs = (h) => {
  const out = []
  if (h === undefined || h === null) return out
  if (typeof h.entries === 'function' && !isArray(h)) { for (const [k, v] of h.entries()) out.push([S(k), S(v)]); return out }
  if (isArray(h)) { for (const pair of h) out.push([S(pair[0]), S(pair[1])]); return out }
  if (typeof h === 'object') { for (const k of keys(h)) out.push([S(k), S(h[k])]); return out }
  throw new TE('fetch: headers must be an object, a list of pairs or a Headers-like object')
}
const headersView = (pairs) => {
  const lower = (n) => S(n).toLowerCase()
  const all = (n) => { const k = lower(n); const found = []; for (const [a, b] of pairs) if (a === k) found.push(b); return found }
  const view = {
    get(n) { const found = all(n); return found.length === 0 ? null : found.join(', ') },
    has(n) { return all(n).length > 0 },
    entries() { return pairs.map(([a, b]) => [a, b])[iteratorSymbol]() },
    keys() { return pairs.map(([a]) => a)[iteratorSymbol]() },
    values() { return pairs.map(([, b]) => b)[iteratorSymbol]() },
    forEach(fn) { for (const [a, b] of pairs) fn(b, a, view) },
  }
  define(view, iteratorSymbol, { value: view.entries })
  return freeze(view)
}
const response = (value, body) => {
  let text
  const r = {
    status: value.status,
    statusText: value.statusText,
    ok: value.status >= 200 && value.status < 300,
    redirected: value.redirected,
    url: value.url,
    headers: headersView(value.headers),
    async text() { if (text === undefined) text = decode(body); return text },
    async json() { return P(await r.text()) },
    async arrayBuffer() { return apply(sliceBuffer, body, [0]) },
  }
  return freeze(r)
}

const fetchBinding = async (input, init) => {
  const url = S(input !== null && typeof input === 'object' && 'url' in input ? input.url : input)
  const options = init === undefined || init === null ? {} : init
  const request = { url, method: options.method === undefined ? 'GET' : S(options.method), headers: headerPairs(options.headers), redirect: options.redirect === undefined ? 'follow' : S(options.redirect) }
  const body = options.body
  if (body !== undefined && body !== null) {
    if (isBinary(body)) request.bodyBytes = byteString(body)
    else request.body = S(body)
  }
  const r = await invoke('fetch', 'request', [request])
  return response(r.value, bytesOf(r))
}

const kvBinding = freeze({
  async get(key) { return (await invoke('kv', 'get', [key])).value },
  async set(key, value) { await invoke('kv', 'set', [key, value === undefined ? null : value]) },
  async delete(key) { return (await invoke('kv', 'delete', [key])).value },
  async list(prefix, limit) { return (await invoke('kv', 'list', [prefix === undefined ? '' : prefix, limit === undefined ? null : limit])).value },
})

const encodingOf = (options) => {
  if (options === undefined) return 'utf8'
  if (options === null || typeof options === 'string') return options
  return options.encoding === undefined ? 'utf8' : options.encoding
}
const fsBinding = freeze({
  async readFile(path, options) {
    const encoding = encodingOf(options)
    if (encoding !== 'utf8' && encoding !== 'utf-8' && encoding !== null && encoding !== 'binary') throw new TE('fs.readFile: encoding must be "utf8" or null')
    const buffer = bytesOf(await invoke('fs', 'readFile', [path]))
    return encoding === null || encoding === 'binary' ? new U8(buffer) : decode(buffer)
  },
  async writeFile(path, data) {
    const args = isBinary(data) ? [path, null, byteString(data)] : [path, S(data)]
    await invoke('fs', 'writeFile', args)
  },
  async readdir(path) { return (await invoke('fs', 'readdir', [path === undefined ? '.' : path])).value },
  async stat(path) { return (await invoke('fs', 'stat', [path])).value },
  async rm(path, options) { await invoke('fs', 'rm', [path, options !== null && typeof options === 'object' && options.recursive === true]) },
})

const toolsBinding = (names) => {
  const callTool = async (name, input) => (await invoke('tools', 'call', [S(name), input === undefined ? null : input])).value
  const t = create(null)
  define(t, 'call', { value: callTool, enumerable: true })
  for (const name of names) if (name !== 'call') define(t, name, { value: (input) => callTool(name, input), enumerable: true })
  return freeze(t)
}

const global = (name, value) => define(G, name, { value, writable: false, enumerable: false, configurable: false })

return function install(grantsJSON) {
  const grants = P(grantsJSON)
  if (grants.fetch) global('fetch', fetchBinding)
  if (grants.kv) global('kv', kvBinding)
  if (grants.fs) global('fs', fsBinding)
  if (grants.tools.length > 0) global('tools', toolsBinding(grants.tools))
  const secrets = create(null)
  for (const name of keys(grants.secrets)) define(secrets, name, { value: grants.secrets[name], enumerable: true })
  if (keys(grants.secrets).length > 0) global('secrets', freeze(secrets))
}
})`

/** Intrinsics the guest API is built from, captured from the fresh realm (`[global, property]`). */
export const GUEST_API_INTRINSICS = [
  ['JSON', 'stringify'],
  ['JSON', 'parse'],
  ['String', null],
  ['Array', 'isArray'],
  ['Object', 'keys'],
  ['Error', null],
  ['TypeError', null],
  ['Object', 'defineProperty'],
  ['Object', 'freeze'],
  ['Object', 'create'],
  ['ArrayBuffer', null],
  ['Uint8Array', null],
  ['ArrayBuffer', 'isView'],
  ['String', 'fromCharCode'],
  ['Reflect', 'apply'],
  ['Symbol', 'iterator'],
] as const
