import { readdirSync, readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, type TestServer } from './helpers/server.ts'

// The container engine through the public API: python3 and bash in a bubblewrap sandbox, answering
// with stdout, stderr, exit status, result and output files in the execution record.

let t: TestServer

const LIMITS = {
  cpuMs: 5000,
  wallMs: 10_000,
  memoryMb: 128,
  outputBytes: 65_536,
  bindingCalls: 0,
  processes: 16,
  openFiles: 64,
}

async function deploy(name: string, profile: Record<string, unknown>): Promise<void> {
  const put = await t.request('PUT', `/v1/profiles/${name}`, {
    body: { engines: ['container'], languages: ['python', 'bash'], limits: LIMITS, ...profile },
  })
  expect(put.status, JSON.stringify(put.body)).toBe(200)
  const agent = await t.request('PUT', `/v1/agents/${name}`, { body: { sandbox: name } })
  expect(agent.status, JSON.stringify(agent.body)).toBe(200)
}

const run = (agent: string, body: Record<string, unknown>) =>
  t.request('POST', `/v1/agents/${agent}/executions`, { body })

beforeAll(async () => {
  t = await startTestServer()
  await deploy('py', { filesystem: { access: 'read-write', quotaBytes: 1_048_576 } })
  await deploy('reader', { filesystem: { access: 'read', quotaBytes: 1_048_576 } })
  await deploy('bare', {})
  await deploy('small', { filesystem: { access: 'read-write', quotaBytes: 1000 } })
})
afterAll(async () => {
  await t.close()
  // The workers ended their pooled sandboxes before exiting: none was left to the host's init, not
  // even as a zombie (an orphan's parent becomes pid 1).
  expect(orphanedSandboxProcesses()).toEqual([])
})

/** Host uids of sandboxes start here (see sandbox.ts). */
const SANDBOX_UID_BASE = 1_700_000_000

/** Processes of a sandbox uid (zombies included) whose parent is the host's init. */
function orphanedSandboxProcesses(): number[] {
  const found: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8')
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)?.[1])
      const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1])
      if (ppid === 1 && uid >= SANDBOX_UID_BASE) found.push(Number(entry))
    } catch {
      // gone
    }
  }
  return found
}

