import { type SyscallName, X86_64_SYSCALLS } from './syscalls-x86_64.ts'

/**
 * The container engine's seccomp filter: default-deny, generated here as classic BPF and handed to
 * bubblewrap (`--seccomp FD`), which installs it just before it runs the sandbox's first process.
 * Everything not on the allowlist fails with EPERM, so programs see an ordinary error and may fall
 * back; `clone3` fails with ENOSYS (its flags sit in memory the filter cannot read, and glibc falls
 * back to `clone`, whose flags it can). A syscall of another ABI (i386 via `int 0x80`, x32) kills the
 * process. See docs/container-sandbox.md for the list and why each refused call is refused.
 */

/**
 * A check on one syscall's arguments. `word: 'low'` compares the low 32 bits only: for arguments the
 * kernel reads as `int` or `unsigned int`, the high half is ignored by the kernel, so it must be
 * ignored here too (a check on all 64 bits would let `0x1_0000_5412` through as something other than
 * TIOCSTI, which the kernel then runs as TIOCSTI). `high: 'zero'` additionally requires the high 32
 * bits to be zero, for `unsigned long` arguments whose high bits the filter does not otherwise vet.
 */
export type ArgCheck =
  | { arg: number; oneOf: readonly number[]; mask?: number; high?: 'zero' }
  | { arg: number; noneOf: readonly number[]; high?: 'zero' }
  | { arg: number; noBits: number; high?: 'zero' }
  | { all: readonly ArgCheck[] }

const AF_UNIX = 1
const AF_INET = 2
const AF_INET6 = 10
const SOCK_STREAM = 1
const SOCK_DGRAM = 2
const IPPROTO_TCP = 6
const IPPROTO_UDP = 17
/** `socket`'s type carries SOCK_NONBLOCK and SOCK_CLOEXEC above the type itself. */
const SOCK_TYPE_MASK = 0xf
const TIOCSTI = 0x5412
const TIOCLINUX = 0x541c
const TIOCSETD = 0x5423
/** Every CLONE_NEW* flag `clone` accepts (CLONE_NEWTIME shares its bit with the exit signal there). */
const CLONE_NAMESPACES =
  0x00020000 | // NEWNS
  0x02000000 | // NEWCGROUP
  0x04000000 | // NEWUTS
  0x08000000 | // NEWIPC
  0x10000000 | // NEWUSER
  0x20000000 | // NEWPID
  0x40000000 // NEWNET
/** Personas Docker's profile allows: the default, and the flags some runtimes set on themselves. */
const PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff]

