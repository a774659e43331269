import { createApp, TokenAuthenticator } from '@cordon/gateway'
import { describe, expect, it } from 'vitest'
import { startTestHarness } from './helpers/harness.ts'

// A key that lacks the scope for a request is refused (403) and the refusal is on its tenant's audit
// log: the route and the reason, never the body or the token.

describe('auth failures in the audit log', () => {
  it('records a refused scope for the key tenant, and only there', async () => {
    const test = await startTestHarness()
    try {
      const app = createApp({
        harness: test.harness,
        auth: new TokenAuthenticator([
          { token: 'invoke-only-key-0123456789', principal: { tenant: 'acme', scopes: ['invoke'] } },
          { token: 'audit-key-of-acme-0123456', principal: { tenant: 'acme', scopes: ['audit'] } },
        ]),
      })
      const call = (method: string, path: string, token: string, body?: string) =>
        app.fetch(
          new Request(`http://cordon.test${path}`, {
            method,
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            ...(body === undefined ? {} : { body }),
          }),
        )
      const refused = await call(
        'PUT',
        '/v1/profiles/p',
        'invoke-only-key-0123456789',
        '{"secret":"payload"}',
      )
      expect(refused.status).toBe(403)
      const unknown = await call('GET', '/v1/agents', 'no-such-key-0123456789')
      expect(unknown.status).toBe(401)

      const records = test.harness.audit('acme', { kind: 'auth', limit: 100 })
      expect(records).toHaveLength(1)
      expect(records[0]).toMatchObject({
        kind: 'auth.denied',
        decision: 'deny',
        code: 'FORBIDDEN',
        detail: { method: 'PUT', route: '/v1/profiles/:name' },
      })
      expect(JSON.stringify(records[0])).not.toContain('payload')
      expect(JSON.stringify(records[0])).not.toContain('invoke-only-key')
      expect(test.harness.audit('default', { kind: 'auth', limit: 100 })).toEqual([])
      // The audit key reads it through the API too, and the chain holds.
      const listed = await call('GET', '/v1/audit?kind=auth', 'audit-key-of-acme-0123456')
      expect((await listed.json()).records).toHaveLength(1)
      expect(test.harness.verifyAudit('acme')).toMatchObject({ ok: true })
    } finally {
      await test.close()
    }
  })
})
