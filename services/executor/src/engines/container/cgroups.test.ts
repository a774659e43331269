import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { detectCgroups } from './cgroups.ts'

// Which cgroup version the engine picks, from a made-up /proc (mountinfo and cgroup membership) and
// made-up mount points. The real groups are exercised by the sandbox tests and attack catalogue.

const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function fakeHost(
  mounts: { type: 'cgroup' | 'cgroup2'; point: string; options: string }[],
  membership: string,
) {
  const root = mkdtempSync(join(tmpdir(), 'cordon-cgroups-test-'))
  dirs.push(root)
  mkdirSync(join(root, 'proc/self'), { recursive: true })
  const lines = mounts.map(
    (mount, index) =>
      `${30 + index} 23 0:${28 + index} / ${join(root, mount.point)} rw,relatime - ${mount.type} ${mount.type} rw,${mount.options}`,
  )
  writeFileSync(join(root, 'proc/self/mountinfo'), `${lines.join('\n')}\n`)
  writeFileSync(join(root, 'proc/self/cgroup'), membership)
  for (const mount of mounts) mkdirSync(join(root, mount.point), { recursive: true })
  return root
}

describe('detectCgroups', () => {
  it('uses cgroup v1 memory, pids and cpu hierarchies when v2 has no controllers enabled', () => {
    const root = fakeHost(
      [
        { type: 'cgroup', point: 'cg/memory', options: 'memory' },
        { type: 'cgroup', point: 'cg/pids', options: 'pids' },
        { type: 'cgroup', point: 'cg/cpu,cpuacct', options: 'cpu,cpuacct' },
        { type: 'cgroup2', point: 'cg/unified', options: 'nsdelegate' },
      ],
      '4:memory:/service\n8:pids:/\n2:cpu,cpuacct:/\n0::/\n',
    )
    writeFileSync(join(root, 'cg/unified/cgroup.subtree_control'), '')
    const host = detectCgroups('7', join(root, 'proc'))
    expect(host).toMatchObject({ version: 1 })
  })

  it("uses cgroup v2 when memory, pids and cpu are handed down to this process's children", () => {
    const root = fakeHost([{ type: 'cgroup2', point: 'cg', options: 'nsdelegate' }], '0::/app.slice\n')
    mkdirSync(join(root, 'cg/app.slice'))
    writeFileSync(join(root, 'cg/app.slice/cgroup.subtree_control'), 'cpuset cpu io memory pids\n')
    expect(detectCgroups('7', join(root, 'proc'))).toMatchObject({ version: 2 })
  })

  it('explains what is missing when neither version can limit memory, pids and CPU', () => {
    const root = fakeHost(
      [
        { type: 'cgroup2', point: 'cg', options: 'nsdelegate' },
        { type: 'cgroup', point: 'v1/cpu', options: 'cpu,cpuacct' },
      ],
      '0::/\n',
    )
    writeFileSync(join(root, 'cg/cgroup.subtree_control'), 'cpu io\n')
    expect(detectCgroups('7', join(root, 'proc'))).toEqual({
      problem: 'no cgroup v2 with memory, pids and cpu enabled, and no cgroup v1 memory, pids hierarchy',
    })
  })
})
