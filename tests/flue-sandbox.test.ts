import { createHash } from 'node:crypto'
import { inspect } from 'node:util'
import { sandboxAvailability } from '@cordon/executor'
import { type CordonSandbox, type CordonSandboxFactory, cordon } from '@cordon/flue-sandbox'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, TEST_TOKEN, type TestServer } from './helpers/server.ts'

// @cordon/flue-sandbox against the real service, through its public API only: a Flue sandbox
// driver over a container session (files, commands, limits, reopening), the attacks it must
// refuse, and the real @flue/runtime 2.1 (its sandbox wrapper, its standard tools, and an agent
// run with useSandbox(cordon(...))) in tests/flue-runtime.test.ts.

let t: TestServer
let factory: CordonSandboxFactory

const LIMITS = {
  cpuMs: 5000,
  wallMs: 8000,
  memoryMb: 128,
  outputBytes: 262_144,
  bindingCalls: 0,
  processes: 32,
  openFiles: 64,
}

async function deploy(name: string, profile: Record<string, unknown>): Promise<void> {
  const put = await t.request('PUT', `/v1/profiles/${name}`, {
    body: { engines: ['container'], languages: ['bash'], limits: LIMITS, ...profile },
  })
  expect(put.status, JSON.stringify(put.body)).toBe(200)
  const agent = await t.request('PUT', `/v1/agents/${name}`, { body: { sandbox: name } })
  expect(agent.status, JSON.stringify(agent.body)).toBe(200)
}

let ids = 0
/** A driver for a fresh instance id (so a fresh session). */
const fresh = (): CordonSandbox => factory.driver({ id: `instance-${++ids}` })

beforeAll(async () => {
  // The container engine needs bubblewrap: without it these tests fail here, loudly, never skip.
  const availability = sandboxAvailability()
  if (!availability.ok) throw new Error(`the container engine cannot run here: ${availability.problem}`)
  t = await startTestServer({ sessions: { maxSessions: 8 } })
  await deploy('flue', { filesystem: { access: 'read-write', quotaBytes: 4_194_304 } })
  await deploy('flue-short', {
    limits: { ...LIMITS, wallMs: 3000 },
    filesystem: { access: 'read-write', quotaBytes: 65_536 },
  })
  await deploy('flue-cpu', {
    limits: { ...LIMITS, cpuMs: 500 },
    filesystem: { access: 'read-write', quotaBytes: 65_536 },
  })
  await deploy('js-only', { engines: ['quickjs'], languages: ['javascript'] })
  factory = cordon({ url: t.server.url, token: TEST_TOKEN, agent: 'flue' })
})

afterEach(async () => {
  await factory.closeAll()
  // Every session a test opened was ended by closeAll (or by Cordon).
  const { body } = await t.request('GET', '/v1/sessions')
  expect(body.items).toEqual([])
})

afterAll(() => t.close())

