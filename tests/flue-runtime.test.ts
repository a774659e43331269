import { sandboxAvailability } from '@cordon/executor'
import { type CordonSandboxFactory, cordon } from '@cordon/flue-sandbox'
import { type Context, fauxAssistantMessage, fauxProvider, fauxToolCall } from '@earendil-works/pi-ai'
import {
  createBashTool,
  createEditTool,
  createGlobTool,
  createGrepTool,
  createReadTool,
  createWriteTool,
  init,
  type Sandbox,
  type SandboxDriver,
  type SandboxFactory,
  useModel,
  useSandbox,
} from '@flue/runtime'
import { start } from '@flue/runtime/node'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startTestServer, TEST_TOKEN, type TestServer } from './helpers/server.ts'

// @cordon/flue-sandbox with the real @flue/runtime 2.1: checked against its types, wrapped by its
// sandboxFromDriver, driven by its standard model-facing tools, and attached to a real Flue agent
// (useSandbox(cordon(...))) whose scripted model calls the tools.

let t: TestServer
let factory: CordonSandboxFactory

beforeAll(async () => {
  const availability = sandboxAvailability()
  if (!availability.ok) throw new Error(`the container engine cannot run here: ${availability.problem}`)
  t = await startTestServer()
  const profile = await t.request('PUT', '/v1/profiles/flue', {
    body: {
      engines: ['container'],
      languages: ['bash'],
      limits: { cpuMs: 5000, wallMs: 8000, memoryMb: 128, outputBytes: 262_144, bindingCalls: 0 },
      filesystem: { access: 'read-write', quotaBytes: 4_194_304 },
    },
  })
  expect(profile.status, JSON.stringify(profile.body)).toBe(200)
  expect((await t.request('PUT', '/v1/agents/flue', { body: { sandbox: 'flue' } })).status).toBe(200)
  factory = cordon({ url: t.server.url, token: TEST_TOKEN, agent: 'flue' })
})

afterEach(async () => {
  await factory.closeAll()
  expect((await t.request('GET', '/v1/sessions')).body.items).toEqual([])
})

afterAll(() => t.close())

const text = (result: { content: { type: string; text?: string }[] }) =>
  result.content.map((part) => part.text ?? '').join('')