/** Always allowed: ordinary process, file, memory, time and socket work inside the namespaces. */
const ALLOWED: readonly SyscallName[] = [
  // files and descriptors
  'read',
  'write',
  'open',
  'openat',
  'close',
  'close_range',
  'creat',
  'stat',
  'fstat',
  'lstat',
  'newfstatat',
  'statx',
  'statfs',
  'fstatfs',
  'lseek',
  'pread64',
  'pwrite64',
  'readv',
  'writev',
  'preadv',
  'pwritev',
  'preadv2',
  'pwritev2',
  'access',
  'faccessat',
  'faccessat2',
  'dup',
  'dup2',
  'dup3',
  'pipe',
  'pipe2',
  'fcntl',
  'flock',
  'fsync',
  'fdatasync',
  'truncate',
  'ftruncate',
  'fallocate',
  'fadvise64',
  'readahead',
  'getdents',
  'getdents64',
  'getcwd',
  'chdir',
  'fchdir',
  'rename',
  'renameat',
  'renameat2',
  'mkdir',
  'mkdirat',
  'rmdir',
  'link',
  'linkat',
  'unlink',
  'unlinkat',
  'symlink',
  'symlinkat',
  'readlink',
  'readlinkat',
  'chmod',
  'fchmod',
  'fchmodat',
  'chown',
  'fchown',
  'lchown',
  'fchownat',
  'umask',
  'utime',
  'utimes',
  'utimensat',
  'futimesat',
  'mknod',
  'mknodat',
  'sendfile',
  'splice',
  'tee',
  'vmsplice',
  'copy_file_range',
  'sync_file_range',
  'getxattr',
  'lgetxattr',
  'fgetxattr',
  'listxattr',
  'llistxattr',
  'flistxattr',
  'setxattr',
  'lsetxattr',
  'fsetxattr',
  'removexattr',
  'lremovexattr',
  'fremovexattr',
  'memfd_create',
  'inotify_init',
  'inotify_init1',
  'inotify_add_watch',
  'inotify_rm_watch',
  'select',
  'pselect6',
  'poll',
  'ppoll',
  'epoll_create',
  'epoll_create1',
  'epoll_ctl',
  'epoll_wait',
  'epoll_pwait',
  'epoll_pwait2',
  'eventfd',
  'eventfd2',
  'signalfd',
  'signalfd4',
  'timerfd_create',
  'timerfd_settime',
  'timerfd_gettime',
  // memory
  'brk',
  'mmap',
  'munmap',
  'mremap',
  'mprotect',
  'madvise',
  'msync',
  'mincore',
  'mlock',
  'mlock2',
  'munlock',
  'mlockall',
  'munlockall',
  'pkey_alloc',
  'pkey_free',
  'pkey_mprotect',
  'membarrier',
  'get_mempolicy',
  'shmget',
  'shmat',
  'shmdt',
  'shmctl',
  'semget',
  'semop',
  'semtimedop',
  'semctl',
  'msgget',
  'msgsnd',
  'msgrcv',
  'msgctl',
  // processes, threads and signals
  'fork',
  'vfork',
  'execve',
  'execveat',
  'exit',
  'exit_group',
  'wait4',
  'waitid',
  'kill',
  'tkill',
  'tgkill',
  'pidfd_open',
  'pidfd_send_signal',
  'rt_sigaction',
  'rt_sigprocmask',
  'rt_sigreturn',
  'rt_sigpending',
  'rt_sigtimedwait',
  'rt_sigqueueinfo',
  'rt_tgsigqueueinfo',
  'rt_sigsuspend',
  'sigaltstack',
  'pause',
  'restart_syscall',
  'futex',
  'futex_waitv',
  'set_tid_address',
  'set_robust_list',
  'get_robust_list',
  'rseq',
  'arch_prctl',
  'prctl',
  'getpid',
  'getppid',
  'gettid',
  'getpgid',
  'setpgid',
  'getpgrp',
  'getsid',
  'setsid',
  'getuid',
  'geteuid',
  'getgid',
  'getegid',
  'getresuid',
  'getresgid',
  'getgroups',
  'setuid',
  'setgid',
  'setreuid',
  'setregid',
  'setresuid',
  'setresgid',
  'setfsuid',
  'setfsgid',
  'setgroups',
  'capget',
  'capset',
  'getrlimit',
  'setrlimit',
  'getrusage',
  'getpriority',
  'setpriority',
  'sched_yield',
  'sched_getaffinity',
  'sched_setaffinity',
  'sched_getparam',
  'sched_setparam',
  'sched_getscheduler',
  'sched_setscheduler',
  'sched_get_priority_max',
  'sched_get_priority_min',
  'sched_rr_get_interval',
  'sched_getattr',
  'sched_setattr',
  'getcpu',
  'uname',
  'sysinfo',
  'times',
  // time
  'nanosleep',
  'clock_nanosleep',
  'clock_gettime',
  'clock_getres',
  'gettimeofday',
  'time',
  'alarm',
  'getitimer',
  'setitimer',
  'timer_create',
  'timer_settime',
  'timer_gettime',
  'timer_getoverrun',
  'timer_delete',
  'getrandom',
  // sockets (which families and types may be created is checked on `socket` itself)
  'connect',
  'accept',
  'accept4',
  'bind',
  'listen',
  'shutdown',
  'getsockname',
  'getpeername',
  'sendto',
  'recvfrom',
  'sendmsg',
  'recvmsg',
  'sendmmsg',
  'recvmmsg',
  'setsockopt',
  'getsockopt',
]

