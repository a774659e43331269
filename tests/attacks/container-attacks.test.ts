import { readdirSync, readFileSync, statSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { workerChildren } from '../helpers/processes.ts'
import { type Body, startTestServer, type TestServer } from '../helpers/server.ts'

// The process-sandbox attack catalogue: one named attack per case, each in a fresh sandbox (every
// container execution gets its own), each asserting the safe outcome. After every attack the host is
// unchanged: no process of a sandbox uid, no sandbox cgroup, no file a sandbox left, two workers.

const LIMITS = {
  cpuMs: 2000,
  wallMs: 6000,
  memoryMb: 64,
  outputBytes: 65_536,
  bindingCalls: 0,
  processes: 16,
  openFiles: 64,
}
const QUOTA = 1_048_576
/** Host uids of sandboxes start here (see sandbox.ts). */
const SANDBOX_UID_BASE = 1_700_000_000
/** A value only the service's own environment holds. */
const CANARY = `canary-${process.pid}-b5d1`

let t: TestServer
let loopback: Server
let loopbackPort = 0
let loopbackHits = 0

const python = (code: string, extra: Record<string, unknown> = {}) =>
  t.request('POST', '/v1/agents/attacker/executions', { body: { language: 'python', code, ...extra } })
const bash = (code: string, extra: Record<string, unknown> = {}) =>
  t.request('POST', '/v1/agents/attacker/executions', { body: { language: 'bash', code, ...extra } })

/** Runs a python attack and answers its record (which must be a 200). */
async function attack(code: string, language: 'python' | 'bash' = 'python'): Promise<Body> {
  const { status, body } = language === 'python' ? await python(code) : await bash(code)
  expect(status, JSON.stringify(body)).toBe(200)
  return body
}

/**
 * Processes of sandboxes that belong to this test's workers, or to no worker at all (an orphan,
 * reparented to the host's init). Sandboxes of other test files running meanwhile are theirs.
 */
function sandboxProcesses(): string[] {
  const ours = new Set(workerChildren())
  const info = new Map<number, { ppid: number; uid: number; cmd: string }>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8')
      info.set(Number(entry), {
        ppid: Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]),
        uid: Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]),
        cmd: readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').trim(),
      })
    } catch {
      // ended while we looked
    }
  }
  const found: string[] = []
  for (const [pid, process] of info) {
    if (process.uid < SANDBOX_UID_BASE) continue
    let parent = process.ppid
    while (info.get(parent)?.uid !== undefined && (info.get(parent)?.uid ?? 0) >= SANDBOX_UID_BASE) {
      parent = info.get(parent)?.ppid ?? 1
    }
    const owner = info.get(parent)
    const orphan = parent <= 1 || owner === undefined || !owner.cmd.includes('worker-main')
    if (orphan || ours.has(parent)) found.push(`${pid} (${process.cmd || 'zombie'})`)
  }
  return found
}

/** Sandbox cgroups (`cordon-<worker>-<n>`) of this test's workers, anywhere under the cgroup mounts. */
function sandboxGroups(workers = workerChildren()): string[] {
  const found: string[] = []
  const walk = (dir: string, depth: number) => {
    let entries: string[]
    try {
      entries = readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
    } catch {
      return
    }
    for (const name of entries) {
      const worker = /^cordon-(\d+)(-\d+)?$/.exec(name)
      if (worker !== null) {
        if (workers.includes(Number(worker[1]))) found.push(...subgroups(join(dir, name)))
        continue
      }
      if (depth < 4) walk(join(dir, name), depth + 1)
    }
  }
  const subgroups = (dir: string) =>
    readdirSync(dir, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => join(dir, e.name))
  walk('/sys/fs/cgroup', 0)
  return found
}

/** The workers' own parent groups (`cordon-<worker>`), which go when the workers do. */
function parentGroups(workers: number[]): string[] {
  const found: string[] = []
  for (const controller of readdirSync('/sys/fs/cgroup')) {
    const walk = (dir: string, depth: number) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (!entry.isDirectory()) continue
        if (workers.some((w) => entry.name === `cordon-${w}`)) found.push(join(dir, entry.name))
        else if (depth < 3) walk(join(dir, entry.name), depth + 1)
      }
    }
    try {
      walk(join('/sys/fs/cgroup', controller), 0)
    } catch {
      // not a directory we can read
    }
  }
  return found
}

