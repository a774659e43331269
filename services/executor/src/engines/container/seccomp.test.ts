import { describe, expect, it } from 'vitest'
import { evaluate, SECCOMP_POLICY, SECCOMP_RETURNS, seccompInstructions, seccompProgram } from './seccomp.ts'
import { X86_64_SYSCALLS } from './syscalls-x86_64.ts'

// The filter's logic, run through a BPF interpreter (the sandbox attack catalogue checks the same
// answers from inside a real sandbox). Arguments are 64-bit: the tests set high words on purpose.

const program = seccompInstructions()
const { allow, killProcess, errno } = SECCOMP_RETURNS
const EPERM = errno(1)
const ENOSYS = errno(38)
const call = (name: keyof typeof X86_64_SYSCALLS, ...args: bigint[]) =>
  evaluate(program, { nr: X86_64_SYSCALLS[name], args })

describe('seccomp filter', () => {
  it('fits in one BPF program (at most 4096 instructions, 8 bytes each)', () => {
    expect(program.length).toBeLessThanOrEqual(4096)
    expect(seccompProgram().byteLength).toBe(program.length * 8)
  })

  it('allows what python, bash and coreutils need', () => {
    for (const name of SECCOMP_POLICY.allowed) expect(call(name), name).toBe(allow)
  })

  it('refuses every named dangerous call with EPERM (clone3 with ENOSYS, so glibc falls back to clone)', () => {
    for (const name of SECCOMP_POLICY.refused) {
      expect(call(name), name).toBe(name === 'clone3' ? ENOSYS : EPERM)
    }
  })

  it('never lists a refused call as allowed', () => {
    const allowed = new Set<string>([...SECCOMP_POLICY.allowed, ...SECCOMP_POLICY.checked])
    expect(SECCOMP_POLICY.refused.filter((name) => allowed.has(name))).toEqual([])
  })

  it('refuses by default: a call on no list gets EPERM', () => {
    const named = new Set<string>([
      ...SECCOMP_POLICY.allowed,
      ...SECCOMP_POLICY.checked,
      ...Object.keys(SECCOMP_POLICY.errnoOverrides),
    ])
    const others = Object.keys(X86_64_SYSCALLS).filter((name) => !named.has(name))
    expect(others.length).toBeGreaterThan(50)
    for (const name of others) expect(call(name as keyof typeof X86_64_SYSCALLS), name).toBe(EPERM)
    expect(evaluate(program, { nr: 999 })).toBe(EPERM)
  })

  it('kills a call of another ABI: i386 (int 0x80) and x32', () => {
    expect(evaluate(program, { nr: 1, arch: 0x40000003 })).toBe(killProcess)
    expect(evaluate(program, { nr: 0x40000000 | X86_64_SYSCALLS.read })).toBe(killProcess)
  })

  describe('clone: no new namespaces', () => {
    const SIGCHLD = 17n
    it('allows fork- and thread-style flags', () => {
      expect(call('clone', 0x01200000n | SIGCHLD)).toBe(allow)
      expect(call('clone', 0x003d0f00n)).toBe(allow)
    })
    it.each([
      ['CLONE_NEWUSER', 0x10000000n],
      ['CLONE_NEWNS', 0x00020000n],
      ['CLONE_NEWPID', 0x20000000n],
      ['CLONE_NEWNET', 0x40000000n],
      ['CLONE_NEWCGROUP', 0x02000000n],
      ['CLONE_NEWUTS', 0x04000000n],
      ['CLONE_NEWIPC', 0x08000000n],
    ])('refuses %s', (_name, flag) => {
      expect(call('clone', flag | SIGCHLD)).toBe(EPERM)
    })
    it('refuses any flag in the high word (no bit there may slip past the check)', () => {
      expect(call('clone', (1n << 32n) | SIGCHLD)).toBe(EPERM)
      expect(call('clone', (1n << 63n) | 0x10000000n)).toBe(EPERM)
    })
  })

  describe('socket: local and loopback stream/datagram sockets only', () => {
    const AF_UNIX = 1n
    const AF_INET = 2n
    const AF_INET6 = 10n
    const AF_NETLINK = 16n
    const AF_PACKET = 17n
    const SOCK_STREAM = 1n
    const SOCK_DGRAM = 2n
    const SOCK_RAW = 3n
    const SOCK_PACKET = 10n
    const FLAGS = 0x80800n // SOCK_NONBLOCK | SOCK_CLOEXEC

    it('allows unix, inet and inet6 stream and datagram sockets, with their flags', () => {
      for (const family of [AF_UNIX, AF_INET, AF_INET6]) {
        expect(call('socket', family, SOCK_STREAM)).toBe(allow)
        expect(call('socket', family, SOCK_DGRAM | FLAGS)).toBe(allow)
      }
    })

    it('refuses raw and packet sockets, and packet and netlink families', () => {
      expect(call('socket', AF_INET, SOCK_RAW)).toBe(EPERM)
      expect(call('socket', AF_INET6, SOCK_RAW | FLAGS)).toBe(EPERM)
      expect(call('socket', AF_INET, SOCK_PACKET)).toBe(EPERM)
      expect(call('socket', AF_PACKET, SOCK_DGRAM)).toBe(EPERM)
      expect(call('socket', AF_NETLINK, SOCK_DGRAM)).toBe(EPERM)
    })

    it('refuses protocols other than the default, TCP and UDP (a missing one would load a kernel module)', () => {
      expect(call('socket', AF_INET, SOCK_STREAM, 6n)).toBe(allow)
      expect(call('socket', AF_INET, SOCK_DGRAM, 17n)).toBe(allow)
      expect(call('socket', AF_INET, SOCK_STREAM, 132n)).toBe(EPERM) // SCTP
      expect(call('socket', AF_INET, SOCK_DGRAM, 115n)).toBe(EPERM) // L2TP
      expect(call('socket', AF_INET, 5n)).toBe(EPERM) // SOCK_SEQPACKET (SCTP's)
    })

    it('reads int arguments as the kernel does: a high word changes nothing', () => {
      // The kernel truncates `int family` to 32 bits, so does the filter: AF_PACKET stays refused
      // with a high bit set, and AF_INET stays AF_INET.
      expect(call('socket', (1n << 32n) | AF_PACKET, SOCK_DGRAM)).toBe(EPERM)
      expect(call('socket', AF_INET, (1n << 40n) | SOCK_RAW)).toBe(EPERM)
      expect(call('socket', (1n << 32n) | AF_INET, SOCK_STREAM)).toBe(allow)
    })

    it('allows socketpair only for unix sockets', () => {
      expect(call('socketpair', AF_UNIX, SOCK_STREAM)).toBe(allow)
      expect(call('socketpair', AF_INET, SOCK_STREAM)).toBe(EPERM)
    })
  })

  describe('ioctl: no terminal injection', () => {
    it('allows ordinary requests (TCGETS, FIONREAD)', () => {
      expect(call('ioctl', 0n, 0x5401n)).toBe(allow)
      expect(call('ioctl', 0n, 0x541bn)).toBe(allow)
    })
    it('refuses TIOCSTI, TIOCLINUX and TIOCSETD, also with the high word set (the kernel ignores it)', () => {
      for (const request of [0x5412n, 0x541cn, 0x5423n]) {
        expect(call('ioctl', 0n, request)).toBe(EPERM)
        expect(call('ioctl', 0n, (0xffffffffn << 32n) | request)).toBe(EPERM)
      }
    })
  })

  it("lets a process change only its own limits (prlimit64 on pid 0), never the init's", () => {
    expect(call('prlimit64', 0n, 7n)).toBe(allow)
    expect(call('prlimit64', 1n, 7n)).toBe(EPERM)
    expect(call('prlimit64', 1n << 32n, 7n)).toBe(allow) // the kernel reads pid_t: this is pid 0
  })

  it('allows only the personas Docker allows', () => {
    expect(call('personality', 0n)).toBe(allow)
    expect(call('personality', 0xffffffffn)).toBe(allow)
    expect(call('personality', 0x0040000n)).toBe(EPERM) // ADDR_NO_RANDOMIZE
  })
})
