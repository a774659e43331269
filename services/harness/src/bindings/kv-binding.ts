import type { JsonValue } from '@cordon/contracts'
import { decideKv, type KvOperation, ruleRef } from '@cordon/policy'
import {
  auditText,
  type BindingContext,
  type Handled,
  type LocalBindingHandler,
  refused,
} from './binding-context.ts'

/** Largest value (as JSON text, UTF-8 bytes) one key may hold. */
export const KV_MAX_VALUE_BYTES = 1024 * 1024
/** Most keys one `list` answers (default 100). */
export const KV_MAX_LIST = 1000

const OPERATION: Record<string, KvOperation> = { get: 'read', set: 'write', delete: 'delete', list: 'list' }

/**
 * The `kv` binding: the agent's namespace in the store, every key decided by the profile. Keys are
 * data (a key `__proto__` is a row like any other; nothing is looked up on an object by key);
 * values are JSON. `list` answers only keys the profile lets the guest read.
 */
export const kvBinding: LocalBindingHandler = (context, op, args) => {
  const operation = OPERATION[op]
  if (operation === undefined) return refused('INVALID_ARGUMENT', `kv has no operation "${op}"`)
  if (op === 'list') return list(context, args)
  const key = args[0]
  if (typeof key !== 'string') return refused('INVALID_ARGUMENT', `kv.${op}: the key must be a string`)
  const decision = decideKv(context.profile, key, operation)
  const detail = { key: auditText(key) }
  if (decision.effect === 'deny') {
    return refused('KV_DENIED', decision.message, { reason: decision.code, rule: decision.rule, detail })
  }
  const { tenant, namespace, store } = context
  const allowed = (value: JsonValue, bytes = 0, extra = {}): Handled => ({
    reply: { ok: true, value },
    decision: 'allow',
    code: 'ALLOWED',
    rule: decision.rule,
    bytes,
    detail: { ...detail, ...extra },
  })
  switch (op) {
    case 'get': {
      const value = store.kv.get(tenant, namespace, decision.key.key)
      return allowed(value === null ? null : (JSON.parse(value) as JsonValue), 0, { found: value !== null })
    }
    case 'delete':
      return allowed(store.kv.delete(tenant, namespace, decision.key.key))
    default: {
      const text = JSON.stringify(args[1] ?? null)
      const bytes = Buffer.byteLength(text)
      if (bytes > KV_MAX_VALUE_BYTES) {
        return refused('VALUE_TOO_LARGE', `a value may hold at most ${KV_MAX_VALUE_BYTES} bytes of JSON`, {
          rule: decision.rule,
          bytes,
          detail,
        })
      }
      const quota = context.profile.kv.quotaBytes
      const written = store.kv.set(tenant, namespace, decision.key.key, text, quota)
      if (!written.ok) {
        return refused('QUOTA_EXCEEDED', `the key-value store's quota of ${quota} bytes would be exceeded`, {
          rule: ruleRef(context.profile, '/kv/quotaBytes'),
          bytes,
          detail: { ...detail, usedBytes: written.usedBytes },
        })
      }
      return allowed(null, bytes)
    }
  }
}

function list(context: BindingContext, args: JsonValue[]): Handled {
  const [prefix, limit] = args
  if (typeof prefix !== 'string' || prefix.length > 512) {
    return refused('INVALID_ARGUMENT', 'kv.list: the prefix must be a string of at most 512 characters')
  }
  if (limit !== null && limit !== undefined && !(Number.isInteger(limit) && (limit as number) >= 1)) {
    return refused('INVALID_ARGUMENT', 'kv.list: the limit must be a whole number from 1')
  }
  const wanted = Math.min((limit as number | null | undefined) ?? 100, KV_MAX_LIST)
  if (context.profile.kv.access === 'none') {
    return refused('KV_DENIED', 'the profile grants no key-value store', {
      reason: 'KV_NOT_ALLOWED',
      rule: ruleRef(context.profile, '/kv/access'),
    })
  }
  // Keys the guest may not read are skipped, never counted: it learns nothing of them.
  const keys: string[] = []
  let scanned = 0
  let after = ''
  for (;;) {
    const batch = context.store.kv.list(context.tenant, context.namespace, prefix, KV_MAX_LIST, after)
    for (const key of batch) {
      after = key
      scanned++
      if (decideKv(context.profile, key, 'read').effect === 'allow') keys.push(key)
      if (keys.length === wanted) break
    }
    if (keys.length === wanted || batch.length < KV_MAX_LIST || scanned >= 10 * KV_MAX_LIST) break
  }
  return {
    reply: { ok: true, value: keys },
    decision: 'allow',
    code: 'ALLOWED',
    rule: ruleRef(context.profile, '/kv/access'),
    bytes: 0,
    detail: { prefix: auditText(prefix), keys: keys.length },
  }
}
