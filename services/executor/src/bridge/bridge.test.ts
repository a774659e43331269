import type { JsonValue } from '@cordon/contracts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { RunJob } from '../engine.ts'
import { MAX_REPLY_BYTES_PER_RUN, MAX_REPLY_TEXT } from '../engines/quickjs/guest-glue.ts'
import { Supervisor } from '../supervisor/supervisor.ts'
import { type BindingCall, type BindingHost, type BindingReply, failure, type GuestGrants } from './bridge.ts'

const limits = {
  cpuMs: 2000,
  wallMs: 3000,
  memoryMb: 16,
  outputBytes: 4096,
  bindingCalls: 20,
  processes: 32,
  openFiles: 64,
}
const ALL: GuestGrants = { fetch: true, kv: true, fs: true, tools: ['double'], secrets: { TOKEN: 'ph-1' } }
const job = (code: string, overrides: Partial<RunJob['limits']> = {}, grants = ALL): RunJob => ({
  engine: 'quickjs',
  language: 'javascript',
  code,
  inputJSON: 'null',
  limits: { ...limits, ...overrides },
  tenantKey: 'tenant-a',
  grants,
})

/** A host that records what arrived and answers from a script; `hang` never answers until aborted. */
class ScriptedHost implements BindingHost {
  readonly calls: BindingCall[] = []
  aborted = 0
  async call(call: BindingCall, signal: AbortSignal): Promise<BindingReply> {
    this.calls.push(call)
    if (call.kind === 'kv' && call.op === 'get' && call.args[0] === 'hang') {
      return new Promise((resolve) => {
        signal.addEventListener('abort', () => {
          this.aborted++
          resolve(failure('ABORTED', 'aborted'))
        })
      })
    }
    if (call.kind === 'kv' && call.op === 'get' && call.args[0] === 'big-text') {
      return { ok: true, value: 'x'.repeat(MAX_REPLY_TEXT + 1) }
    }
    if (call.kind === 'fs' && call.op === 'readFile' && call.args[0] === 'empty') {
      return { ok: true, value: null, bytes: '' }
    }
    if (call.kind === 'fs' && call.op === 'readFile' && call.args[0] === 'big') {
      return { ok: true, value: null, bytes: Buffer.alloc(3 * 1024 * 1024, 1).toString('base64') }
    }
    if (call.kind === 'kv' && call.op === 'get') return { ok: true, value: { echo: call.args[0] ?? null } }
    if (call.kind === 'fs' && call.op === 'readFile')
      return { ok: true, value: null, bytes: Buffer.from('héllo').toString('base64') }
    if (call.kind === 'tools') return { ok: true, value: ((call.args[1] as number) * 2) as JsonValue }
    if (call.kind === 'fetch') {
      return {
        ok: true,
        value: {
          status: 201,
          statusText: 'Created',
          url: 'https://x.test/',
          redirected: false,
          headers: [['content-type', 'application/json']],
        },
        bytes: Buffer.from('{"a":1}').toString('base64'),
      }
    }
    return failure('KV_DENIED', 'denied here', { reason: 'READ_ONLY', rule: 'profiles/p#/kv/access' })
  }
}

let supervisor: Supervisor
let host: ScriptedHost
beforeAll(async () => {
  supervisor = new Supervisor({ workers: 1 })
  await supervisor.start()
})
afterAll(async () => {
  await supervisor.stop()
})
const run = (code: string, overrides: Partial<RunJob['limits']> = {}, grants = ALL) => {
  host = new ScriptedHost()
  return supervisor.run(job(code, overrides, grants), 't', undefined, host)
}