describe('@flue/runtime 2.1', () => {
  it("cordon() is Flue's SandboxFactory and its driver a SandboxDriver (as the compiler checks)", () => {
    const asFactory: SandboxFactory = factory
    const asDriver: SandboxDriver = factory.driver({ id: 'types' })
    expect(typeof asFactory.createSandbox).toBe('function')
    expect(typeof asDriver.exec).toBe('function')
  })

  it("createSandbox and createSessionEnv give Flue's sandbox over one session per id", async () => {
    const sandbox: Sandbox = await factory.createSandbox({ id: 'wrapped' })
    expect(sandbox.cwd).toBe('/workspace')
    expect(sandbox.resolvePath('a/b')).toBe('/workspace/a/b')
    await sandbox.writeFile('deep/er/x.txt', 'z')
    expect(await sandbox.readFile('/workspace/deep/er/x.txt')).toBe('z')
    expect((await sandbox.exec('pwd', { cwd: 'deep' })).stdout).toBe('/workspace/deep\n')
    expect((await sandbox.exec('sleep 5', { timeoutMs: 300 })).exitCode).toBe(124)
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 200)
    await expect(sandbox.exec('sleep 5', { signal: controller.signal })).rejects.toMatchObject({
      name: 'AbortError',
    })

    const session = factory.driver({ id: 'same' })
    const legacy = await factory.createSessionEnv({ id: 'same' })
    const again = await factory.createSandbox({ id: 'same' })
    await legacy.writeFile('shared.txt', 'one session')
    expect(await again.readFile('shared.txt')).toBe('one session')
    expect(session.sessionId).toMatch(/^ses_/)
  })

  it("Flue's standard tools (read, write, edit, bash, grep, glob) work on it", async () => {
    const sandbox = await factory.createSandbox({ id: 'tools' })
    await createWriteTool(sandbox).execute('1', { path: 'src/app.ts', content: 'export const a = 1\n' })
    await createEditTool(sandbox).execute('2', { path: 'src/app.ts', oldText: 'a = 1', newText: 'a = 2' })
    expect(text(await createReadTool(sandbox).execute('3', { path: 'src/app.ts' }))).toContain('a = 2')
    const bash = text(await createBashTool(sandbox).execute('4', { command: 'cat src/app.ts; exit 3' }))
    expect(bash).toContain('export const a = 2')
    expect(bash).toContain('3')
    // The bash tool aborts its signal at the timeout too: the command's own deadline ends it, and
    // the session (with src/app.ts) is kept.
    const session = factory.driver({ id: 'tools' }).sessionId
    const slow = text(await createBashTool(sandbox).execute('5', { command: 'sleep 5', timeout: 1 }))
    expect(slow).toContain('Command exited with code 124')
    expect(factory.driver({ id: 'tools' }).sessionId).toBe(session)
    expect(text(await createGrepTool(sandbox).execute('6', { pattern: 'a = 2' }))).toContain('src/app.ts')
    expect(text(await createGlobTool(sandbox).execute('7', { pattern: '*.ts' }))).toContain('src/app.ts')
  })

  it('a Flue agent with useSandbox(cordon(...)) keeps one Cordon session across its messages', async () => {
    const faux = fauxProvider({ provider: 'scripted', models: [{ id: 'model' }] })
    const seen: Pick<Context, 'systemPrompt' | 'messages'>[] = []
    const record = (answer: string) => (context: Context) => {
      seen.push(
        JSON.parse(JSON.stringify({ systemPrompt: context.systemPrompt, messages: context.messages })),
      )
      return fauxAssistantMessage(answer)
    }
    faux.setResponses([
      fauxAssistantMessage(
        [
          fauxToolCall('bash', {
            command: 'echo hello from flue > greeting.txt && cat greeting.txt && uname -s',
          }),
          fauxToolCall('write', { path: 'report.md', content: '# Report\n' }),
        ],
        { stopReason: 'toolUse' },
      ),
      record('done'),
      fauxAssistantMessage([fauxToolCall('bash', { command: 'cat report.md greeting.txt' })], {
        stopReason: 'toolUse',
      }),
      record('again'),
    ])
    const url = t.server.url
    // As an application writes it: a new factory on every render (Flue renders before each model call).
    function CordonWorker() {
      useModel('scripted/model')
      useSandbox(cordon({ url, token: TEST_TOKEN, agent: 'flue' }))
      return 'You work in a Cordon sandbox.'
    }
    const flue = await start({ agents: [CordonWorker], providers: [faux.provider] })
    try {
      const handle = init(CordonWorker, { id: 'conversation-1' })
      expect((await handle.read(await handle.dispatch('Write the report.'))).text).toBe('done')
      // Flue discovered the workspace through the sandbox at init.
      expect(seen[0]?.systemPrompt).toContain('/workspace')
      const first = (seen[0]?.messages ?? []).filter((message) => message.role === 'toolResult')
      expect(JSON.stringify(first)).toContain('hello from flue\\nLinux')

      const sessions = (await t.request('GET', '/v1/sessions')).body.items
      expect(sessions).toHaveLength(1)
      expect(sessions[0].agent).toBe('flue')
      const report = await t.request('GET', `/v1/sessions/${sessions[0].id}/files/report.md`)
      expect(report.body).toBe('# Report\n')

      // The next message initializes the agent again: the same session, its files still there.
      expect((await handle.read(await handle.dispatch('Read it back.'))).text).toBe('again')
      const second = (seen[1]?.messages ?? []).filter((message) => message.role === 'toolResult')
      expect(JSON.stringify(second.at(-1))).toContain('# Report\\nhello from flue')
      expect(
        (await t.request('GET', '/v1/sessions')).body.items.map((item: { id: string }) => item.id),
      ).toEqual([sessions[0].id])
    } finally {
      await flue.stop()
    }
  })
})
