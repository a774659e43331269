import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type ChildServer, spawnChildServer } from './child-server.ts'
import { Cleanup, message } from './cleanup.ts'
import { assertClean, runLoad } from './load.ts'
import { sampleBusyCpuPercent, treeCpuSeconds } from './process-cpu.ts'
import { buildReport, formatReport, GOAL, type Round, type TargetReport, writeReport } from './report.ts'
import {
  BENCH_AGENT,
  bareTarget,
  checkSample,
  clip,
  engineTarget,
  executionTarget,
  hopTarget,
  type Target,
} from './targets.ts'

// `npm run bench`: the trivial execution path against a bare Hono route and against the process-hop
// floor (HTTP plus an IPC round trip to a worker that answers at once), then each engine (QuickJS and
// V8 isolates) on the trivial execution and on a CPU-bound one, fib(27): same client, same machine.
// Exits 0 whether or not the goal is met, 1 if any request failed or a server misbehaved, 2 on bad
// configuration, 130 when interrupted. See bench/README.md.

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url))
const RESULTS_FILE = fileURLToPath(new URL('./results/latest.json', import.meta.url))
const NODE_FLAGS = ['--disable-warning=ExperimentalWarning']
const READY_TIMEOUT_MS = 60_000

interface Config {
  durationSeconds: number
  warmupSeconds: number
  rounds: number
  connections: number
}

const config = readConfig()
const cleanup = new Cleanup()
const interrupt = new AbortController()
process.on('exit', () => cleanup.runSync())
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupt.signal.aborted) {
      // Second signal: stop waiting for a graceful shutdown.
      cleanup.runSync()
      process.exit(130)
    }
    console.error(`\nbench: ${signal}, stopping and cleaning up`)
    interrupt.abort(new Error(`interrupted by ${signal}`))
  })
}

try {
  await main(config, interrupt.signal)
} catch (error) {
  if (interrupt.signal.aborted) {
    console.error('bench: interrupted; no results written')
    process.exitCode = 130
  } else {
    console.error(`\nbench: FAILED: ${message(error)}`)
    process.exitCode = 1
  }
} finally {
  await cleanup.run()
}

async function main(config: Config, signal: AbortSignal): Promise<void> {
  const { durationSeconds, warmupSeconds, connections } = config
  const startedAt = new Date()
  const backgroundCpuPercent = await sampleBusyCpuPercent()
  const dataDir = mkdtempSync(join(tmpdir(), 'cordon-bench-'))
  cleanup.add({
    name: `temp dir ${dataDir}`,
    run: () => rm(dataDir, { recursive: true, force: true }),
    runSync: () => rmSync(dataDir, { recursive: true, force: true }),
  })
  const token = `bench-${randomBytes(24).toString('base64url')}`

  const gateway = track(
    spawnChildServer({
      name: 'gateway',
      args: [...NODE_FLAGS, join(REPO_ROOT, 'services/gateway/src/adapters/node.ts')],
      env: {
        ...withoutServerEnv(process.env),
        PORT: '0',
        HOST: '127.0.0.1',
        CORDON_DATA_DIR: dataDir,
        CORDON_ADMIN_TOKEN: token,
      },
      readyLine: /^cordon: listening on (http:\/\/\S+)/,
      readyTimeoutMs: READY_TIMEOUT_MS,
    }),
  )
  /** A comparison server from bench/: `<name>-server.ts`, printing `<name>: listening on <url>`. */
  const startReference = (name: 'bare' | 'hop') =>
    track(
      spawnChildServer({
        name,
        args: [...NODE_FLAGS, join(REPO_ROOT, `bench/${name}-server.ts`)],
        env: withoutServerEnv(process.env),
        readyLine: new RegExp(`^${name}: listening on (http://\\S+)`),
        readyTimeoutMs: READY_TIMEOUT_MS,
        ipc: true,
      }),
    )
  const bare = startReference('bare')
  const hop = startReference('hop')
  console.log('bench: starting the gateway, the bare Hono server and the process-hop server...')
  const [gatewayURL, bareURL, hopURL] = await abortable(
    Promise.all([gateway.ready, bare.ready, hop.ready]),
    signal,
  )

  await createBenchAgent(gatewayURL, token)
  // Rounds, each measuring every target back to back (in a rotating order), so that a slow spell
  // of a shared machine lands in one round's numbers rather than between the two numbers of a ratio.
  const targets = [
    { key: 'bare', target: bareTarget(bareURL, token), server: bare },
    { key: 'hop', target: hopTarget(hopURL, token), server: hop },
    { key: 'execution', target: executionTarget(gatewayURL, token), server: gateway },
    { key: 'isolate', target: engineTarget(gatewayURL, token, 'isolate'), server: gateway },
    { key: 'quickjsFib', target: engineTarget(gatewayURL, token, 'quickjsFib'), server: gateway },
    { key: 'isolateFib', target: engineTarget(gatewayURL, token, 'isolateFib'), server: gateway },
  ] as const
  for (const { target } of targets) await checkSample(target)
  const rounds: Round[] = []
  for (let index = 0; index < config.rounds; index++) {
    const round: Partial<Round> = {}
    console.log(`bench: round ${index + 1} of ${config.rounds}`)
    for (let step = 0; step < targets.length; step++) {
      const { key, target, server } = targets[(index + step) % targets.length] as (typeof targets)[number]
      round[key] = await measure(
        target,
        server,
        { ...config, warmupSeconds: index === 0 ? config.warmupSeconds : 0 },
        signal,
      )
    }
    rounds.push(round as Round)
  }

  const report = buildReport({
    startedAt,
    backgroundCpuPercent,
    connections,
    warmupSeconds,
    durationSeconds,
    rounds,
  })
  console.log(`\n${formatReport(report)}\n`)
  writeReport(RESULTS_FILE, report)
  console.log(`bench: wrote ${RESULTS_FILE}`)
}