/** Allowed only when the arguments pass. */
const CHECKED: Readonly<Partial<Record<SyscallName, ArgCheck>>> = {
  // No new namespaces: the filter reads `clone`'s flags (clone3 keeps them in memory, see below).
  clone: { arg: 0, noBits: CLONE_NAMESPACES, high: 'zero' },
  // Local and loopback sockets only: raw, packet, netlink and every other family are refused. The
  // network namespace holds nothing but its own loopback (where the proxy forwarder listens).
  // The protocol is checked too: a named protocol the kernel lacks makes it load a module (SCTP,
  // L2TP...); only the default, TCP and UDP are taken.
  socket: {
    all: [
      { arg: 0, oneOf: [AF_UNIX, AF_INET, AF_INET6] },
      { arg: 1, oneOf: [SOCK_STREAM, SOCK_DGRAM], mask: SOCK_TYPE_MASK },
      { arg: 2, oneOf: [0, IPPROTO_TCP, IPPROTO_UDP] },
    ],
  },
  // Limits of the calling process only (pid 0): another process's (the init's) are not the command's
  // to change.
  prlimit64: { arg: 0, oneOf: [0] },
  socketpair: { arg: 0, oneOf: [AF_UNIX] },
  // No typing into a terminal's input (TIOCSTI), console tricks or line-discipline changes.
  ioctl: { arg: 1, noneOf: [TIOCSTI, TIOCLINUX, TIOCSETD] },
  personality: { arg: 0, oneOf: PERSONALITIES },
}

/** Refused with another errno than EPERM, so callers take their fallback path. */
const ERRNO_OVERRIDES: Readonly<Partial<Record<SyscallName, number>>> = {
  clone3: 38, // ENOSYS: glibc falls back to clone, whose flags the filter checks
}

/**
 * Refused on purpose (the default refuses them too; naming them here lets the tests and the docs
 * check that none of them ever slips onto the allowlist).
 */
export const REFUSED: readonly SyscallName[] = [
  'mount',
  'umount2',
  'pivot_root',
  'chroot',
  'fsopen',
  'fsconfig',
  'fsmount',
  'fspick',
  'move_mount',
  'open_tree',
  'mount_setattr',
  'unshare',
  'setns',
  'clone3',
  'ptrace',
  'process_vm_readv',
  'process_vm_writev',
  'kcmp',
  'pidfd_getfd',
  'bpf',
  'perf_event_open',
  'keyctl',
  'add_key',
  'request_key',
  'userfaultfd',
  'io_uring_setup',
  'io_uring_enter',
  'io_uring_register',
  'name_to_handle_at',
  'open_by_handle_at',
  'init_module',
  'finit_module',
  'delete_module',
  'kexec_load',
  'kexec_file_load',
  'reboot',
  'swapon',
  'swapoff',
  'acct',
  'quotactl',
  'syslog',
  'settimeofday',
  'clock_settime',
  'clock_adjtime',
  'adjtimex',
  'sethostname',
  'setdomainname',
  'iopl',
  'ioperm',
  'modify_ldt',
  'vhangup',
  'lookup_dcookie',
  'fanotify_init',
  'mbind',
  'set_mempolicy',
  'migrate_pages',
  'move_pages',
  'process_madvise',
  'memfd_secret',
  'sync',
  'syncfs',
  'uselib',
  'ustat',
  'sysfs',
  '_sysctl',
  // Host-wide AIO contexts (aio-max-nr) that one sandbox could use up for every process.
  'io_setup',
  'io_destroy',
  'io_getevents',
  'io_submit',
  'io_cancel',
]

const EPERM = 1