describe('files', () => {
  it('writes, reads and lists text and binary files, creating parents', async () => {
    const sandbox = fresh()
    await sandbox.writeFile('/workspace/notes/a.txt', 'hello\n')
    expect(await sandbox.readFile('/workspace/notes/a.txt')).toBe('hello\n')
    expect(await sandbox.readFile('notes/a.txt')).toBe('hello\n')
    await sandbox.writeFile('notes/a.txt', 'replaced')
    expect(await sandbox.readFile('notes/a.txt')).toBe('replaced')

    const bytes = Uint8Array.from({ length: 1024 }, (_, i) => (i * 7) % 256)
    await sandbox.writeFile('/workspace/notes/bin.dat', bytes)
    expect(await sandbox.readFileBuffer('/workspace/notes/bin.dat')).toEqual(bytes)
    // The same bytes on the sandbox's disk.
    const sum = await sandbox.exec('sha256sum notes/bin.dat')
    expect(sum.stdout.split(' ')[0]).toBe(createHash('sha256').update(bytes).digest('hex'))

    expect(await sandbox.readdir('/workspace/notes')).toEqual(['a.txt', 'bin.dat'])
    expect(await sandbox.readdir('/workspace')).toEqual(['notes'])
  })

  it('stat, exists, mkdir, readdir and rm -r over a nested tree', async () => {
    const sandbox = fresh()
    await sandbox.mkdir('/workspace/a/b/c', { recursive: true })
    await sandbox.mkdir('/workspace/a/b/c', { recursive: true })
    await expect(sandbox.mkdir('/workspace/a/b')).rejects.toMatchObject({ code: 'EEXIST', syscall: 'mkdir' })
    await expect(sandbox.mkdir('/workspace/x/y')).rejects.toMatchObject({ code: 'ENOENT' })
    await sandbox.mkdir('/workspace/a/d')
    await sandbox.writeFile('/workspace/a/b/c/f.txt', 'abc')

    const file = await sandbox.stat('/workspace/a/b/c/f.txt')
    expect(file).toMatchObject({ isFile: true, isDirectory: false, isSymbolicLink: false, size: 3 })
    expect(Math.abs(file.mtime.getTime() - Date.now())).toBeLessThan(60_000)
    expect(await sandbox.stat('/workspace/a/b')).toMatchObject({ isFile: false, isDirectory: true })
    expect((await sandbox.stat('/workspace')).isDirectory).toBe(true)
    await expect(sandbox.stat('/workspace/a/nothing')).rejects.toMatchObject({ code: 'ENOENT' })

    expect(await sandbox.readdir('/workspace/a')).toEqual(['b', 'd'])
    expect(await sandbox.exists('/workspace/a/b/c/f.txt')).toBe(true)
    expect(await sandbox.exists('/workspace/a/b')).toBe(true)
    expect(await sandbox.exists('/workspace')).toBe(true)
    expect(await sandbox.exists('/workspace/a/missing')).toBe(false)
    expect(await sandbox.exists('/workspace/missing/deeper')).toBe(false)
    expect(await sandbox.exists('/workspace/a/b/c/f.txt/under-a-file')).toBe(false)

    await expect(sandbox.readFile('/workspace/a/missing')).rejects.toMatchObject({
      code: 'ENOENT',
      errno: -2,
    })
    await expect(sandbox.readFile('/workspace/a')).rejects.toMatchObject({ code: 'EISDIR' })
    await expect(sandbox.readdir('/workspace/a/b/c/f.txt')).rejects.toMatchObject({ code: 'ENOTDIR' })
    await expect(sandbox.readdir('/workspace/none')).rejects.toMatchObject({ code: 'ENOENT' })
    await expect(sandbox.writeFile('/workspace/a/b', 'x')).rejects.toMatchObject({ code: 'EISDIR' })

    await expect(sandbox.rm('/workspace/a')).rejects.toMatchObject({ code: 'EISDIR', syscall: 'rm' })
    await sandbox.rm('/workspace/a/b/c/f.txt')
    expect(await sandbox.exists('/workspace/a/b/c/f.txt')).toBe(false)
    await sandbox.rm('/workspace/a', { recursive: true })
    expect(await sandbox.exists('/workspace/a')).toBe(false)
    await expect(sandbox.rm('/workspace/a', { recursive: true })).rejects.toMatchObject({ code: 'ENOENT' })
    await sandbox.rm('/workspace/a', { recursive: true, force: true })
    await expect(sandbox.rm('/workspace/gone.txt')).rejects.toMatchObject({ code: 'ENOENT' })
    await sandbox.rm('/workspace/gone.txt', { force: true })
    await expect(sandbox.rm('/workspace', { recursive: true })).rejects.toMatchObject({ code: 'EPERM' })
    expect(await sandbox.readdir('/workspace')).toEqual([])
  })

  it('symbolic links: stat describes the target and the link, reads and writes follow it', async () => {
    const sandbox = fresh()
    await sandbox.exec(
      'echo hi > target.txt; ln -s target.txt link; ln -s nowhere dangling; mkdir d; ln -s d dlink',
    )
    expect(await sandbox.stat('link')).toMatchObject({ isFile: true, isSymbolicLink: true, size: 3 })
    expect(await sandbox.stat('dlink')).toMatchObject({ isDirectory: true, isSymbolicLink: true })
    await expect(sandbox.stat('dangling')).rejects.toMatchObject({ code: 'ENOENT' })
    expect(await sandbox.exists('link')).toBe(true)
    expect(await sandbox.exists('dangling')).toBe(false)
    // The files API follows no link: these go through a command in the same sandbox.
    expect(await sandbox.readFile('link')).toBe('hi\n')
    await sandbox.writeFile('link', 'through the link')
    expect(await sandbox.readFile('target.txt')).toBe('through the link')
    await sandbox.writeFile('dlink/inside.txt', 'x')
    expect(await sandbox.readdir('dlink')).toEqual(['inside.txt'])
    expect(await sandbox.readdir('/workspace')).toEqual(['d', 'dangling', 'dlink', 'link', 'target.txt'])
  })
})

