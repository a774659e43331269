import { resolve } from 'node:path'
import { ENGINES, type EngineName } from '@cordon/contracts'
import { MAX_SESSION_IDLE_SECONDS } from '@cordon/harness'
import { startNodeServer } from '../server.ts'

// Node entry point: configuration from the environment (DESIGN.md contract v1).
const port = Number(process.env.PORT ?? '8787')
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`cordon: PORT must be a port number, got "${process.env.PORT}"`)
  process.exit(2)
}
const dataDir = resolve(process.env.CORDON_DATA_DIR ?? './.cordon')
const workers = process.env.CORDON_WORKERS === undefined ? undefined : Number(process.env.CORDON_WORKERS)
/** A whole number from the environment within bounds, or the default; anything else stops the start. */
function whole(name: string, min: number, max: number): number | undefined {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === '') return undefined
  const value = Number(raw)
  if (!Number.isInteger(value) || value < min || value > max) {
    console.error(`cordon: ${name} must be a whole number from ${min} to ${max}, got "${raw}"`)
    process.exit(2)
  }
  return value
}
const idleSeconds = whole('CORDON_SESSION_IDLE_SECONDS', 1, MAX_SESSION_IDLE_SECONDS)
const maxSessions = whole('CORDON_MAX_SESSIONS', 0, 1000)
const engines = process.env.CORDON_ENGINES?.split(',').map((name) => name.trim())
const unknown = engines?.filter((name) => !(ENGINES as readonly string[]).includes(name)) ?? []
if (engines !== undefined && (engines.length === 0 || unknown.length > 0)) {
  console.error(
    `cordon: CORDON_ENGINES must list engines of ${ENGINES.join(', ')}, got "${process.env.CORDON_ENGINES}"`,
  )
  process.exit(2)
}

const server = await startNodeServer({
  port,
  hostname: process.env.HOST ?? '127.0.0.1',
  dataDir,
  adminToken: process.env.CORDON_ADMIN_TOKEN,
  ...(workers === undefined ? {} : { workers }),
  ...(engines === undefined ? {} : { engines: engines as EngineName[] }),
  sessions: {
    ...(idleSeconds === undefined ? {} : { idleSeconds }),
    ...(maxSessions === undefined ? {} : { maxSessions }),
  },
}).catch((error: unknown) => {
  // A configuration mistake (bad CORDON_WORKERS, short token, port in use) is one clear line, no stack.
  console.error(`cordon: cannot start: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
})

console.log(`cordon: listening on ${server.url} (data: ${dataDir})`)
if (server.tokenGenerated) {
  console.log(`cordon: generated admin token (shown once; stored in ${dataDir}/admin-token):`)
  console.log(`  ${server.adminToken}`)
}
for (const [engine, problem] of Object.entries(server.unavailableEngines)) {
  console.log(`cordon: the ${engine} engine is unavailable here: ${problem}`)
}
const { resumed, abandoned } = server.interrupted
if (resumed > 0) console.log(`cordon: resuming ${resumed} execution(s) the previous process left running`)
if (abandoned > 0)
  console.log(`cordon: ${abandoned} interrupted execution(s) could not be resumed (killed / INTERRUPTED)`)

let stopping = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1)
    stopping = true
    console.log(`cordon: ${signal}, shutting down`)
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  })
}