// Classic BPF, as `struct sock_filter` (u16 code, u8 jt, u8 jf, u32 k).
const LD_W_ABS = 0x20
const JEQ_K = 0x15
const JGE_K = 0x35
const JSET_K = 0x45
const ALU_AND_K = 0x54
const RET_K = 0x06
const RET_ALLOW = 0x7fff0000
const RET_KILL_PROCESS = 0x80000000
const retErrno = (errno: number) => 0x00050000 | errno

const AUDIT_ARCH_X86_64 = 0xc000003e
const X32_SYSCALL_BIT = 0x40000000
/** Offsets into `struct seccomp_data`: nr, arch, then 64-bit args (little-endian: low word first). */
const DATA_NR = 0
const DATA_ARCH = 4
const argLow = (arg: number) => 16 + 8 * arg
const argHigh = (arg: number) => 16 + 8 * arg + 4

export interface Instruction {
  code: number
  jt: number
  jf: number
  k: number
}

/** A small assembler: jumps name labels, resolved to forward offsets (at most 255, as BPF allows). */
class Program {
  readonly #items: ({ op: Instruction; jt?: string; jf?: string } | { label: string })[] = []
  #labels = 0

  label(): string {
    this.#labels += 1
    return `L${this.#labels}`
  }

  place(label: string): void {
    this.#items.push({ label })
  }

  load(offset: number): void {
    this.#items.push({ op: { code: LD_W_ABS, jt: 0, jf: 0, k: offset } })
  }

  and(mask: number): void {
    this.#items.push({ op: { code: ALU_AND_K, jt: 0, jf: 0, k: mask >>> 0 } })
  }

  /** Jumps to `yes` when the accumulator matches `k` (`code` chooses eq, ge or bit test), else falls through or jumps to `no`. */
  jump(code: number, k: number, yes: string | null, no: string | null): void {
    this.#items.push({
      op: { code, jt: 0, jf: 0, k: k >>> 0 },
      ...(yes === null ? {} : { jt: yes }),
      ...(no === null ? {} : { jf: no }),
    })
  }

  ret(k: number): void {
    this.#items.push({ op: { code: RET_K, jt: 0, jf: 0, k: k >>> 0 } })
  }

  assemble(): Instruction[] {
    const positions = new Map<string, number>()
    let count = 0
    for (const item of this.#items) {
      if ('label' in item) positions.set(item.label, count)
      else count += 1
    }
    const out: Instruction[] = []
    for (const item of this.#items) {
      if ('label' in item) continue
      const here = out.length
      const offset = (label: string | undefined) => {
        if (label === undefined) return 0
        const target = positions.get(label)
        if (target === undefined) throw new Error(`seccomp: label ${label} never placed`)
        const distance = target - here - 1
        if (distance < 0 || distance > 255) throw new Error(`seccomp: jump of ${distance} out of range`)
        return distance
      }
      out.push({ ...item.op, jt: offset(item.jt), jf: offset(item.jf) })
    }
    return out
  }
}

/** Emits code that jumps to `deny` unless the check passes, then falls through. */
function emitCheck(program: Program, check: ArgCheck, deny: string): void {
  if ('all' in check) {
    for (const part of check.all) emitCheck(program, part, deny)
    return
  }
  if (check.high === 'zero') {
    program.load(argHigh(check.arg))
    program.jump(JEQ_K, 0, null, deny)
  }
  program.load(argLow(check.arg))
  if ('noBits' in check) {
    program.jump(JSET_K, check.noBits, deny, null)
  } else if ('noneOf' in check) {
    for (const value of check.noneOf) program.jump(JEQ_K, value, deny, null)
  } else {
    if (check.mask !== undefined) program.and(check.mask)
    const pass = program.label()
    for (const value of check.oneOf) program.jump(JEQ_K, value, pass, null)
    program.jump(JEQ_K, 0, deny, deny)
    program.place(pass)
  }
}

