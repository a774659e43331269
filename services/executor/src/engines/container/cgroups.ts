import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * Per-sandbox control groups: memory, pids and CPU. cgroup v2 is used where its controllers are
 * enabled for us; otherwise the v1 hierarchies (this kind of host only has v1 memory/pids/cpu).
 * Every sandbox's group lives under one parent per worker process, named after the worker's pid, so
 * a group a dead worker left behind can be found and removed (`sweepStaleGroups`).
 */
export interface SandboxLimits {
  memoryBytes: number
  /** Most tasks (processes and threads) at once, the sandbox's own helpers included. */
  tasks: number
  /** CPU bandwidth: at most this many cores' worth of time per period. */
  cores: number
}

export interface SandboxGroup {
  readonly name: string
  /** The `cgroup.procs` files a process writes its pid into to join every controller's group. */
  readonly procsFiles: readonly string[]
  /** CPU time used by the group's tasks so far, in microseconds. */
  cpuUsageMicros(): number
  /** The most memory the group has held. */
  memoryPeakBytes(): number
  /** How many times the kernel's OOM killer has killed a task of the group. */
  oomKills(): number
  /** Changes the group's limits (a pooled sandbox takes on the limits of the job it runs). */
  setLimits(limits: SandboxLimits): void
  /**
   * SIGKILLs every task of the group but `spare` until no other is left: the sandbox's outer
   * bubblewrap is spared so that it reaps the inner one and exits to its own parent (a task killed
   * together with its parent is reparented to the host's init and may linger there as a zombie).
   */
  killAllBut(spare: number | undefined): Promise<void>
  /** SIGKILLs every task of the group until none is left, then removes the group. */
  destroy(): Promise<void>
}

export interface CgroupHost {
  readonly version: 1 | 2
  create(name: string, limits: SandboxLimits): SandboxGroup
  /** Removes this process's parent groups once its sandboxes' groups are gone (an orderly end). */
  removeParents(): void
}

const CPU_PERIOD_MICROS = 100_000
const PARENT_PREFIX = 'cordon-'

type Controller = 'memory' | 'pids' | 'cpu' | 'cpuacct'

interface MountedHierarchy {
  /** Absolute directory of this process's own group in the hierarchy: sandbox groups nest under it. */
  base: string
  controllers: Controller[]
}

/**
 * Finds usable cgroups for this process, or explains why there are none. `parentName` names the
 * parent group of this worker's sandboxes (under the process's own group in each hierarchy).
 */
export function detectCgroups(parentName: string, procRoot = '/proc'): CgroupHost | { problem: string } {
  const proc = readProc(procRoot)
  if (proc === null) return { problem: 'cannot read /proc/self/mountinfo and /proc/self/cgroup' }
  const { mounts, groups } = proc
  const unified = mounts.find((mount) => mount.version === 2)
  if (unified !== undefined) {
    // The controllers must already be handed down to this process's children (its group's
    // subtree_control): a group with processes of its own cannot enable them for new children.
    const base = join(unified.point, groups.get('') ?? '/')
    const delegated = readWords(join(base, 'cgroup.subtree_control'))
    if (['memory', 'pids', 'cpu'].every((name) => delegated.includes(name))) {
      return new UnifiedHost(join(base, `${PARENT_PREFIX}${parentName}`))
    }
  }
  const hierarchies: MountedHierarchy[] = []
  for (const controller of ['memory', 'pids', 'cpu', 'cpuacct'] as const) {
    const mount = mounts.find((m) => m.version === 1 && m.controllers.includes(controller))
    if (mount === undefined) continue
    const own = [...groups].find(([key]) => key.split(',').includes(controller))?.[1] ?? '/'
    const base = join(mount.point, own)
    const known = hierarchies.find((h) => h.base === base)
    if (known === undefined) hierarchies.push({ base, controllers: [controller] })
    else known.controllers.push(controller)
  }
  const have = hierarchies.flatMap((h) => h.controllers)
  const missing = (['memory', 'pids', 'cpuacct'] as const).filter((c) => !have.includes(c))
  if (missing.length > 0) {
    return {
      problem: `no cgroup v2 with memory, pids and cpu enabled, and no cgroup v1 ${missing.join(', ')} hierarchy`,
    }
  }
  return new LegacyHost(
    hierarchies.map((h) => ({ ...h, base: join(h.base, `${PARENT_PREFIX}${parentName}`) })),
  )
}

/**
 * Removes the sandbox groups of workers that no longer run (killing what is left in them): the
 * parent groups `cordon-<pid>` whose pid is gone. Called when a worker exits and when the service starts.
 */
