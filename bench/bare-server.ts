import { serve } from '@hono/node-server'
import { Hono } from 'hono'

// The baseline for `npm run bench`: Hono on @hono/node-server with one JSON route and nothing else
// (no auth, no body parsing, no store, no workers). Listens on an ephemeral loopback port and prints
// `bare: listening on http://127.0.0.1:<port>` once it accepts connections.

const app = new Hono()
app.post('/', (c) => c.json({ ok: true }))

const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, (info) => {
  console.log(`bare: listening on http://127.0.0.1:${info.port}`)
})

const stop = () => server.close(() => process.exit(0))
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
// Started with an IPC channel by the bench runner: exit with it, even if it died without cleaning up.
process.once('disconnect', () => process.exit(0))
