import { describe, expect, it } from 'vitest'
import { cordon } from './cordon.ts'

// The factory's driver sharing, with fetch functions that record what they are asked (no server).

const options = { url: 'http://cordon.invalid', token: 'token-0123456789abcdef', agent: 'coder' }

describe('cordon()', () => {
  it('shares drivers between factories of the same scope, and never across fetch functions', async () => {
    const fetchA: typeof fetch = async () => new Response(null, { status: 500 })
    const fetchB: typeof fetch = async () => new Response(null, { status: 500 })
    const one = cordon({ ...options, fetch: fetchA })
    const two = cordon({ ...options, fetch: fetchA })
    const other = cordon({ ...options, fetch: fetchB })
    expect(one.driver({ id: 'x' })).toBe(two.driver({ id: 'x' }))
    expect(other.driver({ id: 'x' })).not.toBe(one.driver({ id: 'x' }))
    await one.closeAll()
    await other.closeAll()
    // Forgotten once closed: the next driver is a new one.
    const again = cordon({ ...options, fetch: fetchA })
    expect(again.driver({ id: 'x' })).not.toBe(two.driver({ id: 'y' }))
    await again.closeAll()
  })

  it('does not give up at once on a deadline too large for a timer (about 24 days and more)', async () => {
    const asked: string[] = []
    const slow: typeof fetch = async (input, init) => {
      const url = String(input instanceof Request ? input.url : input)
      asked.push(`${init?.method ?? 'GET'} ${new URL(url).pathname}`)
      // As a real fetch would: an aborted request fails.
      await new Promise((resolve, reject) => {
        const timer = setTimeout(resolve, 50)
        init?.signal?.addEventListener('abort', () => {
          clearTimeout(timer)
          reject(init.signal?.reason)
        })
      })
      if (init?.method === 'DELETE') return new Response(null, { status: 204 })
      if (url.endsWith('/sessions')) {
        return Response.json({ id: 'ses_1', agent: 'coder', idleTimeoutSeconds: 300 }, { status: 201 })
      }
      if (url.includes('/executions')) {
        return Response.json({
          status: 'ok',
          stdout: 'done\n',
          stderr: '',
          exitCode: 0,
          result: null,
          error: null,
        })
      }
      return Response.json({ error: { code: 'NOT_FOUND', message: 'no' } }, { status: 404 })
    }
    const factory = cordon({ ...options, fetch: slow })
    const result = await factory.driver({ id: 'long' }).exec('true', { timeoutMs: 3e9 })
    expect(result.exitCode).not.toBe(124)
    expect(asked.some((line) => line.includes('/executions'))).toBe(true)
    await factory.closeAll()
  })
})