describe('binding bridge', () => {
  it('carries a call out as a fresh copy and its reply back as guest data', async () => {
    const outcome = await run(`export default await kv.get({ deep: [1, 'two'] })`)
    expect(outcome).toMatchObject({ status: 'ok', result: { echo: { deep: [1, 'two'] } } })
    expect(host.calls).toEqual([{ kind: 'kv', op: 'get', args: [{ deep: [1, 'two'] }] }])
  })

  it('turns a failure into a guest error with its code, reason and rule', async () => {
    const outcome = await run(`let r
      try { await kv.set('k', 1) } catch (e) { r = [e.name, e.code, e.reason, e.rule, e instanceof Error] }
      export default r`)
    expect(outcome.result).toEqual(['CordonError', 'KV_DENIED', 'READ_ONLY', 'profiles/p#/kv/access', true])
  })

  it('gives reply bytes as an ArrayBuffer and text decoded as UTF-8', async () => {
    const outcome = await run(`
      const bytes = await fs.readFile('/workspace/a', { encoding: null })
      const text = await fs.readFile('/workspace/a')
      const r = await fetch('https://x.test/')
      export default [bytes.length, text, r.status, r.ok, r.headers.get('Content-Type'), await r.json(), (await r.arrayBuffer()).byteLength]`)
    expect(outcome).toMatchObject({
      status: 'ok',
      result: [6, 'héllo', 201, true, 'application/json', { a: 1 }, 7],
    })
  })

  it('decodes an empty body as empty text', async () => {
    const outcome = await run(
      `export default [await fs.readFile('empty'), (await fs.readFile('empty', { encoding: null })).length]`,
    )
    expect(outcome).toMatchObject({ status: 'ok', result: ['', 0] })
  })

  it('attack: a patched ArrayBuffer.prototype.slice never receives the body; a detached body is a guest error', async () => {
    const outcome = await run(`
      let seen = null
      ArrayBuffer.prototype.slice = function () { seen = this; return new ArrayBuffer(0) }
      const r = await fetch('https://x.test/')
      const copy = await r.arrayBuffer()
      export default [seen === null, copy.byteLength, await r.text()]`)
    expect(outcome).toMatchObject({ status: 'ok', result: [true, 7, '{"a":1}'] })
  })

  it('offers tools by name and through call, and secrets as placeholders', async () => {
    const outcome = await run(
      `export default [await tools.double(4), await tools.call('double', 5), secrets.TOKEN, Object.isFrozen(secrets)]`,
    )
    expect(outcome.result).toEqual([8, 10, 'ph-1', true])
  })

  it('defines only the granted globals', async () => {
    const outcome = await run(
      `export default [typeof fetch, typeof kv, typeof fs, typeof tools, typeof secrets]`,
      {},
      { fetch: false, kv: true, fs: false, tools: [], secrets: {} },
    )
    expect(outcome.result).toEqual(['undefined', 'object', 'undefined', 'undefined', 'undefined'])
  })

  it('attack: more calls than bindingCalls allows are refused with BINDING_LIMIT', async () => {
    const outcome = await run(
      `let n = 0, code
       for (let i = 0; i < 10; i++) { try { await kv.get(i); n++ } catch (e) { code = e.code } }
       export default [n, code]`,
      { bindingCalls: 3 },
    )
    expect(outcome.result).toEqual([3, 'BINDING_LIMIT'])
    expect(host.calls).toHaveLength(3)
  })

  it('attack: a flood of concurrent calls is cut at the in-flight limit, and nothing hangs', async () => {
    const outcome = await run(
      `const all = await Promise.allSettled(Array.from({ length: 40 }, () => kv.get('hang')))
       export default all.length`,
      { wallMs: 500, bindingCalls: 1000 },
    )
    expect(outcome.status).toBe('timeout')
    expect(host.calls.length).toBe(32)
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(host.aborted).toBe(32)
  })

  it('attack: reply bodies past the per-execution budget are refused, not copied into the module', async () => {
    expect(MAX_REPLY_BYTES_PER_RUN).toBeLessThan(2 * 3 * 1024 * 1024)
    const outcome = await run(
      `const first = await fs.readFile('big', { encoding: null })
       let code
       try { await fs.readFile('big', { encoding: null }) } catch (e) { code = e.code }
       export default [first.length, code]`,
      { memoryMb: 64 },
    )
    expect(outcome.result).toEqual([3 * 1024 * 1024, 'REPLY_TOO_LARGE'])
  })

  it('attack: a reply text past the per-reply limit is refused', async () => {
    const outcome = await run(
      `let code; try { await kv.get('big-text') } catch (e) { code = e.code } export default code`,
      {
        memoryMb: 64,
      },
    )
    expect(outcome.result).toBe('REPLY_TOO_LARGE')
  })

  it('attack: host work still in flight is aborted when the execution ends', async () => {
    const outcome = await run(`kv.get('hang'); export default 'done'`)
    expect(outcome.result).toBe('done')
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(host.aborted).toBe(1)
  })

  it('attack: patched JSON, Function.prototype.call/apply and an Object.prototype getter change nothing', async () => {
    const outcome = await run(`
      JSON.stringify = () => '{"kind":"evil"}'
      JSON.parse = () => ({ ok: true, value: 'forged' })
      Function.prototype.call = () => 'forged'
      Function.prototype.apply = () => 'forged'
      Reflect.apply = () => 'forged'
      Object.defineProperty(Object.prototype, 'ok', { get() { return true }, set() {} })
      export default await kv.get('key')`)
    expect(outcome).toMatchObject({ status: 'ok', result: { echo: 'key' } })
    expect(host.calls).toEqual([{ kind: 'kv', op: 'get', args: ['key'] }])
  })

  it('attack: a toJSON on Object.prototype reaches the host only as checked JSON text', async () => {
    const outcome = await run(`
      Object.defineProperty(Object.prototype, 'toJSON', { value: () => ({ kind: 'fs', op: 'rm' }), configurable: true })
      let code
      try { await kv.get('key') } catch (e) { code = e.code }
      delete Object.prototype.toJSON
      export default code`)
    expect(outcome).toMatchObject({ status: 'ok', result: 'INVALID_ARGUMENT' })
    expect(host.calls).toEqual([])
  })

  it('attack: a patched Promise.prototype.then or an Array.prototype setter breaks only the guest', async () => {
    for (const patch of [
      "Promise.prototype.then = function () { return 'forged' }",
      "Object.defineProperty(Array.prototype, '0', { set() { throw new Error('setter ran') }, configurable: true })",
    ]) {
      const outcome = await run(`${patch}\nexport default await kv.get('key')`)
      expect(String(outcome.error?.code)).not.toMatch(/WORKER_CRASHED|ENGINE_FAULT/)
      expect(
        host.calls.every((call) => call.kind === 'kv' && call.op === 'get' && call.args[0] === 'key'),
      ).toBe(true)
    }
  })

  it('attack: hostile argument values (getters, Proxies, cycles, huge arrays) stay in the guest', async () => {
    const outcome = await run(
      `
      const results = []
      const attempt = async (value) => { try { await kv.get(value); results.push('sent') } catch (e) { results.push(e.code ?? e.name) } }
      let getterRan = 0
      await attempt({ get x() { getterRan++; return 1 } })
      await attempt(new Proxy({}, { ownKeys() { throw new Error('trap') } }))
      const cycle = {}; cycle.self = cycle
      await attempt(cycle)
      await attempt(new Array(300000).fill('xxxxxxxxxxxxxxxxxx'))
      let deep = []; for (let i = 0; i < 100; i++) deep = [deep]
      await attempt(deep)
      await attempt({ then(resolve) { resolve('thenable') } })
      export default [results, getterRan]`,
      { memoryMb: 64, bindingCalls: 100 },
    )
    expect(outcome).toMatchObject({ status: 'ok' })
    expect(outcome.result).toEqual([
      ['sent', 'TypeError', 'TypeError', 'ARGUMENT_TOO_LARGE', 'ARGUMENT_TOO_LARGE', 'sent'],
      1,
    ])
    expect(host.calls.map((call) => call.args[0])).toEqual([{ x: 1 }, {}])
  })

  it('attack: a guest reaches no host function or object through the bindings', async () => {
    const outcome = await run(`
      const seen = []
      const AsyncFunction = Object.getPrototypeOf(async () => {})
      for (const f of [fetch, kv.get, fs.readFile, tools.call]) {
        seen.push(Object.getPrototypeOf(f) === AsyncFunction && (await f.constructor('return typeof process')()))
        seen.push(Object.getPrototypeOf(await kv.get(1)) === Object.prototype)
      }
      export default seen`)
    expect(outcome.result).toEqual([
      'undefined',
      true,
      'undefined',
      true,
      'undefined',
      true,
      'undefined',
      true,
    ])
  })
})
