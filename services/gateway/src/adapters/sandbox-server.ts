import { startSandboxProtocolServer } from '@cordon/executor'

// `./cordon sandbox-server`: Cordon's container engine serving @cloudflare/sandbox's container control
// protocol, a Docker-free stand-in for the Cloudflare container during development. Point a Worker
// at it with CORDON_SANDBOX_URL (`npx wrangler dev --var CORDON_SANDBOX_URL:http://127.0.0.1:3000`).
const port = Number(process.env.PORT ?? '3000')
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`cordon sandbox-server: PORT must be a port number, got "${process.env.PORT}"`)
  process.exit(2)
}
// Off loopback, a token is required (CORDON_SANDBOX_TOKEN here, and the same setting on the Worker).
const token = process.env.CORDON_SANDBOX_TOKEN
// Where sandboxes' HTTP egress goes, as Cloudflare hands a container's requests to the Worker: the
// Worker's development route, e.g. http://127.0.0.1:8787/__cordon/sandbox-outbound (wrangler dev).
const outbound = process.env.CORDON_SANDBOX_OUTBOUND
const server = await startSandboxProtocolServer({
  port,
  host: process.env.HOST ?? '127.0.0.1',
  ...(token === undefined || token === '' ? {} : { token }),
  ...(outbound === undefined || outbound === '' ? {} : { outbound }),
})
console.log(`cordon sandbox-server: the sandbox container protocol on ${server.url}`)
const stop = () => {
  void server.close().then(() => process.exit(0))
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