/** Files in the host's temp dir owned by a sandbox uid, and staged workspaces this test's workers left. */
function sandboxFiles(): string[] {
  const workers = workerChildren()
  const found: string[] = []
  for (const entry of readdirSync(tmpdir())) {
    const path = join(tmpdir(), entry)
    try {
      if (statSync(path).uid >= SANDBOX_UID_BASE) found.push(path)
      const worker = /^cordon-sandbox-(\d+)-/.exec(entry)?.[1]
      if (worker !== undefined && workers.includes(Number(worker))) {
        for (const inner of readdirSync(path))
          if (inner.startsWith('workspace-')) found.push(join(path, inner))
      }
    } catch {
      // gone
    }
  }
  return found
}

beforeAll(async () => {
  process.env.CORDON_ATTACK_CANARY = CANARY
  // No sandboxes started ahead, so that every sandbox process seen after an attack is a leftover
  // (the pool is tested on its own in container-engine.test.ts).
  process.env.CORDON_WARM_SANDBOXES = '0'
  loopback = createServer((socket) => {
    loopbackHits += 1
    socket.end('hello from the host\n')
  })
  await new Promise<void>((resolve) => loopback.listen(0, '127.0.0.1', resolve))
  loopbackPort = (loopback.address() as { port: number }).port
  t = await startTestServer()
  const profile = await t.request('PUT', '/v1/profiles/attack', {
    body: {
      engines: ['container'],
      languages: ['python', 'bash'],
      limits: LIMITS,
      filesystem: { access: 'read-write', quotaBytes: QUOTA },
    },
  })
  expect(profile.status, JSON.stringify(profile.body)).toBe(200)
  expect((await t.request('PUT', '/v1/agents/attacker', { body: { sandbox: 'attack' } })).status).toBe(200)
})

afterAll(async () => {
  const workers = workerChildren()
  await t.close()
  await new Promise((resolve) => loopback.close(resolve))
  delete process.env.CORDON_ATTACK_CANARY
  delete process.env.CORDON_WARM_SANDBOXES
  // Shutting down leaves nothing either: no sandbox groups, and no worker parent groups.
  expect(sandboxGroups(workers)).toEqual([])
  // Nor the parent groups and private directories of the workers and of this (the service's) process.
  const owners = [...workers, process.pid]
  expect(parentGroups(owners)).toEqual([])
  expect(
    readdirSync(tmpdir()).filter((entry) => owners.some((pid) => entry.startsWith(`cordon-sandbox-${pid}-`))),
  ).toEqual([])
})

afterEach(async () => {
  // The host is unchanged: the service answers, and nothing of any sandbox is left once the last
  // one (taken down just after its answer) is gone.
  const after = await attack('print(1 + 1)')
  expect(after.stdout).toBe('2\n')
  await expect.poll(() => sandboxProcesses(), { timeout: 10_000 }).toEqual([])
  await expect.poll(() => sandboxGroups(), { timeout: 10_000 }).toEqual([])
  expect(sandboxFiles()).toEqual([])
  expect(workerChildren()).toHaveLength(2)
})

