import { failure } from '@cordon/executor/portable'
import { describe, expect, it } from 'vitest'
import { grantTenant, newEgressGrant, replyResponse, requestArgs } from './container-egress.ts'

// The conversions of a container's outbound handler (`Sandbox.outboundHandlers.cordonEgress` in the
// Worker): the intercepted request into the fetch binding's arguments, the binding's reply into the
// response the container's client reads. The route between them is tested end to end in
// tests/sandbox-protocol.test.ts.

describe('container egress conversions', () => {
  it('turns an intercepted request into the fetch binding’s arguments, redirects left to the client', async () => {
    const request = new Request('https://api.example.com/v1?q=1', {
      method: 'POST',
      headers: { 'x-key': 'cdn-secret-TOKEN-0', 'content-type': 'application/json' },
      body: '{"a":"é"}',
    })
    expect(await requestArgs(request)).toEqual([
      {
        url: 'https://api.example.com/v1?q=1',
        method: 'POST',
        headers: expect.arrayContaining([['x-key', 'cdn-secret-TOKEN-0']]),
        bodyBytes: Buffer.from('{"a":"é"}').toString('latin1'),
        redirect: 'manual',
      },
    ])
  })

  it('attack: a request body past 1 MiB is refused before anything is decided', async () => {
    const request = new Request('https://api.example.com/', {
      method: 'POST',
      body: 'x'.repeat(1024 * 1024 + 1),
    })
    expect(await requestArgs(request)).toMatch(/exceeds/)
  })

  it('answers the binding’s reply as a response: status, headers and body, or the refusal with its code', async () => {
    const ok = replyResponse({
      ok: true,
      value: { status: 201, headers: [['x-one', '1']] },
      bytes: Buffer.from('made').toString('base64'),
    })
    expect(ok.status).toBe(201)
    expect(ok.headers.get('x-one')).toBe('1')
    expect(await ok.text()).toBe('made')
    expect(replyResponse({ ok: true, value: { status: 204, headers: [] }, bytes: '' }).status).toBe(204)
    const denied = replyResponse(failure('EGRESS_DENIED', 'not allowed'))
    expect(denied.status).toBe(403)
    expect(denied.headers.get('x-cordon-error')).toBe('EGRESS_DENIED')
    expect(replyResponse(failure('FETCH_TIMEOUT', 'late')).status).toBe(504)
    expect(replyResponse(failure('FETCH_FAILED', 'gone')).status).toBe(502)
    // A status a server cannot send becomes a bad gateway, not an exception.
    expect(replyResponse({ ok: true, value: { status: 1000, headers: [] } }).status).toBe(502)
  })

  it('names the tenant in a grant, and refuses anything that is not one', () => {
    const grant = newEgressGrant('acme')
    expect(grantTenant(grant)).toBe('acme')
    for (const forged of ['acme', 'acme.', '../x.00000000-0000-0000-0000-000000000000', 'ACME.x', 42, null]) {
      expect(grantTenant(forged)).toBeNull()
    }
  })
})