export function sweepStaleGroups(procRoot = '/proc'): number {
  const proc = readProc(procRoot)
  if (proc === null) return 0
  const { mounts, groups } = proc
  let removed = 0
  for (const mount of mounts) {
    const own =
      mount.version === 2
        ? (groups.get('') ?? '/')
        : ([...groups].find(([key]) => key.split(',').some((c) => mount.controllers.includes(c)))?.[1] ?? '/')
    const base = join(mount.point, own)
    let entries: string[]
    try {
      entries = readdirSync(base)
    } catch {
      continue
    }
    for (const entry of entries) {
      const pid = /^cordon-(\d+)$/.exec(entry)?.[1]
      if (pid === undefined || existsSync(join(procRoot, pid))) continue
      removeTree(join(base, entry))
      removed += 1
    }
  }
  return removed
}

/** This process's cgroup mounts and its own group in each hierarchy, or null when /proc says nothing. */
function readProc(procRoot: string): { mounts: Mount[]; groups: Map<string, string> } | null {
  try {
    return {
      mounts: cgroupMounts(readFileSync(join(procRoot, 'self/mountinfo'), 'utf8')),
      groups: ownGroups(readFileSync(join(procRoot, 'self/cgroup'), 'utf8')),
    }
  } catch {
    return null
  }
}

interface Mount {
  point: string
  version: 1 | 2
  controllers: string[]
}

function cgroupMounts(mountinfo: string): Mount[] {
  const mounts: Mount[] = []
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ')
    if (left === undefined || right === undefined) continue
    const fields = left.split(' ')
    const [fstype, , options] = right.split(' ')
    const point = fields[4]
    if (point === undefined) continue
    if (fstype === 'cgroup2') mounts.push({ point, version: 2, controllers: [] })
    if (fstype === 'cgroup') mounts.push({ point, version: 1, controllers: (options ?? '').split(',') })
  }
  return mounts
}

/** This process's group per hierarchy: controller list ('' for v2) -> path. */
function ownGroups(membership: string): Map<string, string> {
  const groups = new Map<string, string>()
  for (const line of membership.split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line)
    if (match !== null) groups.set(match[1] as string, match[2] as string)
  }
  return groups
}

function readWords(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').trim().split(/\s+/)
  } catch {
    return []
  }
}

function readNumber(file: string): number {
  try {
    return Number(readFileSync(file, 'utf8').trim().split(/\s+/)[0] ?? 0) || 0
  } catch {
    return 0
  }
}

/** Creates a group (and the per-worker parent above it, if missing). */
function makeGroup(path: string): void {
  mkdirSync(path, { recursive: true })
}

/**
 * Kills every task listed in `procsFile` (but `spare`) until it lists no other (a fork bomb is
 * bounded by pids.max, and a pid namespace whose first process is killed admits no new process).
 */
async function killAll(procsFile: string, spare?: number): Promise<void> {
  for (let round = 0; round < 200; round++) {
    let pids: number[]
    try {
      pids = readFileSync(procsFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map(Number)
        .filter((pid) => pid !== spare)
    } catch {
      return
    }
    if (pids.length === 0) return
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
    await new Promise((resolve) => setTimeout(resolve, round < 10 ? 1 : 10))
  }
}

/** Removes a group directory and any groups below it (children first), killing their tasks. */
function removeTree(dir: string): void {
  let entries: string[] = []
  try {
    entries = readdirSync(dir, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
  } catch {
    return
  }
  for (const entry of entries) removeTree(join(dir, entry))
  for (let round = 0; round < 50; round++) {
    try {
      for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL')
        } catch {
          // gone
        }
      }
      rmdirSync(dir)
      return
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5)
    }
  }
}

async function removeDir(dir: string): Promise<void> {
  for (let round = 0; round < 100; round++) {
    try {
      rmdirSync(dir)
      return
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if (code === 'ENOENT') return
      if (code !== 'EBUSY') throw error
      await new Promise((resolve) => setTimeout(resolve, round < 10 ? 1 : 10))
    }
  }
  throw new Error(`cgroup ${dir} stayed busy`)
}

class LegacyHost implements CgroupHost {
  readonly version = 1
  readonly #hierarchies: readonly MountedHierarchy[]

  constructor(hierarchies: readonly MountedHierarchy[]) {
    this.#hierarchies = hierarchies
  }