describe('process-sandbox attacks: resources', () => {
  it('fork bomb: ends at the CPU or wall line, with no more processes than the profile allows', async () => {
    const record = await attack(':(){ :|:& };: ; wait', 'bash')
    expect(['timeout', 'error', 'ok']).toContain(record.status)
    if (record.status === 'timeout') expect(record.error.code).toMatch(/^(CPU|WALL)_TIME_LIMIT$/)
  })

  it('fork bomb counted: fork fails once the process limit is reached', async () => {
    const record = await attack(
      [
        'import os, time',
        'n = 0',
        'try:',
        '    while n < 200:',
        '        if os.fork() == 0:',
        '            time.sleep(30); os._exit(0)',
        '        n += 1',
        'except OSError as e:',
        '    print("refused after", n, e.errno)',
      ].join('\n'),
    )
    expect(record.status).toBe('ok')
    const [, count, errno] = /refused after (\d+) (\d+)/.exec(record.stdout) ?? []
    expect(Number(count)).toBeLessThanOrEqual(LIMITS.processes)
    expect(Number(errno)).toBe(11) // EAGAIN
  })

  it('memory bomb: the cgroup kills it (memory_limit)', async () => {
    const record = await attack('a = []\nwhile True: a.append(bytearray(1 << 20))')
    expect(record).toMatchObject({ status: 'memory_limit', error: { code: 'MEMORY_LIMIT' } })
  })

  it('memory bomb in /dev/shm and /tmp: bounded by the same memory line or the tmpfs size', async () => {
    const record = await attack(
      'dd if=/dev/zero of=/dev/shm/fill bs=1M count=512; dd if=/dev/zero of=/tmp/fill bs=1M count=512; echo done',
      'bash',
    )
    expect(['memory_limit', 'ok', 'error']).toContain(record.status)
    if (record.status !== 'memory_limit')
      expect(record.stderr).toMatch(/No space left|File size limit exceeded/)
  })

  it('disk fill: /workspace stops at its quota (ENOSPC), nothing reaches the host disk', async () => {
    const record = await attack(
      [
        'import errno',
        'written = 0',
        'try:',
        '    with open("fill", "wb") as f:',
        '        while True:',
        '            f.write(b"x" * 65536); f.flush(); written += 65536',
        'except OSError as e:',
        '    print(e.errno == errno.ENOSPC or e.errno == errno.EFBIG, written <= ' + QUOTA + ')',
      ].join('\n'),
    )
    expect(record.stdout).toBe('True True\n')
    // The file the command left is too big for the record: named, not inlined.
    expect(record.files).toEqual([expect.objectContaining({ path: '/workspace/fill', omitted: 'size' })])
  })

  it('huge stdout: cut at outputBytes (output_limit)', async () => {
    const record = await attack('yes "all work and no play"', 'bash')
    expect(record).toMatchObject({ status: 'output_limit', error: { code: 'OUTPUT_LIMIT' } })
    expect(Buffer.byteLength(record.stdout) + Buffer.byteLength(record.stderr)).toBeLessThanOrEqual(
      LIMITS.outputBytes,
    )
  })

  it('a daemon left behind: ended with the command', async () => {
    const record = await attack('(setsid sleep 60 &) ; nohup sleep 60 >/dev/null 2>&1 & echo started', 'bash')
    expect(record).toMatchObject({ status: 'ok', stdout: 'started\n' })
    // afterEach: no sandbox process is left on the host.
  })

  it('loopback TCP buffers filled and never read: charged to the sandbox, not to the host', async () => {
    const record = await attack(
      [
        'import os, socket',
        'queued = 0',
        'listener = socket.socket(); listener.bind(("127.0.0.1", 0)); listener.listen(64)',
        'pairs = []',
        'try:',
        '    for _ in range(20):',
        '        a = socket.create_connection(listener.getsockname()); b, _ = listener.accept()',
        '        a.setblocking(False); pairs.append((a, b))',
        '        try:',
        '            while True: queued += a.send(b"x" * 65536)',
        '        except BlockingIOError:',
        '            pass',
        'except OSError as e:',
        '    print("stopped", e.errno)',
        'print("queued MiB", queued >> 20)',
      ].join('\n'),
    )
    expect(['ok', 'memory_limit']).toContain(record.status)
    const queued = Number(/queued MiB (\d+)/.exec(record.stdout)?.[1] ?? 0)
    expect(queued).toBeLessThanOrEqual(LIMITS.memoryMb + 24)
  })

  it('open-file flood: stops at openFiles', async () => {
    const record = await attack(
      'fs = []\ntry:\n    while True: fs.append(open("/dev/null"))\nexcept OSError as e:\n    print(len(fs) < 64, e.errno)',
    )
    expect(record.stdout).toBe('True 24\n') // EMFILE
  })
})