describe('container executions through POST /v1/agents/{name}/executions', () => {
  it('runs python3 and answers stdout, stderr, exit status, result and the files it wrote', async () => {
    const { status, body } = await run('py', {
      language: 'python',
      code: [
        'import json, os, sys',
        'data = json.load(open(os.environ["CORDON_INPUT"]))',
        'print("sum", sum(data["numbers"]))',
        'print("warning", file=sys.stderr)',
        'open("report.csv", "w").write("n,square\\n" + "".join(f"{n},{n*n}\\n" for n in data["numbers"]))',
        'open("blob.bin", "wb").write(bytes([0, 255, 1]))',
        'json.dump({"count": len(data["numbers"])}, open(os.environ["CORDON_RESULT"], "w"))',
      ].join('\n'),
      input: { numbers: [1, 2, 3] },
    })
    expect(status).toBe(200)
    expect(body).toMatchObject({
      engine: 'container',
      language: 'python',
      status: 'ok',
      stdout: 'sum 6\n',
      stderr: 'warning\n',
      exitCode: 0,
      result: { count: 3 },
      error: null,
    })
    expect(body.files).toEqual([
      { path: '/workspace/blob.bin', size: 3, encoding: 'base64', content: 'AP8B' },
      { path: '/workspace/report.csv', size: 21, encoding: 'utf8', content: 'n,square\n1,1\n2,4\n3,9\n' },
    ])
    expect(body.usage.cpuMs).toBeGreaterThan(0)
    expect(body.usage.memoryBytes).toBeGreaterThan(0)
    // The stored record is the answered one.
    const stored = await t.request('GET', `/v1/executions/${body.id}`)
    expect(stored.body).toEqual(body)
  })

  it('runs bash, and a non-zero exit is an error carrying the status', async () => {
    const { body } = await run('py', {
      language: 'bash',
      code: 'echo "on $(uname -n) as $(id -u)"; echo oops >&2; exit 3',
    })
    expect(body).toMatchObject({
      engine: 'container',
      status: 'error',
      stdout: 'on sandbox as 1000\n',
      stderr: 'oops\n',
      exitCode: 3,
      error: { code: 'EXIT_NONZERO', message: 'the command exited with status 3' },
    })
  })

  it('puts input files into /workspace and reports only the files that are new or changed', async () => {
    const { body } = await run('py', {
      language: 'bash',
      code: 'cat data/in.txt; base64 -d <<< "$(base64 data/raw.bin)" | wc -c; echo changed >> data/in.txt',
      files: [
        { path: 'data/in.txt', content: 'hello\n' },
        { path: '/workspace/data/raw.bin', content: 'AAEC', encoding: 'base64' },
      ],
    })
    expect(body).toMatchObject({ status: 'ok', stdout: 'hello\n3\n' })
    expect(body.files).toEqual([
      { path: '/workspace/data/in.txt', size: 14, encoding: 'utf8', content: 'hello\nchanged\n' },
    ])
  })

  it('gives a read-only /workspace under filesystem.access "read"', async () => {
    const { body } = await run('reader', {
      language: 'bash',
      code: 'cat in.txt; echo x > in.txt; echo x > new.txt; echo "exit $?"',
      files: [{ path: 'in.txt', content: 'given\n' }],
    })
    expect(body.stdout).toBe('given\nexit 1\n')
    expect(body.stderr).toContain('Read-only file system')
    expect(body.files).toEqual([])
  })

  it('refuses input files the profile or the engine cannot take, before anything runs', async () => {
    const none = await run('bare', { language: 'bash', code: 'true', files: [{ path: 'a', content: '' }] })
    expect(none.status).toBe(422)
    expect(none.body.error.message).toContain('no /workspace')
    const climb = await run('py', {
      language: 'bash',
      code: 'true',
      files: [{ path: '../etc/x', content: '' }],
    })
    expect(climb.status).toBe(400)
    expect(climb.body.error.code).toBe('PATH_INVALID')
    const twice = await run('py', {
      language: 'bash',
      code: 'true',
      files: [
        { path: 'a', content: '' },
        { path: '/workspace/a', content: '' },
      ],
    })
    expect(twice.status).toBe(422)
    const big = await run('small', {
      language: 'bash',
      code: 'true',
      files: [
        { path: 'a', content: 'x'.repeat(600) },
        { path: 'b', content: 'x'.repeat(600) },
      ],
    })
    expect(big.status).toBe(413)
    expect(big.body.error.code).toBe('QUOTA_EXCEEDED')
    const unknown = await run('py', {
      language: 'bash',
      code: 'true',
      files: [{ path: 'a', content: '', mode: 7 }],
    })
    expect(unknown.status).toBe(422)
    const js = await t.request('POST', '/v1/agents/example/executions', {
      body: { language: 'javascript', code: 'export default 1', files: [{ path: 'a', content: '' }] },
    })
    expect(js.status).toBe(422)
    expect(js.body.error.message).toContain('container engine')
  })

  it('answers a result that is not JSON as an error, and a missing result as null', async () => {
    const bad = await run('py', { language: 'bash', code: 'echo "{nope" > "$CORDON_RESULT"' })
    expect(bad.body).toMatchObject({
      status: 'error',
      exitCode: 0,
      error: { code: 'RESULT_NOT_SERIALIZABLE' },
    })
    const none = await run('py', { language: 'python', code: 'pass' })
    expect(none.body).toMatchObject({ status: 'ok', result: null, exitCode: 0, files: [] })
  })

  it('names a signal that ended the command', async () => {
    const { body } = await run('py', { language: 'bash', code: 'kill -SEGV $$' })
    expect(body).toMatchObject({
      status: 'error',
      exitCode: null,
      error: { code: 'KILLED_BY_SIGNAL', message: 'the command was killed by SIGSEGV' },
    })
  })

  it('never gives one sandbox to two executions, pooled or not', async () => {
    const code =
      'echo run >> /tmp/marker; echo run >> /workspace/marker; cat /tmp/marker /workspace/marker | wc -l'
    for (let i = 0; i < 6; i++) {
      const { body } = await run('py', { language: 'bash', code })
      expect(body.stdout).toBe('2\n')
    }
  })

  it('refuses a profile whose filesystem globs the sandbox could not hold a command to (422)', async () => {
    await deploy('globbed', {
      filesystem: { access: 'read-write', quotaBytes: 65_536, paths: ['/workspace/out/**'] },
    })
    const { status, body } = await run('globbed', { language: 'bash', code: 'echo x > /workspace/anywhere' })
    expect(status).toBe(422)
    expect(body.error).toMatchObject({
      code: 'ENGINE_UNAVAILABLE',
      message: expect.stringContaining('filesystem.paths'),
    })
    const session = await t.request('POST', '/v1/agents/globbed/sessions')
    expect(session.status).toBe(422)
  })

  it('refuses JavaScript on the container engine and python elsewhere with a 403', async () => {
    const js = await run('py', { language: 'javascript', code: 'export default 1' })
    expect(js.status).toBe(403)
    const python = await t.request('POST', '/v1/agents/example/executions', {
      body: { language: 'python', code: 'print(1)' },
    })
    expect(python.status).toBe(403)
  })
})