  removeParents(): void {
    for (const hierarchy of this.#hierarchies) removeTree(hierarchy.base)
  }

  create(name: string, limits: SandboxLimits): SandboxGroup {
    const dirs = new Map<Controller, string>()
    const created: string[] = []
    try {
      for (const hierarchy of this.#hierarchies) {
        const dir = join(hierarchy.base, name)
        makeGroup(dir)
        created.push(dir)
        for (const controller of hierarchy.controllers) dirs.set(controller, dir)
      }
      setLegacyLimits(dirs, limits)
    } catch (error) {
      for (const dir of created) removeTree(dir)
      throw error
    }
    const memory = dirs.get('memory') as string
    const cpuacct = dirs.get('cpuacct') as string
    return {
      name,
      procsFiles: created.map((dir) => join(dir, 'cgroup.procs')),
      cpuUsageMicros: () => readNumber(join(cpuacct, 'cpuacct.usage')) / 1000,
      memoryPeakBytes: () => readNumber(join(memory, 'memory.max_usage_in_bytes')),
      oomKills: () => statField(join(memory, 'memory.oom_control'), 'oom_kill'),
      setLimits: (limits) => setLegacyLimits(dirs, limits),
      killAllBut: async (spare) => {
        for (const dir of created) await killAll(join(dir, 'cgroup.procs'), spare)
      },
      destroy: async () => {
        for (const dir of created) await killAll(join(dir, 'cgroup.procs'))
        for (const dir of created) await removeDir(dir)
      },
    }
  }
}

/** Writes v1 limits; memory+swap is never below memory alone, so the order depends on the direction. */
function setLegacyLimits(dirs: ReadonlyMap<Controller, string>, limits: SandboxLimits): void {
  const memory = dirs.get('memory') as string
  const limit = join(memory, 'memory.limit_in_bytes')
  // No swap beyond the limit, where swap accounting exists.
  const memsw = join(memory, 'memory.memsw.limit_in_bytes')
  const files = existsSync(memsw) ? [limit, memsw] : [limit]
  const raising = limits.memoryBytes > readNumber(limit)
  for (const file of raising ? files.reverse() : files) writeFileSync(file, String(limits.memoryBytes))
  // TCP buffers (loopback pairs filled and never read) are charged only once this has a limit; without
  // it they count against the host's global tcp_mem, outside the group's memory.
  const tcp = join(memory, 'memory.kmem.tcp.limit_in_bytes')
  if (existsSync(tcp)) writeFileSync(tcp, String(limits.memoryBytes))
  writeFileSync(join(dirs.get('pids') as string, 'pids.max'), String(limits.tasks))
  const cpu = dirs.get('cpu')
  if (cpu !== undefined) {
    writeFileSync(join(cpu, 'cpu.cfs_period_us'), String(CPU_PERIOD_MICROS))
    writeFileSync(join(cpu, 'cpu.cfs_quota_us'), String(Math.round(CPU_PERIOD_MICROS * limits.cores)))
  }
}

function setUnifiedLimits(dir: string, limits: SandboxLimits): void {
  writeFileSync(join(dir, 'memory.max'), String(limits.memoryBytes))
  const swap = join(dir, 'memory.swap.max')
  if (existsSync(swap)) writeFileSync(swap, '0')
  writeFileSync(join(dir, 'pids.max'), String(limits.tasks))
  writeFileSync(join(dir, 'cpu.max'), `${Math.round(CPU_PERIOD_MICROS * limits.cores)} ${CPU_PERIOD_MICROS}`)
}

class UnifiedHost implements CgroupHost {
  readonly version = 2
  readonly #parent: string

  constructor(parent: string) {
    this.#parent = parent
  }

  removeParents(): void {
    removeTree(this.#parent)
  }

  create(name: string, limits: SandboxLimits): SandboxGroup {
    if (!existsSync(this.#parent)) {
      makeGroup(this.#parent)
      writeFileSync(join(this.#parent, 'cgroup.subtree_control'), '+memory +pids +cpu')
    }
    const dir = join(this.#parent, name)
    makeGroup(dir)
    try {
      setUnifiedLimits(dir, limits)
    } catch (error) {
      removeTree(dir)
      throw error
    }
    return {
      name,
      procsFiles: [join(dir, 'cgroup.procs')],
      cpuUsageMicros: () => statField(join(dir, 'cpu.stat'), 'usage_usec'),
      memoryPeakBytes: () => readNumber(join(dir, 'memory.peak')),
      oomKills: () => statField(join(dir, 'memory.events'), 'oom_kill'),
      setLimits: (limits) => setUnifiedLimits(dir, limits),
      killAllBut: (spare) => killAll(join(dir, 'cgroup.procs'), spare),
      destroy: async () => {
        try {
          writeFileSync(join(dir, 'cgroup.kill'), '1')
        } catch {
          await killAll(join(dir, 'cgroup.procs'))
        }
        await killAll(join(dir, 'cgroup.procs'))
        await removeDir(dir)
      },
    }
  }
}

function statField(file: string, field: string): number {
  try {
    const line = readFileSync(file, 'utf8')
      .split('\n')
      .find((l) => l.startsWith(`${field} `))
    return line === undefined ? 0 : Number(line.slice(field.length + 1)) || 0
  } catch {
    return 0
  }
}