/** The filter as instructions (for tests and the docs). */
export function seccompInstructions(): Instruction[] {
  const program = new Program()
  const nativeArch = program.label()
  const nativeCall = program.label()
  program.load(DATA_ARCH)
  program.jump(JEQ_K, AUDIT_ARCH_X86_64, nativeArch, null)
  program.ret(RET_KILL_PROCESS)
  program.place(nativeArch)
  program.load(DATA_NR)
  program.jump(JGE_K, X32_SYSCALL_BIT, null, nativeCall)
  program.ret(RET_KILL_PROCESS)
  program.place(nativeCall)
  for (const name of ALLOWED) {
    const next = program.label()
    program.jump(JEQ_K, X86_64_SYSCALLS[name], null, next)
    program.ret(RET_ALLOW)
    program.place(next)
  }
  for (const [name, check] of Object.entries(CHECKED) as [SyscallName, ArgCheck][]) {
    const next = program.label()
    const deny = program.label()
    program.jump(JEQ_K, X86_64_SYSCALLS[name], null, next)
    emitCheck(program, check, deny)
    program.ret(RET_ALLOW)
    program.place(deny)
    program.ret(retErrno(EPERM))
    program.place(next)
    // Checks clobber the accumulator: load the syscall number again for the next comparison.
    program.load(DATA_NR)
  }
  for (const [name, errno] of Object.entries(ERRNO_OVERRIDES) as [SyscallName, number][]) {
    const next = program.label()
    program.jump(JEQ_K, X86_64_SYSCALLS[name], null, next)
    program.ret(retErrno(errno))
    program.place(next)
  }
  program.ret(retErrno(EPERM))
  return program.assemble()
}

/** The filter as bytes for bubblewrap's `--seccomp` (an array of `struct sock_filter`, host order). */
export function seccompProgram(): Buffer {
  const instructions = seccompInstructions()
  const bytes = Buffer.alloc(instructions.length * 8)
  instructions.forEach((op, index) => {
    bytes.writeUInt16LE(op.code, index * 8)
    bytes.writeUInt8(op.jt, index * 8 + 2)
    bytes.writeUInt8(op.jf, index * 8 + 3)
    bytes.writeUInt32LE(op.k, index * 8 + 4)
  })
  return bytes
}

/** The names the filter allows, with or without argument checks (for the docs and tests). */
export const SECCOMP_POLICY = {
  allowed: ALLOWED,
  checked: Object.keys(CHECKED) as SyscallName[],
  errnoOverrides: ERRNO_OVERRIDES,
  refused: REFUSED,
} as const

/** What a filter answers for one call (a tiny BPF interpreter, used by the tests to check the logic). */
export function evaluate(
  instructions: readonly Instruction[],
  call: { nr: number; arch?: number; args?: readonly bigint[] },
): number {
  const data = Buffer.alloc(64)
  data.writeUInt32LE(call.nr >>> 0, DATA_NR)
  data.writeUInt32LE((call.arch ?? AUDIT_ARCH_X86_64) >>> 0, DATA_ARCH)
  for (const [index, value] of (call.args ?? []).entries()) data.writeBigUInt64LE(value, 16 + index * 8)
  let acc = 0
  let pc = 0
  while (pc < instructions.length) {
    const op = instructions[pc] as Instruction
    pc += 1
    switch (op.code) {
      case LD_W_ABS:
        acc = data.readUInt32LE(op.k)
        break
      case ALU_AND_K:
        acc = (acc & op.k) >>> 0
        break
      case JEQ_K:
        pc += acc === op.k ? op.jt : op.jf
        break
      case JGE_K:
        pc += acc >= op.k ? op.jt : op.jf
        break
      case JSET_K:
        pc += (acc & op.k) !== 0 ? op.jt : op.jf
        break
      case RET_K:
        return op.k
      default:
        throw new Error(`unknown BPF op ${op.code}`)
    }
  }
  throw new Error('BPF program fell off the end')
}

export const SECCOMP_RETURNS = { allow: RET_ALLOW, killProcess: RET_KILL_PROCESS, errno: retErrno } as const