describe('exec', () => {
  it('runs bash in /workspace with cwd, env, separate streams and the exit status', async () => {
    const sandbox = fresh()
    expect(await sandbox.exec('pwd')).toEqual({ stdout: '/workspace\n', stderr: '', exitCode: 0 })
    await sandbox.mkdir('/workspace/sub dir')
    expect((await sandbox.exec('pwd', { cwd: '/workspace/sub dir' })).stdout).toBe('/workspace/sub dir\n')
    expect((await sandbox.exec('pwd', { cwd: 'sub dir' })).stdout).toBe('/workspace/sub dir\n')
    expect((await sandbox.exec('pwd', { cwd: '/tmp' })).stdout).toBe('/tmp\n')
    const missing = await sandbox.exec('pwd', { cwd: '/workspace/none' })
    expect(missing).toMatchObject({ stdout: '', exitCode: 1 })
    expect(missing.stderr).toContain('cannot change to the directory /workspace/none')

    const env = await sandbox.exec(`printf '%s|%s|%s' "$GREETING" "$QUOTED" "$HOME"`, {
      env: { GREETING: 'hi there', QUOTED: `it's "quoted"` },
    })
    expect(env.stdout).toBe(`hi there|it's "quoted"|/workspace`)

    expect(await sandbox.exec('echo out; echo err >&2; exit 7')).toEqual({
      stdout: 'out\n',
      stderr: 'err\n',
      exitCode: 7,
    })
    expect((await sandbox.exec('kill -SEGV $$')).exitCode).toBe(139)
    // Files stay from one command to the next; stdin is empty (the script is not on it).
    await sandbox.exec('echo kept > state.txt')
    expect((await sandbox.exec('cat state.txt; read -r line; echo "[$line]"')).stdout).toBe('kept\n[]\n')
    // Here-documents, and a command longer than one argument may be (128 KiB).
    const heredoc = await sandbox.exec(`cat <<'EOF'\nline one\nEOF\necho after`)
    expect(heredoc.stdout).toBe('line one\nafter\n')
    const long = await sandbox.exec(`: '${'x'.repeat(140_000)}'\necho long`)
    expect(long).toMatchObject({ stdout: 'long\n', exitCode: 0 })
  })

  it('a deadline gives exit 124 and a note, kills the command tree, and keeps the session', async () => {
    const sandbox = fresh()
    await sandbox.writeFile('keep.txt', 'kept')
    const session = sandbox.sessionId
    const started = Date.now()
    const result = await sandbox.exec('(sleep 1.5; echo leaked > leaked.txt) & sleep 10; echo late', {
      timeoutMs: 500,
    })
    expect(Date.now() - started).toBeLessThan(4000)
    expect(result.exitCode).toBe(124)
    expect(result.stdout).toBe('')
    expect(result.stderr).toContain('cordon: the command timed out after 500 ms')
    // Older connectors' option name.
    expect((await sandbox.exec('sleep 10', { timeout: 300 })).exitCode).toBe(124)
    await new Promise((resolve) => setTimeout(resolve, 1500))
    expect(await sandbox.exists('leaked.txt')).toBe(false)
    expect(await sandbox.readFile('keep.txt')).toBe('kept')
    expect(sandbox.sessionId).toBe(session)
  })

  it("a command is stopped before the agent's wall-time limit, so the session and its files survive", async () => {
    const short = cordon({ url: t.server.url, token: TEST_TOKEN, agent: 'flue-short' })
    try {
      const sandbox = short.driver({ id: 'short' })
      await sandbox.writeFile('keep.txt', 'kept')
      const session = sandbox.sessionId
      const result = await sandbox.exec('sleep 10; echo late')
      expect(result.exitCode).toBe(124)
      expect(result.stderr).toContain("before the agent's wall-time limit (3000 ms) would end the session")
      expect(await sandbox.readFile('keep.txt')).toBe('kept')
      expect(sandbox.sessionId).toBe(session)
    } finally {
      await short.closeAll()
    }
  })

  it('a command Cordon ends at a limit (CPU) is exit 124 with notes, and the next call opens a new session', async () => {
    const cpu = cordon({ url: t.server.url, token: TEST_TOKEN, agent: 'flue-cpu' })
    try {
      const sandbox = cpu.driver({ id: 'cpu' })
      await sandbox.writeFile('lost.txt', 'x')
      const first = sandbox.sessionId
      const result = await sandbox.exec('echo spinning; while :; do :; done')
      expect(result).toMatchObject({ stdout: 'spinning\n', exitCode: 124 })
      expect(result.stderr).toContain('Cordon stopped the command')
      expect(result.stderr).toContain("the session's sandbox ended with this command")
      expect(sandbox.sessionId).toBeNull()
      const next = await sandbox.exec('ls')
      expect(next.stdout).toBe('')
      expect(next.stderr).toContain('whose /workspace started empty')
      expect(sandbox.sessionId).not.toBe(first)
    } finally {
      await cpu.closeAll()
    }
  })

  it('output past the profile budget is a non-zero exit with a note', async () => {
    const sandbox = fresh()
    const result = await sandbox.exec('head -c 400000 /dev/zero | tr "\\0" x')
    expect(result.exitCode).toBe(1)
    expect(result.stdout.length).toBeLessThanOrEqual(LIMITS.outputBytes)
    expect(result.stderr).toContain('cordon: stdout, stderr and result together exceed outputBytes')
    expect(result.stderr).toContain('outputBytes')
    expect((await sandbox.exec('echo still here')).stdout).toBe('still here\n')
  })

  it('abort: the signal rejects exec, Cordon cancels the command, and the next call opens a new session', async () => {
    const sandbox = fresh()
    await sandbox.writeFile('before.txt', 'x')
    const first = sandbox.sessionId
    const controller = new AbortController()
    const started = Date.now()
    setTimeout(() => controller.abort(), 300)
    await expect(
      sandbox.exec('sleep 6; echo done > done.txt', { signal: controller.signal }),
    ).rejects.toMatchObject({ name: 'AbortError' })
    expect(Date.now() - started).toBeLessThan(2000)
    // Cordon cancelled the command and ended the session's sandbox.
    await expect
      .poll(async () => (await t.request('GET', `/v1/sessions/${first}`)).status, { timeout: 5000 })
      .toBe(404)
    const again = await sandbox.exec('ls; echo again')
    expect(again.stdout).toBe('again\n')
    expect(again.stderr).toContain('the previous Cordon session had ended')
    expect(sandbox.sessionId).not.toBe(first)
    // An abort at the command's own deadline (as Flue's bash tool does) is left to the deadline:
    // the call still rejects, and the session with its files is kept.
    const second = sandbox.sessionId
    await sandbox.writeFile('kept.txt', 'kept')
    const atDeadline = new AbortController()
    setTimeout(() => atDeadline.abort(), 800)
    await expect(
      sandbox.exec('sleep 6', { timeoutMs: 800, signal: atDeadline.signal }),
    ).rejects.toMatchObject({ name: 'AbortError' })
    expect(sandbox.sessionId).toBe(second)
    expect(await sandbox.readFile('kept.txt')).toBe('kept')
    expect((await t.request('GET', `/v1/sessions/${second}`)).status).toBe(200)
    // An already aborted signal sends nothing.
    const idle = fresh()
    await expect(idle.exec('true', { signal: AbortSignal.abort() })).rejects.toMatchObject({
      name: 'AbortError',
    })
    expect(idle.sessionId).toBeNull()
  })
})

