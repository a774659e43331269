import { randomFillSync } from 'node:crypto'

/**
 * QuickJS's `Math.random` is xorshift64* over one 64-bit word in the context, seeded from the clock
 * when the context is created. A restored image would replay the same sequence in every run, so the
 * engine finds that word once and writes a fresh random seed into it before each run.
 */

const MASK = (1n << 64n) - 1n
const MULTIPLIER = 0x2545f4914f6cdd1dn

/** The state after one step. */
export function nextState(state: bigint): bigint {
  let x = state
  x ^= x >> 12n
  x = (x ^ (x << 25n)) & MASK
  x ^= x >> 27n
  return x
}

/** What `Math.random()` returns when its step left `state` behind. */
export function randomFor(state: bigint): number {
  return Number(((state * MULTIPLIER) & MASK) >> 12n) / 2 ** 52
}

/**
 * Finds the address of the state word in `[from, to)`: the one aligned word that `draw` (one call of
 * the guest's untouched `Math.random`) advanced by exactly one step, to the state that produced the
 * number it returned. `hint`, an address found in an earlier module of the same build, is checked first.
 */
export function locateRandomState(
  memory: WebAssembly.Memory,
  from: number,
  to: number,
  draw: () => number,
  hint: number | null,
): number {
  const before = new Uint8Array(memory.buffer).slice(from, to)
  const drawn = draw()
  const after = new DataView(memory.buffer)
  const was = new DataView(before.buffer)
  const matches = (address: number) => {
    const old = was.getBigUint64(address - from, true)
    const now = after.getBigUint64(address, true)
    return old !== 0n && now === nextState(old) && randomFor(now) === drawn
  }
  if (hint !== null && hint >= from && hint + 8 <= to && matches(hint)) return hint
  const found: number[] = []
  for (let address = Math.ceil(from / 8) * 8; address + 8 <= to; address += 8) {
    if (matches(address)) found.push(address)
  }
  const [address] = found
  if (address === undefined || found.length > 1) {
    throw new Error(`cannot find QuickJS's Math.random state (${found.length} candidates)`)
  }
  return address
}

/** Seeds drawn from the CSPRNG 512 at a time (one call per 512 runs instead of one per run). */
const seeds = new BigUint64Array(512)
let nextSeed = seeds.length

/** Writes a fresh non-zero random state at `address`. */
export function seedRandomState(memory: WebAssembly.Memory, address: number): void {
  let seed = 0n
  while (seed === 0n) {
    if (nextSeed === seeds.length) {
      randomFillSync(seeds)
      nextSeed = 0
    }
    seed = seeds[nextSeed++] ?? 0n
  }
  new DataView(memory.buffer).setBigUint64(address, seed, true)
}