/**
 * Warm-up, then the measured run, each checked for failures, then one more sample request. CPU time
 * is taken around the measured run for the server's process tree and for this (client) process.
 */
async function measure(
  target: Target,
  server: ChildServer,
  config: Config,
  signal: AbortSignal,
): Promise<TargetReport> {
  const load = { connections: config.connections, signal }
  if (config.warmupSeconds > 0) {
    console.log(`bench: ${target.label}: warming up for ${config.warmupSeconds} s`)
    assertClean(target, 'warm-up', await runLoad(target, { ...load, durationSeconds: config.warmupSeconds }))
  }
  console.log(`bench: ${target.label}: measuring for ${config.durationSeconds} s`)
  const serverBefore = server.pid === undefined ? null : treeCpuSeconds(server.pid)
  const clientBefore = process.cpuUsage()
  const result = await runLoad(target, { ...load, durationSeconds: config.durationSeconds })
  const client = process.cpuUsage(clientBefore)
  const serverAfter = server.pid === undefined ? null : treeCpuSeconds(server.pid)
  assertClean(target, 'measured run', result)
  await checkSample(target)
  const perRequest = (seconds: number) => (1000 * seconds) / result.requests
  return {
    label: target.label,
    url: target.url,
    ...result,
    cpuMsPerRequest: {
      server: serverBefore === null || serverAfter === null ? null : perRequest(serverAfter - serverBefore),
      client: perRequest((client.user + client.system) / 1e6),
    },
  }
}

/** The agent the engine targets run as, under the built-in `tool-runner` profile (QuickJS or isolates). */
async function createBenchAgent(baseURL: string, token: string): Promise<void> {
  const response = await fetch(`${baseURL}/v1/agents/${BENCH_AGENT}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ sandbox: 'tool-runner', description: 'bench: executions on a named engine' }),
    signal: AbortSignal.timeout(10_000),
  })
  if (response.status !== 200) {
    throw new Error(`creating the bench agent got ${response.status}: ${clip(await response.text())}`)
  }
}

function track(server: ChildServer): ChildServer {
  cleanup.add({ name: server.name, run: () => server.stop(), runSync: () => server.killNow() })
  return server
}

/** Settings the servers read from the environment are set explicitly, never inherited. */
function withoutServerEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(env).filter(([key]) => !key.startsWith('CORDON_') && key !== 'PORT' && key !== 'HOST'),
  )
}

function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted()
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    void promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

function readConfig(): Config {
  const number = (name: string, fallback: number, min: number, unit: string, integer = false) => {
    const raw = process.env[name]
    if (raw === undefined || raw.trim() === '') return fallback
    const value = Number(raw)
    if (!Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
      console.error(
        `bench: ${name} must be ${integer ? 'a whole' : 'a'} number of ${unit} >= ${min}, got "${raw}"`,
      )
      process.exit(2)
    }
    return value
  }
  return {
    durationSeconds: number('BENCH_DURATION', 5, 1, 'seconds'),
    warmupSeconds: number('BENCH_WARMUP', 15, 0, 'seconds'),
    rounds: number('BENCH_ROUNDS', 3, 1, 'rounds', true),
    connections: GOAL.connections,
  }
}