describe('process-sandbox attacks: seeing the host', () => {
  it("/proc snooping: only the sandbox's own processes, none of the host's", async () => {
    const record = await attack(
      `import os\npids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())\nprint(len(pids) <= 4, ${process.pid} in pids)\nprint(open("/proc/1/cmdline").read().split("\\0")[0])`,
    )
    // pid 1 is Cordon's init (python), the namespace's first process.
    expect(record.stdout).toBe('True False\n/usr/bin/python3\n')
  })

  it('/sys snooping: there is no /sys', async () => {
    const record = await attack('ls /sys/fs/cgroup /sys/class/net 2>&1; ls -d /sys 2>&1', 'bash')
    expect(record.stdout).toMatch(/No such file or directory/)
    expect(record.stdout).not.toMatch(/memory|eth0/)
  })

  it('reading host secrets: no /etc/shadow, /root, /home, /run, service data dir or admin token', async () => {
    const record = await attack(
      `for p in /etc/shadow /etc/gshadow /root /home /run /var/run /var /opt /mnt ${t.dataDir} ${t.dataDir}/admin-token /work /proc/1/root/etc/shadow; do [ -e "$p" ] && echo "SEEN $p"; done; grep -c sandbox /etc/passwd; wc -l < /etc/passwd; echo end`,
      'bash',
    )
    expect(record.stdout).toBe('1\n3\nend\n')
  })

  it("the service's environment: nothing of it reaches the sandbox, not even through /proc", async () => {
    const record = await attack(
      [
        'import os',
        'print(sorted(os.environ))',
        'for pid in os.listdir("/proc"):',
        '    if not pid.isdigit(): continue',
        '    try:',
        `        print(pid, ${JSON.stringify(CANARY)}.encode() in open(f"/proc/{pid}/environ", "rb").read())`,
        '    except PermissionError:',
        '        print(pid, "unreadable")',
      ].join('\n'),
    )
    const [names, ...lines] = record.stdout.trim().split('\n')
    expect(names).toBe(
      "['CORDON_INPUT', 'CORDON_RESULT', 'HOME', 'LANG', 'LOGNAME', 'PATH', 'PYTHONDONTWRITEBYTECODE', 'PYTHONUNBUFFERED', 'TMPDIR', 'USER']",
    )
    // The init's environment is unreadable (not dumpable); every other process's lacks the canary.
    expect(lines).toContain('1 unreadable')
    for (const line of lines) expect(line).toMatch(/^\d+ (False|unreadable)$/)
  })

  it("other sandboxes' workspaces: a concurrent sandbox's files are nowhere to be found", async () => {
    const marker = `secret-${Date.now()}`
    const holder = python(
      `import time\nopen("${marker}.txt", "w").write("${marker}")\ntime.sleep(1.5)\nprint("held")`,
    )
    await new Promise((resolve) => setTimeout(resolve, 400))
    const seeker = await attack(
      `find / -xdev -name '${marker}*' 2>/dev/null; grep -rl '${marker}' /tmp /workspace /dev/shm 2>/dev/null; echo searched`,
      'bash',
    )
    expect(seeker.stdout).toBe('searched\n')
    expect((await holder).body.stdout).toBe('held\n')
  })
})

