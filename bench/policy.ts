// `npm run bench:policy`: the cost of policy decisions, as ratios against a baseline measured in the
// same run (one WHATWG URL parse, the least any egress check must do). Two profiles: the built-in
// web-reader with an ordinary request, and the worst profiles the glob bounds allow (below). Prints a
// table; exits 0.
import { readFileSync } from 'node:fs'
import { decideEgress, parseDocument, type ResolvedProfile, resolveProfile } from '@cordon/policy'

const ROUNDS = Number(process.env.BENCH_POLICY_ROUNDS ?? 5)

function resolved(document: unknown, lookup?: (name: string) => unknown): ResolvedProfile {
  const result = resolveProfile(document, lookup === undefined ? {} : { lookup })
  if (!result.ok) throw new Error(JSON.stringify(result.issues))
  return result.profile
}

/** Median time per call (µs) over ROUNDS rounds of `iterations` calls. */
function measure(iterations: number, fn: () => unknown): number {
  const times: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < iterations; i++) fn()
    times.push(Number(process.hrtime.bigint() - start) / 1000 / iterations)
  }
  times.sort((a, b) => a - b)
  return times[Math.floor(times.length / 2)] ?? Number.NaN
}

const webReaderText = readFileSync(new URL('../sandbox-profiles/web-reader.yaml', import.meta.url), 'utf8')
const webReaderDoc = parseDocument(webReaderText, 'yaml')
if (!webReaderDoc.ok) throw new Error(webReaderDoc.message)
const webReader = resolved(webReaderDoc.value)

// The most a tenant can make a decision cost within the bounds: 64 globs (4096 characters in all)
// with three "**" and four "*" per segment, whose first and last blocks match, so that the middle
// blocks are searched along a 127-segment path; and a child whose globs only the parent's last glob covers.
const glob = (tag: string) => `/**/*a*a*a*a${tag}/**/*a*a*a*a/*a*a*a*a/**/*a*a*a*a/*a*a`
const rules = (make: (k: number, j: number) => string) =>
  Array.from({ length: 4 }, (_, k) => ({
    host: '*',
    paths: Array.from({ length: 16 }, (_, j) => make(k, j)),
  }))
const limits = { cpuMs: 100, wallMs: 100, memoryMb: 64, outputBytes: 1000, bindingCalls: 10 }
const base = { engines: ['quickjs'], languages: ['javascript'], limits }
const worstDoc = {
  name: 'worst',
  ...base,
  network: { allow: rules((k, j) => (k === 3 && j === 15 ? '/**' : glob(`${k}x${j}`))) },
}
const worstChild = {
  name: 'child',
  extends: 'worst',
  network: { allow: rules((k, j) => `/${Array(7).fill('aaa').join('/')}/q${k}${j}`) },
}
const worst = resolved({
  name: 'deny',
  ...base,
  network: { allow: [{ host: '*' }], deny: rules((k, j) => glob(`${k}x${j}`)) },
})

const ordinaryURL = 'https://api.github.com/repos/nodejs/node/issues?state=open'
const longURL = `https://x.example/${Array(126).fill('a'.repeat(60)).join('/')}/aa`

const baseline = measure(20_000, () => new URL(ordinaryURL))
const rows: [string, number][] = [
  [
    'decideEgress, web-reader, allowed request',
    measure(20_000, () => decideEgress(webReader, { url: ordinaryURL })),
  ],
  [
    'decideEgress, web-reader, denied host',
    measure(20_000, () => decideEgress(webReader, { url: 'https://evil.example/' })),
  ],
  ['decideEgress, worst bounded profile', measure(20, () => decideEgress(worst, { url: longURL }))],
  ['resolveProfile, web-reader', measure(2_000, () => resolved(webReaderDoc.value))],
  [
    'resolveProfile, worst child of worst parent',
    measure(3, () => resolved(worstChild, (n) => (n === 'worst' ? worstDoc : undefined))),
  ],
]

console.log(`baseline: new URL() of one URL, ${baseline.toFixed(2)} µs (median of ${ROUNDS} rounds)\n`)
console.log(`${'case'.padEnd(48)}${'µs per call'.padStart(14)}${'x baseline'.padStart(14)}`)
for (const [name, micros] of rows) {
  console.log(
    `${name.padEnd(48)}${micros.toFixed(1).padStart(14)}${(micros / baseline).toFixed(1).padStart(14)}`,
  )
}
