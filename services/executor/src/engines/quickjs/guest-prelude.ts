/**
 * Guest-side glue, evaluated in every fresh context before user code (kept small: QuickJS parses
 * about 10 KB per millisecond, and this runs on every execution). It captures the intrinsics it
 * relies on first, so a guest that patches `JSON`, `String`, `Function` or prototypes changes only
 * its own view. It is called with the host's `write(stream, text)`, the input JSON and the console
 * formatter's source (compiled on first use), and never puts `write` on `globalThis`.
 * It returns `[finish, explain]`: `finish(namespacePromise)` settles the module's default export and
 * answers one string, `O<json>` (result), `E<json {name,message}>` (guest error) or
 * `U<json {name,message}>` (result not serialisable); `explain(error)` answers `{name,message}` as
 * JSON (name \`null\` for a thrown \`null\`, which is also what QuickJS throws when it cannot even
 * allocate an error object). The host reads only those strings and never touches a guest object.
 */
export const GUEST_PRELUDE = `(function(write,inputJSON,formatterSource){'use strict'
const G=globalThis,J=JSON.stringify,P=JSON.parse,S=String,F=Function,D=Object.defineProperty,C=[J,S,Array.isArray,Object.keys,Object.getPrototypeOf,Error.prototype]
const str=(v)=>{try{return S(v).slice(0,4000)}catch(_){return''}}
const describe=(e)=>{if(e!==null&&(typeof e==='object'||typeof e==='function')){let n='Error',m='',k='';try{n=str(e.name).slice(0,200)}catch(_){}try{m=str(e.message)}catch(_){}try{k=str(e.stack).slice(0,200)}catch(_){}return{name:n,message:m,stack:k}}return{name:e===null?'null':'Error',message:str(e)}}
let format=null
const emit=(stream)=>function(...args){if(format===null)format=F('J','S','isArray','keys','protoOf','ErrorProto','describe',formatterSource)(...C,describe);if(!write(stream,format(args)))throw new RangeError('output limit exceeded')}
const out=emit(1),err=emit(2)
D(G,'console',{value:Object.freeze({log:out,info:out,debug:out,warn:err,error:err,trace:err}),writable:true,configurable:true})
D(G,'input',{value:P(inputJSON),writable:true,configurable:true})
const finish=async(ns)=>{let v;try{v=(await ns).default;v=typeof v==='function'?await v(P(inputJSON)):await v}catch(e){return'E'+J(describe(e))}try{const t=J(v);return'O'+(t===undefined?'null':t)}catch(e){return'U'+J(describe(e))}}
return[finish,(e)=>J(describe(e))]})`

/**
 * The body of the console formatter (a Node-like `inspect` for a few levels), compiled inside the
 * guest on the first console call with the intrinsics the prelude captured as parameters.
 */
export const CONSOLE_FORMATTER = `'use strict'
const MAX_DEPTH = 4, MAX_ITEMS = 100
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
return (args) => {
  const parts = []
  for (let i = 0; i < args.length; i++) {
    try { parts.push(inspect(args[i], 0, [])) } catch (e) { parts.push('[unprintable: ' + describe(e).message + ']') }
  }
  return parts.join(' ') + '\\n'
}`
