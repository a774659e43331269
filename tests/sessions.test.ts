import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestHarness } from './helpers/harness.ts'
import { type Body, startTestServer, TEST_TOKEN, type TestServer } from './helpers/server.ts'

// Container sessions through the public API: one sandbox kept across executions and file
// operations, with an idle timeout and a per-tenant cap, ended by DELETE.

let t: TestServer

const LIMITS = {
  cpuMs: 3000,
  wallMs: 4000,
  memoryMb: 64,
  outputBytes: 65_536,
  bindingCalls: 0,
  processes: 16,
  openFiles: 64,
}

async function open(agent = 'worker', body?: unknown): Promise<Body> {
  const { status, body: answer } = await t.request('POST', `/v1/agents/${agent}/sessions`, {
    ...(body === undefined ? {} : { body }),
  })
  expect(status, JSON.stringify(answer)).toBe(201)
  return answer
}

const exec = (id: string, body: Record<string, unknown>) =>
  t.request('POST', `/v1/sessions/${id}/executions`, { body })

beforeAll(async () => {
  t = await startTestServer({ sessions: { maxSessions: 3 } })
  const profile = await t.request('PUT', '/v1/profiles/session', {
    body: {
      engines: ['container'],
      languages: ['python', 'bash'],
      limits: LIMITS,
      filesystem: { access: 'read-write', quotaBytes: 1_048_576 },
    },
  })
  expect(profile.status, JSON.stringify(profile.body)).toBe(200)
  expect((await t.request('PUT', '/v1/agents/worker', { body: { sandbox: 'session' } })).status).toBe(200)
})

afterAll(() => t.close())

