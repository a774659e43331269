// `npm run bench:quickjs-checks`: how well counting QuickJS's interrupt polls stands in for a CPU
// clock (the Worker build has none: see `interruptCountMeter`). For each workload, the same run is
// measured both ways on Node: the thread's CPU clock (the baseline) and the polls counted at
// MICROS_PER_INTERRUPT_CHECK. A ratio of 1 is exact; above 1 the count stops a guest early, below 1
// late. Prints a table; exits 0.
import { nodeQuickJSBuild } from '@cordon/executor'
import { MICROS_PER_INTERRUPT_CHECK, prebuiltQuickJS } from '@cordon/executor/quickjs'
import RELEASE_SYNC_MODULE from '@jitl/quickjs-wasmfile-release-sync'
import { newQuickJSWASMModuleFromVariant, newVariant, type QuickJSSyncVariant } from 'quickjs-emscripten-core'

const ROUNDS = Number(process.env.BENCH_CHECKS_ROUNDS ?? 3)
const WORKLOADS: [string, string][] = [
  ['empty loop', 'for (let i = 0; i < 3e7; i++) {}'],
  ['arithmetic loop', 'let s = 0; for (let i = 0; i < 3e6; i++) s += i * 2'],
  ['recursive calls', 'function f(n) { return n < 2 ? n : f(n - 1) + f(n - 2) }; f(24)'],
  [
    'objects and sort',
    'const a = []; for (let i = 0; i < 1e5; i++) a.push({ i, s: "x" + i }); a.sort((x, y) => y.i - x.i)',
  ],
  ['string building', 'let s = ""; for (let i = 0; i < 2e5; i++) s += String.fromCharCode(65 + (i % 26))'],
  [
    'JSON round trips',
    'const v = Array.from({ length: 2e4 }, (_, i) => ({ i })); for (let k = 0; k < 5; k++) JSON.parse(JSON.stringify(v))',
  ],
  [
    'regular expressions',
    'const t = "ab".repeat(5e4); let n = 0; for (let k = 0; k < 20; k++) n += t.match(/a(b)/g).length',
  ],
]

const variant = RELEASE_SYNC_MODULE as unknown as QuickJSSyncVariant
const build = prebuiltQuickJS(nodeQuickJSBuild().wasm)
const module = await newQuickJSWASMModuleFromVariant(newVariant(variant, { wasmModule: build.wasm }))

console.log(
  `counted at ${MICROS_PER_INTERRUPT_CHECK} µs per poll; baseline: the thread's CPU clock (median of ${ROUNDS})`,
)
console.log(['workload'.padEnd(22), 'polls', 'cpu ms', 'counted ms', 'µs/poll', 'counted/cpu'].join('\t'))
for (const [name, code] of WORKLOADS) {
  const rows: { checks: number; cpuUs: number }[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const runtime = module.newRuntime()
    let checks = 0
    runtime.setInterruptHandler(() => {
      checks++
      return false
    })
    const ctx = runtime.newContext()
    const start = process.threadCpuUsage()
    ctx.evalCode(code).unwrap().dispose()
    const used = process.threadCpuUsage(start)
    rows.push({ checks, cpuUs: used.user + used.system })
    ctx.dispose()
    runtime.dispose()
  }
  rows.sort((a, b) => a.cpuUs - b.cpuUs)
  const { checks, cpuUs } = rows[Math.floor(rows.length / 2)] ?? { checks: 0, cpuUs: 0 }
  const counted = checks * MICROS_PER_INTERRUPT_CHECK
  console.log(
    [
      name.padEnd(22),
      checks,
      (cpuUs / 1000).toFixed(0),
      (counted / 1000).toFixed(0),
      checks === 0 ? '-' : (cpuUs / checks).toFixed(0),
      cpuUs === 0 ? '-' : (counted / cpuUs).toFixed(2),
    ].join('\t'),
  )
}
