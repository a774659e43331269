import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Body, startTestServer, type TestServer } from './helpers/server.ts'

let service: TestServer
beforeAll(async () => {
  service = await startTestServer()
})
afterAll(async () => {
  await service.close()
})

describe('secrets API (write-only)', () => {
  const VALUE = 'ghp_write-only-value-0123456789'

  it('stores a value and never answers it, on any route', async () => {
    const put = await service.request('PUT', '/v1/secrets/github', { body: { value: VALUE } })
    expect(put.status).toBe(200)
    expect(put.body).toEqual({ name: 'github', createdAt: expect.any(String), updatedAt: expect.any(String) })
    const one = await service.request('GET', '/v1/secrets/github')
    const all = await service.request('GET', '/v1/secrets')
    const audit = await service.request('GET', '/v1/audit?kind=secret')
    expect(one.body).toEqual(put.body)
    expect(all.body.secrets.map((s: Body) => s.name)).toContain('github')
    expect(audit.body.records.map((r: Body) => [r.kind, r.detail.name])).toContainEqual([
      'secret.put',
      'github',
    ])
    for (const response of [put, one, all, audit]) expect(JSON.stringify(response.body)).not.toContain(VALUE)
  })

  it.each([
    ['an unknown field', { value: 'x', extra: 1 }, 422],
    ['a missing value', {}, 422],
    ['a value that is not a string', { value: 42 }, 422],
    ['an empty value', { value: '' }, 422],
    ['a value over 16 KiB', { value: 'x'.repeat(16 * 1024 + 1) }, 422],
  ])('refuses %s', async (_, body, status) => {
    const response = await service.request('PUT', '/v1/secrets/bad', { body })
    expect(response.status).toBe(status)
    expect(response.body.error.code).toMatch(/^[A-Z_]+$/)
    expect((await service.request('GET', '/v1/secrets/bad')).status).toBe(404)
  })

  it.each(['1starts-with-digit', 'has space', 'x'.repeat(129), 'semi;colon'])(
    'refuses the name %j',
    async (name) => {
      const response = await service.request('PUT', `/v1/secrets/${encodeURIComponent(name)}`, {
        body: { value: 'v' },
      })
      expect([response.status, response.body.error.code]).toEqual([400, 'BAD_REQUEST'])
    },
  )

  it('deletes a secret (404 after), and answers 404 SECRET_NOT_FOUND for an unknown one', async () => {
    await service.request('PUT', '/v1/secrets/temp', { body: { value: 'v' } })
    expect((await service.request('DELETE', '/v1/secrets/temp')).status).toBe(204)
    const gone = await service.request('GET', '/v1/secrets/temp')
    expect([gone.status, gone.body.error.code]).toEqual([404, 'SECRET_NOT_FOUND'])
    expect((await service.request('DELETE', '/v1/secrets/temp')).status).toBe(404)
  })

  it('refuses a caller without a token', async () => {
    expect((await service.request('GET', '/v1/secrets', { auth: null })).status).toBe(401)
  })
})

describe('audit API', () => {
  it('pages through records with the next cursor and filters by kind prefix', async () => {
    for (let i = 0; i < 3; i++) await service.execute('export default 1')
    const first = await service.request('GET', '/v1/audit?kind=execution&limit=2')
    expect(first.status).toBe(200)
    expect(first.body.records).toHaveLength(2)
    expect(first.body.next).toBe(first.body.records[1].seq)
    const second = await service.request('GET', `/v1/audit?kind=execution&limit=2&after=${first.body.next}`)
    expect(second.body.records[0].seq).toBeGreaterThan(first.body.next)
    expect([...first.body.records, ...second.body.records].every((r: Body) => r.kind === 'execution')).toBe(
      true,
    )
  })

  it.each([
    ['limit=0', 'limit'],
    ['limit=1001', 'limit'],
    ['limit=ten', 'limit'],
    ['after=-1', 'after'],
    ['since=yesterday', 'since'],
    [`agent=${'a'.repeat(300)}`, 'agent'],
  ])('refuses ?%s with 400', async (query, name) => {
    const response = await service.request('GET', `/v1/audit?${query}`)
    expect([response.status, response.body.error.code]).toEqual([400, 'BAD_REQUEST'])
    expect(response.body.error.message).toContain(name)
  })

  it('a filter value with LIKE wildcards matches only itself', async () => {
    const response = await service.request('GET', '/v1/audit?kind=%25')
    expect(response.body.records).toEqual([])
  })
})