describe('container sessions', () => {
  it('keeps one workspace across executions and the files API, until deleted', async () => {
    const session = await open()
    expect(session).toMatchObject({ agent: 'worker', engine: 'container', idleTimeoutSeconds: 300 })
    expect(session.id).toMatch(/^ses_/)

    const put = await t.request('PUT', `/v1/sessions/${session.id}/files/data/in.txt`, {
      raw: 'from the client\n',
      contentType: 'application/octet-stream',
    })
    expect(put.status, JSON.stringify(put.body)).toBe(201)
    expect(put.body).toEqual({ path: '/workspace/data/in.txt', size: 16 })

    const first = await exec(session.id, {
      language: 'bash',
      code: 'cat data/in.txt; echo step1 > state.txt; echo tmp > /tmp/kept',
    })
    expect(first.body).toMatchObject({ status: 'ok', stdout: 'from the client\n', engine: 'container' })
    expect(first.body.files).toEqual([
      { path: '/workspace/state.txt', size: 6, encoding: 'utf8', content: 'step1\n' },
    ])

    const second = await exec(session.id, {
      language: 'python',
      code: 'print(open("state.txt").read().strip(), open("/tmp/kept").read().strip())\nopen("out.bin", "wb").write(bytes([1, 2, 3]))',
    })
    // Only what this execution changed is reported: state.txt stays out.
    expect(second.body).toMatchObject({ status: 'ok', stdout: 'step1 tmp\n' })
    expect(second.body.files).toEqual([
      { path: '/workspace/out.bin', size: 3, encoding: 'base64', content: 'AQID' },
    ])

    const listing = await t.request('GET', `/v1/sessions/${session.id}/files`)
    expect(listing.body.entries).toEqual([
      { name: 'data', type: 'directory', size: 0 },
      { name: 'out.bin', type: 'file', size: 3 },
      { name: 'state.txt', type: 'file', size: 6 },
    ])
    const download = await fetch(`${t.server.url}/v1/sessions/${session.id}/files/out.bin`, {
      headers: { authorization: `Bearer ${TEST_TOKEN}` },
    })
    expect(download.status).toBe(200)
    expect(Buffer.from(await download.arrayBuffer())).toEqual(Buffer.from([1, 2, 3]))

    expect((await t.request('DELETE', `/v1/sessions/${session.id}/files/data`)).status).toBe(204)
    const gone = await t.request('GET', `/v1/sessions/${session.id}/files/data/in.txt`)
    expect(gone.status).toBe(404)
    expect(gone.body.error.code).toBe('FILE_NOT_FOUND')

    expect((await t.request('DELETE', `/v1/sessions/${session.id}`)).status).toBe(204)
    const after = await exec(session.id, { language: 'bash', code: 'true' })
    expect(after.status).toBe(404)
    expect(after.body.error.code).toBe('SESSION_NOT_FOUND')
  })

  it('the files API follows no symbolic link the commands planted and reads no special file', async () => {
    const session = await open()
    await exec(session.id, {
      language: 'bash',
      code: 'ln -s /etc/passwd passwd; ln -s /.cordon link; mkfifo pipe; ln -s / root',
    })
    for (const path of ['passwd', 'link/init.py', 'pipe', 'root/etc/hosts']) {
      const read = await t.request('GET', `/v1/sessions/${session.id}/files/${path}`)
      expect(read.status, path).toBeGreaterThanOrEqual(400)
      expect(read.status, path).toBeLessThan(500)
    }
    const write = await t.request('PUT', `/v1/sessions/${session.id}/files/root/tmp/x`, {
      raw: 'x',
      contentType: 'application/octet-stream',
    })
    expect([400, 409]).toContain(write.status)
    const climb = await t.request('GET', `/v1/sessions/${session.id}/files/a%2F..%2F..%2Fetc%2Fpasswd`)
    // Refused one way or another (the app never routes dot segments), never read.
    expect([400, 404]).toContain(climb.status)
    expect(climb.body.error).toBeDefined()
    await t.request('DELETE', `/v1/sessions/${session.id}`)
  })

  it('an execution ended at a limit ends the session (its sandbox is killed)', async () => {
    const session = await open()
    const { body } = await exec(session.id, { language: 'bash', code: 'sleep 30' })
    expect(body).toMatchObject({ status: 'timeout', error: { code: 'WALL_TIME_LIMIT' } })
    const after = await t.request('GET', `/v1/sessions/${session.id}`)
    expect(after.status).toBe(404)
  })

  it('ends a session after its idle timeout', async () => {
    const session = await open('worker', { idleTimeoutSeconds: 1 })
    expect(session.idleTimeoutSeconds).toBe(1)
    await expect
      .poll(async () => (await t.request('GET', `/v1/sessions/${session.id}`)).status, { timeout: 5000 })
      .toBe(404)
  })

  it('caps the sessions one tenant holds (429 SESSION_LIMIT), and frees a place when one ends', async () => {
    const held = [await open(), await open(), await open()]
    const over = await t.request('POST', '/v1/agents/worker/sessions')
    expect(over.status).toBe(429)
    expect(over.body.error.code).toBe('SESSION_LIMIT')
    await t.request('DELETE', `/v1/sessions/${held[0].id}`)
    const again = await open()
    for (const session of [...held.slice(1), again]) await t.request('DELETE', `/v1/sessions/${session.id}`)
  })

  it('an operation that outlasts the idle timeout keeps its session (the timer waits for it)', async () => {
    const session = await open('worker', { idleTimeoutSeconds: 1 })
    const { body } = await exec(session.id, { language: 'bash', code: 'sleep 2; echo done' })
    expect(body).toMatchObject({ status: 'ok', stdout: 'done\n' })
    expect((await t.request('GET', `/v1/sessions/${session.id}`)).status).toBe(200)
    await t.request('DELETE', `/v1/sessions/${session.id}`)
  })

  it('parallel opens cannot pass the per-tenant cap', async () => {
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => t.request('POST', '/v1/agents/worker/sessions')),
    )
    const opened = answers.filter((answer) => answer.status === 201)
    expect(opened).toHaveLength(3)
    expect(answers.filter((answer) => answer.status === 429)).toHaveLength(5)
    for (const answer of opened) await t.request('DELETE', `/v1/sessions/${answer.body.id}`)
  })

  it('a changed profile ends the session: its grants are never older than the declaration', async () => {
    await t.request('PUT', '/v1/profiles/changing', {
      body: {
        engines: ['container'],
        languages: ['bash'],
        limits: LIMITS,
        filesystem: { access: 'read-write', quotaBytes: 65_536 },
      },
    })
    await t.request('PUT', '/v1/agents/changer', { body: { sandbox: 'changing' } })
    const session = await open('changer')
    expect((await exec(session.id, { language: 'bash', code: 'true' })).status).toBe(200)
    await t.request('PUT', '/v1/profiles/changing', {
      body: { engines: ['container'], languages: ['bash'], limits: { ...LIMITS, wallMs: 2000 } },
    })
    const after = await exec(session.id, { language: 'bash', code: 'true' })
    expect(after.status).toBe(404)
    expect(after.body.error.message).toContain('changed')
  })

  it('files a command planted cannot stall or kill the session: a FIFO, a very deep tree', async () => {
    const session = await open()
    await exec(session.id, {
      language: 'python',
      code: 'import os\nos.mkfifo("pipe")\nos.mkdir("deep")\nos.chdir("deep")\nfor _ in range(1100):\n    os.mkdir("d")\n    os.chdir("d")',
    })
    const fifo = await t.request('PUT', `/v1/sessions/${session.id}/files/pipe`, {
      raw: 'x',
      contentType: 'application/octet-stream',
    })
    expect(fifo.status).toBe(400)
    expect((await t.request('DELETE', `/v1/sessions/${session.id}/files/deep`)).status).toBe(204)
    const still = await exec(session.id, { language: 'bash', code: 'ls' })
    expect(still.body).toMatchObject({ status: 'ok', stdout: 'pipe\n' })
    await t.request('DELETE', `/v1/sessions/${session.id}`)
  })

  it('refuses bad requests before anything starts', async () => {
    const js = await t.request('POST', '/v1/agents/example/sessions')
    expect(js.status).toBe(403)
    expect(js.body.error.message).toContain('sessions run on the container engine')
    const unknown = await t.request('POST', '/v1/agents/worker/sessions', { body: { idle: 5 } })
    expect(unknown.status).toBe(422)
    const long = await t.request('POST', '/v1/agents/worker/sessions', {
      body: { idleTimeoutSeconds: 999_999 },
    })
    expect(long.status).toBe(422)
    const missing = await t.request('GET', '/v1/sessions/ses_nothere')
    expect(missing.status).toBe(404)
    const malformed = await t.request('GET', '/v1/sessions/..%2F..')
    expect(malformed.status).toBe(404)
  })

  it("another tenant's session is not found, whatever it asks", async () => {
    const test = await startTestHarness({ engines: ['quickjs', 'container'] })
    try {
      const { harness } = test
      const profile = {
        engines: ['container'],
        languages: ['bash'],
        limits: LIMITS,
        filesystem: { access: 'read-write', quotaBytes: 65_536 },
      }
      for (const tenant of ['acme', 'mallory']) {
        harness.putProfile(tenant, 'p', JSON.stringify(profile), 'json')
        harness.putAgent(tenant, 'a', JSON.stringify({ sandbox: 'p' }), 'json')
      }
      const session = await harness.sessions.open('acme', 'a', {})
      await harness.sessions.writeFile('acme', session.id, 'secret.txt', Buffer.from('acme only'))
      const notFound = { code: 'SESSION_NOT_FOUND' }
      expect(() => harness.sessions.get('mallory', session.id)).toThrow(expect.objectContaining(notFound))
      expect(harness.sessions.list('mallory')).toEqual([])
      await expect(harness.sessions.readFile('mallory', session.id, 'secret.txt')).rejects.toMatchObject(
        notFound,
      )
      await expect(
        harness.sessions.execute('mallory', session.id, {
          language: 'bash',
          code: 'cat secret.txt',
          input: null,
        }),
      ).rejects.toMatchObject(notFound)
      await expect(harness.sessions.close('mallory', session.id)).rejects.toMatchObject(notFound)
      // Still there for its tenant.
      expect((await harness.sessions.readFile('acme', session.id, 'secret.txt')).toString()).toBe('acme only')
      await harness.sessions.closeAll()
    } finally {
      await test.close()
    }
  })
})
