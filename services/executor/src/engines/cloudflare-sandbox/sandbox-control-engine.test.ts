import { describe, expect, it } from 'vitest'
import type { BindingReply } from '../../bridge/bridge.ts'
import type { BindingChannel, RunJob } from '../../engine.ts'
import { type SandboxControl, SandboxControlEngine } from './sandbox-control-engine.ts'

// The engine's own bounds, around a container whose control calls are scripted here (the whole path
// through the SDK's client and a real sandbox is tests/sandbox-protocol.test.ts). The container runs
// guest code, so what it does through the egress channel is what a guest can do.

const limits = {
  cpuMs: 1000,
  wallMs: 3000,
  memoryMb: 64,
  outputBytes: 1024,
  bindingCalls: 100,
  processes: 8,
  openFiles: 32,
}
const job: RunJob = {
  engine: 'container',
  language: 'bash',
  code: 'true',
  inputJSON: 'null',
  limits,
  tenantKey: 't',
  grants: { fetch: true, kv: false, fs: false, tools: [], secrets: {} },
}

/** A container whose main command runs `during` with the job's egress channel. */
function container(during: (egress: BindingChannel) => Promise<void>, deleteSession = async () => ({})) {
  let egress: BindingChannel | undefined
  let closed = false
  const control: SandboxControl = {
    utils: { createSession: async () => ({}), deleteSession },
    files: { mkdir: async () => ({}), writeFile: async () => ({}) },
    commands: {
      execute: async (command) => {
        if (command.includes('ulimit') && egress !== undefined) await during(egress)
        return { stdout: '', stderr: '', exitCode: command.startsWith('head') ? 1 : 0 }
      },
    },
  }
  const engine = new SandboxControlEngine((_job, channel) => {
    egress = channel
    return {
      control,
      close: async () => {
        closed = true
      },
    }
  })
  return { engine, closed: () => closed }
}

describe('SandboxControlEngine', () => {
  it('attack: a container firing requests at once gets at most 32 in flight; the rest are BINDING_BUSY', async () => {
    const replies: BindingReply[] = []
    let inFlight = 0
    let most = 0
    const host: BindingChannel = async () => {
      inFlight++
      most = Math.max(most, inFlight)
      await new Promise((resolve) => setTimeout(resolve, 50))
      inFlight--
      return { ok: true, value: { status: 200, headers: [] } }
    }
    const { engine } = container(async (egress) => {
      replies.push(
        ...(await Promise.all(
          Array.from({ length: 60 }, () => egress({ kind: 'fetch', op: 'request', args: [] })),
        )),
      )
    })
    expect(await engine.run(job, host)).toMatchObject({ status: 'ok' })
    expect(most).toBe(32)
    expect(replies.filter((reply) => !reply.ok && reply.error.code === 'BINDING_BUSY')).toHaveLength(28)
  })

  it('attack: reply bodies past the run’s budget are refused', async () => {
    const body = Buffer.alloc(1_000_000).toString('base64')
    const codes: string[] = []
    const host: BindingChannel = async () => ({ ok: true, value: { status: 200, headers: [] }, bytes: body })
    const { engine } = container(async (egress) => {
      for (let i = 0; i < 6; i++) {
        const reply = await egress({ kind: 'fetch', op: 'request', args: [] })
        codes.push(reply.ok ? 'ok' : reply.error.code)
      }
    })
    await engine.run(job, host)
    expect(codes).toEqual(['ok', 'ok', 'ok', 'ok', 'REPLY_TOO_LARGE', 'REPLY_TOO_LARGE'])
  })

  it('attack: a session that never ends does not keep its container: it is destroyed all the same', async () => {
    const { engine, closed } = container(
      async () => {},
      () => new Promise(() => {}),
    )
    expect(await engine.run(job, async () => ({ ok: true, value: null }))).toMatchObject({ status: 'ok' })
    expect(closed()).toBe(true)
  }, 15_000)
})
