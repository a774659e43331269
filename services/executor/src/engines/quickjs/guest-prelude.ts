/**
 * Guest-side glue, evaluated in every fresh context before user code. It is kept tiny because it is
 * parsed on every execution (measured: QuickJS parses about 8 KB per millisecond here); everything
 * that is only needed on a console call or an error lives in GUEST_LIBRARY, compiled on first use.
 * It captures the intrinsics it relies on before user code runs, so a guest that patches `JSON`,
 * `String`, `Function` or prototypes changes only its own view. It is called with the host's
 * `write(stream, text)`, the input JSON, the library's source and the output budget (a console line
 * is cut to it before it is handed to the host), and never puts `write` on `globalThis`. It returns `[finish, explain]`: `finish(namespacePromise)` settles the module's
 * default export and answers one string, `O<json>` (result), `E<json>` (guest error) or `U<json>`
 * (result not serialisable); `explain(error)` answers the error's `{name,message,stack}` as JSON
 * (name `null` for a thrown `null`, which is also what QuickJS throws when it cannot even allocate an
 * error object). The host reads only those strings and never touches a guest object.
 */
export const GUEST_PRELUDE = `(function(w,i,L,M){'use strict'
const J=JSON.stringify,P=JSON.parse,F=Function,C=[J,String,Array.isArray,Object.keys,Object.getPrototypeOf,Error.prototype,Object.create],D=Object.defineProperty,G=globalThis
let l=null
const lib=()=>l??=F('J','S','isArray','keys','protoOf','ErrorProto','create',L)(...C)
const d=(e)=>J(lib().describe(e))
const o=(s)=>function(...a){const t=lib().format(a),u=t.length>M?t.slice(0,M):t;if(!w(s,u,u!==t)||u!==t)throw new RangeError('output limit exceeded')}
const O=o(1),E=o(2)
D(G,'console',{value:Object.freeze({log:O,info:O,debug:O,warn:E,error:E,trace:E}),writable:true,configurable:true})
D(G,'input',{value:P(i),writable:true,configurable:true})
return[async(n)=>{let v;try{v=(await n).default;v=typeof v==='function'?await v(P(i)):await v}catch(e){return'E'+d(e)}try{const t=J(v);return'O'+(t===undefined?'null':t)}catch(e){return'U'+d(e)}},d]})`

/**
 * The guest library: `describe(error)` (name, message and the start of the stack, each bounded, every
 * getter guarded) and `format(args)` (a Node-like `inspect` for a few levels). Compiled inside the
 * guest on first use, with the intrinsics the prelude captured as parameters.
 */
export const GUEST_LIBRARY = `'use strict'
const MAX_DEPTH = 4, MAX_ITEMS = 100
const str = (v, n) => { try { return S(v).slice(0, n) } catch (_) { return '' } }
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
const format = (args) => {
  const parts = []
  for (let i = 0; i < args.length; i++) {
    try { parts.push(inspect(args[i], 0, [])) } catch (e) { parts.push('[unprintable: ' + describe(e).message + ']') }
  }
  return parts.join(' ') + '\\n'
}
return { describe, format }`
