import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { sandboxAvailability } from '@cordon/executor'
import { type ChildServer, spawnChildServer } from './child-server.ts'

// `npm run bench`, container part: python3 and bash executions through the HTTP API on the container
// engine, cold (every sandbox started on the request path, CORDON_WARM_SANDBOXES=0) and from the warm
// pool (the default), beside a bare `spawn` of the same command from this process, measured in the
// same run with the samples interleaved. One client, one request at a time: this is latency, not
// throughput. Goal: warm-pool python under 2x the bare spawn at p50. See bench/README.md.

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url))
const RESULTS_FILE = fileURLToPath(new URL('./results/container-latest.json', import.meta.url))
const SAMPLES = wholeNumber('BENCH_CONTAINER_SAMPLES', 60)
const WARMUP = 5
const GOAL_RATIO = 2

interface Command {
  key: 'python' | 'bash'
  code: string
  bare: [string, string[]]
}

const COMMANDS: Command[] = [
  { key: 'python', code: 'print(1)', bare: ['/usr/bin/python3', ['-c', 'print(1)']] },
  { key: 'bash', code: 'echo 1', bare: ['/bin/bash', ['-c', 'echo 1']] },
]

const availability = sandboxAvailability()
if (!availability.ok) {
  console.log(`bench: container engine skipped: ${availability.problem}`)
  process.exit(0)
}

const servers: ChildServer[] = []
const dataDirs: string[] = []
const cleanup = async () => {
  await Promise.all(servers.map((server) => server.stop()))
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true })
}
process.on('exit', () => {
  for (const server of servers) server.killNow()
})

try {
  const token = `bench-${randomBytes(24).toString('base64url')}`
  const [cold, warm] = await Promise.all([startGateway(token, '0'), startGateway(token, '2')])
  const report: Record<string, Record<string, { p50: number; p99: number; samples: number }>> = {}
  for (const command of COMMANDS) {
    const samples = { bare: [] as number[], cold: [] as number[], warm: [] as number[] }
    console.log(`bench: container ${command.key}: ${WARMUP} warm-up and ${SAMPLES} measured samples each`)
    for (let i = 0; i < WARMUP + SAMPLES; i++) {
      // Interleaved, in a rotating order, so that a slow spell of the machine lands on all three.
      const steps = [
        async () => ({ key: 'bare' as const, ms: await bareSpawn(command) }),
        async () => ({ key: 'cold' as const, ms: await execute(cold, token, command) }),
        async () => ({ key: 'warm' as const, ms: await execute(warm, token, command) }),
      ]
      for (let step = 0; step < steps.length; step++) {
        const { key, ms } = await (steps[(i + step) % steps.length] as (typeof steps)[number])()
        if (i >= WARMUP) samples[key].push(ms)
      }
      // A client that pauses between requests, as agents do: the pool refills meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    report[command.key] = Object.fromEntries(
      Object.entries(samples).map(([key, list]) => [
        key,
        { p50: percentile(list, 0.5), p99: percentile(list, 0.99), samples: list.length },
      ]),
    )
  }
  printReport(report)
  mkdirSync(dirname(RESULTS_FILE), { recursive: true })
  writeFileSync(
    RESULTS_FILE,
    `${JSON.stringify({ startedAt: new Date().toISOString(), samples: SAMPLES, goalRatio: GOAL_RATIO, report }, null, 2)}\n`,
  )
  console.log(`bench: wrote ${RESULTS_FILE}`)
} catch (error) {
  console.error(`bench: container part FAILED: ${error instanceof Error ? error.message : String(error)}`)
  process.exitCode = 1
} finally {
  await cleanup()
}

async function startGateway(token: string, warmSandboxes: string): Promise<string> {
  const dataDir = mkdtempSync(join(tmpdir(), 'cordon-bench-container-'))
  dataDirs.push(dataDir)
  const server = spawnChildServer({
    name: `gateway(warm=${warmSandboxes})`,
    args: ['--disable-warning=ExperimentalWarning', join(REPO_ROOT, 'services/gateway/src/adapters/node.ts')],
    env: {
      ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('CORDON_'))),
      PORT: '0',
      HOST: '127.0.0.1',
      CORDON_DATA_DIR: dataDir,
      CORDON_ADMIN_TOKEN: token,
      CORDON_WARM_SANDBOXES: warmSandboxes,
    },
    readyLine: /^cordon: listening on (http:\/\/\S+)/,
    readyTimeoutMs: 60_000,
  })
  servers.push(server)
  const url = await server.ready
  const put = await fetch(`${url}/v1/agents/bench-container`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ sandbox: 'data-analysis', description: 'bench: container executions' }),
  })
  if (put.status !== 200) throw new Error(`creating the bench agent got ${put.status}: ${await put.text()}`)
  return url
}

async function execute(url: string, token: string, command: Command): Promise<number> {
  const started = performance.now()
  const response = await fetch(`${url}/v1/agents/bench-container/executions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ language: command.key, code: command.code }),
  })
  const body = (await response.json()) as { status?: string; stdout?: string }
  const ms = performance.now() - started
  if (response.status !== 200 || body.status !== 'ok' || body.stdout !== '1\n') {
    throw new Error(
      `a ${command.key} execution answered ${response.status}: ${JSON.stringify(body).slice(0, 300)}`,
    )
  }
  return ms
}

function bareSpawn(command: Command): Promise<number> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const child = spawn(command.bare[0], command.bare[1], { stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk
    })
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0 || out !== '1\n') reject(new Error(`bare ${command.key} exited ${code} with "${out}"`))
      else resolve(performance.now() - started)
    })
  })
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return Math.round((sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? 0) * 10) / 10
}

function printReport(report: Record<string, Record<string, { p50: number; p99: number }>>): void {
  console.log('\ncontainer engine, one request at a time (ms; ratio = p50 / bare spawn p50)')
  console.log('command  target                  p50      p99   ratio')
  for (const [command, targets] of Object.entries(report)) {
    const bare = targets.bare?.p50 ?? Number.NaN
    for (const [target, stats] of Object.entries(targets)) {
      const label =
        { bare: 'bare spawn', cold: 'sandbox, cold', warm: 'sandbox, warm pool' }[target] ?? target
      console.log(
        `${command.padEnd(8)} ${label.padEnd(20)} ${stats.p50.toFixed(1).padStart(7)} ${stats.p99.toFixed(1).padStart(8)} ${(stats.p50 / bare).toFixed(2).padStart(6)}x`,
      )
    }
  }
  const python = report.python
  if (python?.warm !== undefined && python.bare !== undefined) {
    const ratio = python.warm.p50 / python.bare.p50
    console.log(
      `goal: warm-pool python under ${GOAL_RATIO}x the bare spawn at p50: ${ratio.toFixed(2)}x, ${ratio < GOAL_RATIO ? 'met' : 'NOT met'}`,
    )
  }
}

function wholeNumber(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === '') return fallback
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 1) {
    console.error(`bench: ${name} must be a whole number >= 1, got "${raw}"`)
    process.exit(2)
  }
  return value
}
