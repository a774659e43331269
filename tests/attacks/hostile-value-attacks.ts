import { GuestErrorCode } from '@cordon/contracts'
import { expect } from 'vitest'
import { type Attack, endedOnEither, failed, ok, stopped } from './attack-suite.ts'

const CPU_STOP = stopped('timeout', GuestErrorCode.CPU_TIME_LIMIT)

/**
 * Values handed back across the boundary that try to run guest code while the engine reads them, or
 * that cannot be turned into JSON: Proxies, getters, toJSON, thenables, hostile thrown values.
 */
export const HOSTILE_VALUE_ATTACKS: readonly Attack[] = [
  {
    name: 'default export is a Proxy whose every trap throws',
    code: `const boom = (what) => () => { throw new Error(what) }
export default new Proxy({}, { get: boom('trap fired'), ownKeys: boom('keys'), getOwnPropertyDescriptor: boom('desc') })`,
    expect: failed(GuestErrorCode.GUEST_EXCEPTION, /^Error: trap fired$/),
  },
  {
    name: 'default export is a Proxy that hands out a fresh Proxy for every property, forever',
    code: `const handler = { get: (target, key) => (key === 'then' ? undefined : new Proxy({ a: 1 }, handler)) }
export default new Proxy({ a: 1 }, handler)`,
    expect: CPU_STOP,
    // V8 makes the proxies fast: its stringify may reach its stack limit, or the heap fill, before the
    // CPU budget is spent.
    on: {
      isolate: endedOnEither('timeout/CPU_TIME_LIMIT', 'memory_limit/MEMORY_LIMIT', 'error/RESULT_TOO_DEEP'),
    },
  },
  {
    name: 'default export is a Proxy that claims a million own keys',
    code: `export default new Proxy({}, {
  ownKeys: () => Array.from({ length: 1e6 }, (_, i) => 'k' + i),
  getOwnPropertyDescriptor: () => ({ value: 1, enumerable: true, configurable: true }),
})`,
    expect: stopped('memory_limit', GuestErrorCode.MEMORY_LIMIT),
    // V8 builds the key list fast enough that CPU or memory may end it first.
    on: { isolate: endedOnEither('memory_limit/MEMORY_LIMIT', 'timeout/CPU_TIME_LIMIT') },
  },
  {
    name: 'result object with a throwing getter',
    code: `export default { get secret() { throw new Error('getter boom') } }`,
    expect: failed(GuestErrorCode.RESULT_NOT_SERIALIZABLE, /^result is not JSON: Error: getter boom$/),
  },
  {
    name: 'result object with a getter that never returns',
    code: `export default { visible: 1, get x() { for (;;) {} } }`,
    expect: CPU_STOP,
  },
  {
    name: 'result object whose toJSON throws',
    code: `export default { toJSON() { throw new Error('toJSON boom') } }`,
    expect: failed(GuestErrorCode.RESULT_NOT_SERIALIZABLE, /^result is not JSON: Error: toJSON boom$/),
  },
  {
    name: 'result object whose toJSON never returns',
    code: `export default { toJSON() { for (;;) {} } }`,
    expect: CPU_STOP,
  },
  {
    name: 'thenable whose then loops forever',
    code: `export default { then() { for (;;) {} } }`,
    expect: CPU_STOP,
  },
  {
    name: 'thenable that never calls back',
    code: `export default { then() {} }`,
    expect: failed(GuestErrorCode.UNSETTLED_PROMISE, /never settle/),
  },
  {
    name: 'thenable that resolves with itself forever',
    code: `const thenable = { then(resolve) { resolve(thenable) } }\nexport default thenable`,
    expect: CPU_STOP,
  },
  {
    name: 'Object.prototype.then getter turns every object into an endless thenable',
    code: `Object.defineProperty(Object.prototype, 'then', { get() { for (;;) {} } })\nexport default { a: 1 }`,
    expect: CPU_STOP,
  },
  {
    name: 'thrown object whose name and message getters throw',
    code: `throw { get name() { throw new Error('n') }, get message() { throw new Error('m') } }`,
    expect: failed(GuestErrorCode.GUEST_EXCEPTION, /^Error$/),
  },
  {
    name: 'thrown object whose name getter never returns',
    code: `throw { get name() { for (;;) {} }, message: 'spin' }`,
    expect: CPU_STOP,
  },
  {
    name: 'thrown object whose name is an object with a throwing toString',
    code: `throw { name: { toString() { throw new Error('t') } }, message: 'kept' }`,
    expect: failed(GuestErrorCode.GUEST_EXCEPTION, /kept$/),
  },
  {
    name: 'thrown error with a 4 MiB message',
    code: `throw { name: 'Boom', message: 'x'.repeat(2 ** 22) }`,
    expect: (record) => {
      failed(GuestErrorCode.GUEST_EXCEPTION, /^Boom: x+$/)(record)
      expect(record.error.message.length).toBeLessThanOrEqual(4200)
    },
  },
  {
    name: 'thrown 4 MiB message after replacing String.prototype.slice (the host reads a bounded part)',
    code: `export default () => {
  String.prototype.slice = function () { return String(this) }
  throw { name: 'Boom', message: 'x'.repeat(2 ** 22) }
}`,
    expect: (record) => {
      failed(GuestErrorCode.GUEST_EXCEPTION, /^Boom: x+$/)(record)
      expect(record.error.message.length).toBeLessThanOrEqual(4200)
    },
  },
  {
    name: 'promise rejected with a Proxy whose traps throw',
    code: `export default Promise.reject(new Proxy({}, { get() { throw new Error('proxy reason') } }))`,
    expect: failed(GuestErrorCode.GUEST_EXCEPTION, /^Error$/),
  },
  {
    name: 'promise rejected with a revoked Proxy',
    code: `const { proxy, revoke } = Proxy.revocable({}, {})\nrevoke()\nexport default Promise.reject(proxy)`,
    expect: failed(GuestErrorCode.GUEST_EXCEPTION, /^Error$/),
  },
  {
    name: 'async default export throws a Proxy whose get trap never returns',
    code: `export default async () => { throw new Proxy(new Error('x'), { get() { for (;;) {} } }) }`,
    expect: CPU_STOP,
  },
  {
    name: 'Symbol result',
    code: `export default Symbol('host')`,
    expect: ok(null),
  },
  {
    name: 'BigInt result',
    code: `export default 2n ** 64n`,
    expect: failed(GuestErrorCode.RESULT_NOT_SERIALIZABLE, /BigInt/),
  },
  {
    name: 'function result (the default export returns a function)',
    code: `export default () => () => globalThis`,
    expect: ok(null),
  },
  {
    name: 'cyclic result',
    code: `const a = { b: {} }\na.b.a = a\nexport default a`,
    expect: failed(GuestErrorCode.RESULT_NOT_SERIALIZABLE, /circular/),
  },
  {
    name: 'result nested 100 levels deep',
    code: `let a = 1\nfor (let i = 0; i < 100; i++) a = [a]\nexport default a`,
    expect: failed(GuestErrorCode.RESULT_TOO_DEEP, /deeper than 64/),
  },
  {
    // Serialising it is quadratic in depth inside one built-in call (see the runaway catalogue):
    // the supervisor's CPU line ends it before the result could be measured.
    name: 'result nested 100 000 levels deep',
    code: `let a = []\nfor (let i = 0; i < 1e5; i++) a = [a]\nexport default a`,
    expect: stopped('timeout', GuestErrorCode.CPU_TIME_LIMIT),
    // V8's stringify recurses into its stack limit after about 400 ms of CPU: either line may come first.
    on: { isolate: endedOnEither('error/RESULT_TOO_DEEP', 'timeout/CPU_TIME_LIMIT') },
  },
  {
    name: 'result nested 2 000 levels deep',
    code: `let a = []\nfor (let i = 0; i < 2000; i++) a = [a]\nexport default a`,
    expect: failed(GuestErrorCode.RESULT_TOO_DEEP, /deeper than 64/),
  },
  {
    name: 'console.log of a Proxy whose ownKeys trap throws',
    code: `console.log(new Proxy({}, { ownKeys() { throw new Error('keys trap') } }))\nexport default 1`,
    expect: (record) => {
      ok(1)(record)
      expect(record.stdout).toBe('[unprintable: keys trap]\n')
    },
  },
]