describe('sessions', () => {
  it('one session per instance id, opened on first use, reopened after it was closed server-side', async () => {
    const sandbox = factory.driver({ id: 'reopen' })
    expect(factory.driver({ id: 'reopen' })).toBe(sandbox)
    // Flue builds a new factory on every render: one with the same options finds the same driver.
    expect(cordon({ url: t.server.url, token: TEST_TOKEN, agent: 'flue' }).driver({ id: 'reopen' })).toBe(
      sandbox,
    )
    expect(
      cordon({ url: t.server.url, token: TEST_TOKEN, agent: 'flue-short' }).driver({ id: 'reopen' }),
    ).not.toBe(sandbox)
    expect(sandbox.sessionId).toBeNull()
    await sandbox.writeFile('x.txt', 'x')
    const first = sandbox.sessionId
    expect(first).toMatch(/^ses_/)
    const listed = await t.request('GET', '/v1/sessions')
    expect(listed.body.items.map((item: { id: string }) => item.id)).toEqual([first])

    expect((await t.request('DELETE', `/v1/sessions/${first}`)).status).toBe(204)
    // A new session, with an empty /workspace.
    expect(await sandbox.exists('x.txt')).toBe(false)
    expect(sandbox.sessionId).not.toBe(first)
    expect((await sandbox.exec('echo new')).stderr).toContain('whose /workspace started empty')

    await factory.close({ id: 'reopen' })
    await expect(sandbox.exec('true')).rejects.toMatchObject({ code: 'SANDBOX_CLOSED' })
    expect(factory.driver({ id: 'reopen' })).not.toBe(sandbox)
  })

  it('refusals that are not about a file are CordonApiErrors, and none holds the token', async () => {
    const secret = 'not-the-token-but-secret-1234'
    const wrong = cordon({ url: t.server.url, token: secret, agent: 'flue' }).driver({ id: 'x' })
    const unauthenticated = await wrong.exec('true').catch((error: unknown) => error)
    expect(unauthenticated).toMatchObject({ name: 'CordonApiError', code: 'UNAUTHENTICATED', status: 401 })
    const missing = cordon({ url: t.server.url, token: TEST_TOKEN, agent: 'nobody' }).driver({ id: 'x' })
    await expect(missing.readFile('a')).rejects.toMatchObject({ code: 'AGENT_NOT_FOUND', status: 404 })
    const js = cordon({ url: t.server.url, token: TEST_TOKEN, agent: 'js-only' }).driver({ id: 'x' })
    await expect(js.exec('true')).rejects.toMatchObject({ status: 403 })
    const down = cordon({ url: 'http://127.0.0.1:9', token: secret, agent: 'flue' }).driver({ id: 'x' })
    const unreachable = await down.stat('a').catch((error: unknown) => error)
    expect(unreachable).toMatchObject({ code: 'UNREACHABLE', status: 0 })
    for (const value of [unauthenticated, unreachable, wrong, down]) {
      expect(String(value)).not.toContain(secret)
      expect(JSON.stringify(value)).not.toContain(secret)
      expect(inspect(value, { showHidden: true, depth: 10 })).not.toContain(secret)
    }
    expect(() => cordon({ url: `http://user:${secret}@127.0.0.1`, token: secret, agent: 'a' })).toThrow(
      /no credentials in the url/,
    )
    expect(() => cordon({ url: 'file:///etc', token: secret, agent: 'a' })).toThrow(/http/)
    expect(() => cordon({ url: t.server.url, token: 'with space', agent: 'a' })).toThrow(/printable ASCII/)
  })
})