describe('process-sandbox attacks: escaping', () => {
  const syscall = (name: string, nr: number, args: string) =>
    `import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nr = libc.syscall(${nr}, ${args})\nprint("${name}", r, ctypes.get_errno())`

  it('ptrace: refused (EPERM)', async () => {
    expect((await attack(syscall('ptrace', 101, '16, 1, 0, 0'))).stdout).toBe('ptrace -1 1\n')
  })

  it('mount, old and new API: refused (EPERM)', async () => {
    expect((await attack(syscall('mount', 165, '0, 0, 0, 0, 0'))).stdout).toBe('mount -1 1\n')
    expect((await attack(syscall('fsopen', 430, 'b"tmpfs", 0'))).stdout).toBe('fsopen -1 1\n')
    const cli = await attack('mount -t tmpfs none /tmp 2>&1; echo "exit $?"', 'bash')
    expect(cli.stdout).toMatch(/exit [1-9]/)
  })

  it('unshare and setns: refused (EPERM), also through unshare(1)', async () => {
    expect((await attack(syscall('unshare', 272, '0x10000000'))).stdout).toBe('unshare -1 1\n')
    expect((await attack(syscall('setns', 308, '0, 0'))).stdout).toBe('setns -1 1\n')
    const cli = await attack('unshare -Ur id 2>&1; echo "exit $?"', 'bash')
    expect(cli.stdout).toMatch(/Operation not permitted[\s\S]*exit 1/)
  })

  it('clone with namespace flags: refused (EPERM); clone3 answers ENOSYS', async () => {
    // SIGCHLD | CLONE_NEWUSER, and the same with a high bit set that the kernel ignores.
    expect((await attack(syscall('clone', 56, '0x10000011, 0, 0, 0, 0'))).stdout).toBe('clone -1 1\n')
    expect((await attack(syscall('clone', 56, '0x100000000 | 0x40000011, 0, 0, 0, 0'))).stdout).toBe(
      'clone -1 1\n',
    )
    expect((await attack(syscall('clone3', 435, '0, 0'))).stdout).toBe('clone3 -1 38\n')
  })

  it('TIOCSTI injection: refused (EPERM), also with the high word of the request set', async () => {
    expect((await attack(syscall('ioctl', 16, '0, 0x5412, b"x"'))).stdout).toBe('ioctl -1 1\n')
    expect((await attack(syscall('ioctl', 16, '0, 0x100005412, b"x"'))).stdout).toBe('ioctl -1 1\n')
  })

  it('bpf, perf_event_open, keyctl, userfaultfd, io_uring: refused (EPERM)', async () => {
    for (const [name, nr] of [
      ['bpf', 321],
      ['perf_event_open', 298],
      ['keyctl', 250],
      ['userfaultfd', 323],
      ['io_uring_setup', 425],
      ['open_by_handle_at', 304],
      ['io_setup', 206],
    ] as const) {
      expect((await attack(syscall(name, nr, '0, 0, 0, 0, 0'))).stdout).toBe(`${name} -1 1\n`)
    }
  })

  it('raw, packet and netlink sockets: refused (EPERM)', async () => {
    const record = await attack(
      [
        'import socket',
        'for fam, typ in [(socket.AF_INET, socket.SOCK_RAW), (socket.AF_INET6, socket.SOCK_RAW), (socket.AF_PACKET, socket.SOCK_RAW), (socket.AF_NETLINK, socket.SOCK_RAW), (socket.AF_INET, socket.SOCK_PACKET if hasattr(socket, "SOCK_PACKET") else 10)]:',
        '    try:',
        '        socket.socket(fam, typ); print("OPENED", fam, typ)',
        '    except OSError as e:',
        '        print(e.errno)',
      ].join('\n'),
    )
    expect(record.stdout).toBe('1\n1\n1\n1\n1\n')
  })

  it("connecting to the host's loopback services: refused inside the sandbox's own network", async () => {
    const port = new URL(t.server.url).port
    const record = await attack(
      [
        'import socket',
        `for port in (${loopbackPort}, ${port}):`,
        '    try:',
        '        socket.create_connection(("127.0.0.1", port), timeout=1); print("CONNECTED", port)',
        '    except OSError as e:',
        '        print(e.errno)',
      ].join('\n'),
    )
    expect(record.stdout).toBe('111\n111\n') // ECONNREFUSED: nothing listens on the sandbox's loopback
    expect(loopbackHits).toBe(0)
  })

  it('DNS lookups: no name resolves and no name server is reachable', async () => {
    const record = await attack(
      [
        'import socket',
        'try:',
        '    print("RESOLVED", socket.getaddrinfo("example.com", 443))',
        'except OSError as e:',
        '    print("no dns")',
        's = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
        'try:',
        '    s.sendto(b"\\x00" * 12, ("8.8.8.8", 53)); print("SENT")',
        'except OSError as e:',
        '    print(e.errno)',
      ].join('\n'),
    )
    expect(record.stdout).toBe('no dns\n101\n') // ENETUNREACH
  })

  it('ignoring the proxy: a direct connection reaches nothing', async () => {
    const record = await attack(
      'curl --noproxy "*" -sS -m 2 http://1.1.1.1/ 2>&1; echo "exit $?"; env -u HTTP_PROXY -u HTTPS_PROXY curl -sS -m 2 https://example.com/ 2>&1; echo "exit $?"',
      'bash',
    )
    expect(record.stdout).not.toMatch(/exit 0/)
    expect(record.stdout).toMatch(
      /Could not resolve host|Failed to connect|Network is unreachable|Couldn't connect/,
    )
  })

  it('symlinks planted in /workspace: the collector reads none of what they point at', async () => {
    const record = await attack(
      'ln -s /etc/passwd passwd.txt; ln -s /proc/1/environ env.txt; ln -s / root; ln -s /.cordon/init.py init.txt; mkfifo pipe; mkdir d; ln -s ../../../../etc/hosts d/hosts; echo real > real.txt',
      'bash',
    )
    expect(record.status).toBe('ok')
    expect(record.files).toEqual([
      { path: '/workspace/real.txt', size: 5, encoding: 'utf8', content: 'real\n' },
    ])
  })

  it('a hard link to a system file: refused across the read-only mount', async () => {
    const record = await attack('ln /etc/hosts hosts 2>&1; ln /usr/bin/python3 py 2>&1; echo end', 'bash')
    expect(record.stdout).toMatch(/Invalid cross-device link[\s\S]*end/)
    expect(record.files).toEqual([])
  })

  it('signals to processes outside the sandbox: none is reachable', async () => {
    const record = await attack(
      `kill -9 ${process.pid} 2>&1; kill -9 ${workerChildren()[0]} 2>&1; kill -9 -1 2>&1; echo end`,
      'bash',
    )
    expect(record.stdout).toMatch(/No such process[\s\S]*end\n$/)
    // This test process and its workers are alive: afterEach runs an execution through them.
  })

  it("killing the sandbox's init from inside: pid 1 takes no signal from its own namespace", async () => {
    const record = await attack(
      'kill -9 1; kill -SEGV 1; kill -INT 1; kill -TERM 1; sleep 0.1; echo alive',
      'bash',
    )
    expect(record).toMatchObject({ status: 'ok', stdout: 'alive\n' })
  })

  it("rewriting the init through /proc/1/mem: the init is not dumpable, so its memory and descriptors are root's", async () => {
    const record = await attack(
      [
        'import os',
        'for path in ("/proc/1/mem", "/proc/1/environ"):',
        '    try:',
        '        os.open(path, os.O_RDWR); print("OPENED", path)',
        '    except OSError as e:',
        '        print(e.errno)',
        'try:',
        '    print("LISTED", os.listdir("/proc/1/fd"))',
        'except OSError as e:',
        '    print(e.errno)',
      ].join('\n'),
    )
    expect(record.stdout).toBe('13\n13\n13\n') // EACCES
  })

  it("changing the init's limits (prlimit on pid 1): refused (EPERM), the run ends normally", async () => {
    const record = await attack(
      'import resource\ntry:\n    resource.prlimit(1, resource.RLIMIT_AS, (1 << 20, 1 << 20)); print("CHANGED")\nexcept OSError as e:\n    print(e.errno)\nprint("x" * 60000)',
    )
    expect(record.status).toBe('ok')
    expect(record.stdout.startsWith('1\n')).toBe(true)
  })

  it('file names that are not text: named (made readable), never read', async () => {
    const record = await attack(
      'import os\nfor name in (b"bad\\xff\\xfe", b"new\\nline", b"ok.txt"):\n    open(name, "wb").write(b"data")',
    )
    expect(record.status).toBe('ok')
    expect(record.files).toEqual([
      { path: '/workspace/bad\uFFFD\uFFFD', size: 4, omitted: 'name' },
      { path: '/workspace/new\uFFFDline', size: 4, omitted: 'name' },
      { path: '/workspace/ok.txt', size: 4, encoding: 'utf8', content: 'data' },
    ])
  })

  it('writing to the system view: everything outside /workspace, /tmp and /dev/shm is read-only', async () => {
    const record = await attack(
      'for p in /usr/bin/evil /etc/passwd /bin/sh /.cordon/init.py /evil; do (echo x > "$p") 2>/dev/null && echo "WROTE $p"; done; echo end',
      'bash',
    )
    expect(record.stdout).toBe('end\n')
  })

  it('gaining privileges: no capabilities, no setuid, no_new_privs set', async () => {
    const record = await attack(
      'grep -E "^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status | tr -s "\\t " " "',
      'bash',
    )
    expect(record.stdout).toBe(
      'CapPrm: 0000000000000000\nCapEff: 0000000000000000\nCapBnd: 0000000000000000\nNoNewPrivs: 1\nSeccomp: 2\n',
    )
  })
})
