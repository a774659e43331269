import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build } from 'esbuild'
import { Miniflare } from 'miniflare'
import { it } from 'vitest'

const dir = mkdtempSync(join(tmpdir(), 'cordon-probe-'))
it('probe', async () => {
  const bundle = await build({
    entryPoints: [new URL('./_probe_worker.ts', import.meta.url).pathname],
    bundle: true, format: 'esm', platform: 'neutral', target: 'es2023',
    conditions: ['workerd', 'worker', 'import'], mainFields: ['module', 'main'], external: ['node:*'], write: false,
  })
  const script = bundle.outputFiles[0]?.text ?? ''
  const start = () => new Miniflare({
    modules: true, script, compatibilityDate: '2026-07-30', compatibilityFlags: ['nodejs_compat'],
    durableObjects: { P: { className: 'P', useSQLite: true } }, durableObjectsPersist: join(dir, 'do'),
  })
  let mf = start()
  for (const step of ['nested', 'bigfile']) {
    console.log(step, await (await mf.dispatchFetch(`http://p/${step}`)).text())
  }
  // append, then dispose immediately
  console.log('append', await (await mf.dispatchFetch('http://p/append')).text())
  console.log('count-immediately', await (await mf.dispatchFetch('http://p/count')).text())
  console.log('append2', await (await mf.dispatchFetch('http://p/append')).text())
  await mf.dispose()
  mf = start()
  console.log('count-after-restart', await (await mf.dispatchFetch('http://p/count')).text())
  await mf.dispose()
}, 120_000)