describe('attacks', () => {
  const escapes = [
    '/etc/passwd',
    '../etc/passwd',
    '/workspace/../etc/passwd',
    '/workspace/a/../../etc',
    'a/../../../tmp/x',
    '/',
    '/workspacex/a',
    '/tmp/x',
  ]

  it('path escape: every verb refuses paths outside /workspace before any request (EACCES)', async () => {
    const sandbox = fresh()
    expect(escapes).toHaveLength(8)
    for (const path of escapes) {
      for (const call of [
        () => sandbox.readFile(path),
        () => sandbox.readFileBuffer(path),
        () => sandbox.writeFile(path, 'x'),
        () => sandbox.stat(path),
        () => sandbox.readdir(path),
        () => sandbox.mkdir(path, { recursive: true }),
        () => sandbox.rm(path, { recursive: true, force: true }),
      ]) {
        await expect(call(), path).rejects.toMatchObject({ code: 'EACCES', errno: -13 })
      }
      expect(await sandbox.exists(path), path).toBe(false)
    }
    expect(sandbox.sessionId).toBeNull()
  })

  it('shell injection through a path: quotes, spaces, $(), backquotes and newlines stay one literal name', async () => {
    const sandbox = fresh()
    await sandbox.writeFile('canary.txt', 'alive')
    const name = `it's a "$(touch pwned)" \`touch pwned2\`\nline two; rm -rf .. $HOME *`
    const dir = `/workspace/${name}`
    await sandbox.mkdir(dir, { recursive: true })
    expect(await sandbox.stat(dir)).toMatchObject({ isDirectory: true })
    expect(await sandbox.exists(dir)).toBe(true)
    await sandbox.writeFile(`${dir}/f.txt`, 'inside')
    expect(await sandbox.readFile(`${dir}/f.txt`)).toBe('inside')
    expect(await sandbox.readdir(dir)).toEqual(['f.txt'])
    expect(await sandbox.readdir('/workspace')).toEqual(['canary.txt', name])
    expect((await sandbox.exec('pwd', { cwd: dir })).stdout).toBe(`${dir}\n`)
    await expect(sandbox.rm(dir)).rejects.toMatchObject({ code: 'EISDIR' })
    await sandbox.rm(dir, { recursive: true })
    expect(await sandbox.readdir('/workspace')).toEqual(['canary.txt'])
    expect(await sandbox.readFile('canary.txt')).toBe('alive')
  })

  it('shell injection through env values, env names and cwd: nothing runs', async () => {
    const sandbox = fresh()
    const values = {
      A: '$(touch /workspace/pwned)',
      B: "'; touch /workspace/pwned; '",
      C: '`touch /workspace/pwned`\nD=1',
    }
    const printed = await sandbox.exec(`printf '%s|' "$A" "$B" "$C"`, { env: values })
    expect(printed.stdout).toBe(`${values.A}|${values.B}|${values.C}|`)
    await expect(sandbox.exec('true', { env: { 'X=1; touch /workspace/pwned; Y': 'v' } })).rejects.toThrow(
      /not a valid environment name/,
    )
    await expect(sandbox.exec('true', { env: { X: 'nul\0byte' } })).rejects.toThrow(/without NUL/)
    const cwd = await sandbox.exec('pwd', { cwd: `/workspace/$(touch /workspace/pwned)'"` })
    expect(cwd.exitCode).toBe(1)
    expect(await sandbox.readdir('/workspace')).toEqual([])
  })

  it('NUL in a path or a command is refused before anything is sent', async () => {
    const sandbox = fresh()
    await expect(sandbox.writeFile('a\0b', 'x')).rejects.toMatchObject({ code: 'EINVAL' })
    await expect(sandbox.mkdir('a\0b')).rejects.toMatchObject({ code: 'EINVAL' })
    await expect(sandbox.exec('echo a\0b')).rejects.toThrow(/NUL/)
    expect(sandbox.sessionId).toBeNull()
  })

  it('a FIFO planted in the workspace stalls no read, write or listing', async () => {
    const sandbox = fresh()
    await sandbox.exec('mkfifo pipe; ln -s pipe pipelink')
    const started = Date.now()
    await expect(sandbox.readFile('pipe')).rejects.toMatchObject({ code: 'EINVAL' })
    await expect(sandbox.readFile('pipelink')).rejects.toMatchObject({ code: 'EINVAL' })
    await expect(sandbox.writeFile('pipe', 'x')).rejects.toMatchObject({ code: 'EINVAL' })
    await expect(sandbox.writeFile('pipelink', 'x')).rejects.toMatchObject({ code: 'EINVAL' })
    expect(await sandbox.stat('pipe')).toMatchObject({ isFile: false, isDirectory: false })
    expect(await sandbox.readdir('/workspace')).toEqual(['pipe', 'pipelink'])
    expect(Date.now() - started).toBeLessThan(5000)
    expect((await sandbox.exec('echo alive')).stdout).toBe('alive\n')
  })
})
