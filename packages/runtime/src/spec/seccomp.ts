/**
 * Seccomp: Docker's profile format (profiles/seccomp/default.json in moby) and its conversion to
 * the OCI runtime spec's `linux.seccomp`, with Docker's logic — rules included or excluded by the
 * container's capabilities and the architecture. The default profile below is Docker's, written in
 * TypeScript: everything not allowed fails with EPERM; namespace-creating `clone` flags, mount,
 * unshare, setns, bpf, perf_event_open and friends need CAP_SYS_ADMIN; `clone3` answers ENOSYS so
 * libc falls back to `clone`; `socket` refuses AF_ALG and AF_VSOCK.
 */
import { release } from 'node:os';

export interface SeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: 'SCMP_CMP_NE' | 'SCMP_CMP_LT' | 'SCMP_CMP_LE' | 'SCMP_CMP_EQ' | 'SCMP_CMP_GE' | 'SCMP_CMP_GT' | 'SCMP_CMP_MASKED_EQ';
}

export interface DockerSeccompRule {
  names?: string[];
  name?: string;
  action: string;
  errnoRet?: number;
  args?: SeccompArg[] | null;
  includes?: { caps?: string[]; arches?: string[]; minKernel?: string };
  excludes?: { caps?: string[]; arches?: string[]; minKernel?: string };
  comment?: string;
}

export interface DockerSeccompProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures: string[] }[];
  syscalls?: DockerSeccompRule[];
}

export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  syscalls?: { names: string[]; action: string; errnoRet?: number; args?: SeccompArg[] }[];
}

const EPERM = 1;
const ENOSYS = 38;
/** CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET */
const CLONE_NAMESPACE_FLAGS = 0x7e020000;
const AF_ALG = 38;
const AF_VSOCK = 40;

const ALLOWED = `accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3 epoll_create epoll_create1
epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2
fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat
fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait
futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid
getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt get_thread_area
gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init inotify_init1 inotify_rm_watch
io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set io_setup io_submit
ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr link linkat
listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise map_shadow_stack membarrier
memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect
mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink
mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat
_newselect open openat openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect
poll ppoll ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64
pwritev pwritev2 read readahead readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg
remap_file_pages removexattr rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending
rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
sched_getaffinity sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile
sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32
setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32
setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32 setxattr shmat shmctl
shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice stat
stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill time timer_create
timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64 timerfd_create
timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64 ugetrlimit
umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid write
writev`
  .split(/\s+/)
  .filter(Boolean);

const byCap = (caps: string, names: string): DockerSeccompRule => ({
  names: names.split(' '),
  action: 'SCMP_ACT_ALLOW',
  includes: { caps: caps.split(' ') },
});

/** Docker's default profile (moby profiles/seccomp/default.json), as data. */
export function defaultSeccompProfile(): DockerSeccompProfile {
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    archMap: [
      { architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
      { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] },
    ],
    syscalls: [
      { names: ALLOWED, action: 'SCMP_ACT_ALLOW' },
      { names: ['process_vm_readv', 'process_vm_writev', 'ptrace'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '4.8' } },
      // socket: everything but AF_ALG (38) and AF_VSOCK (40); one comparison per rule.
      { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: AF_ALG, op: 'SCMP_CMP_LT' }] },
      { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: AF_ALG + 1, op: 'SCMP_CMP_EQ' }] },
      { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_GT' }] },
      ...[0, 8, 131072, 131080, 4294967295].map<DockerSeccompRule>((value) => ({
        names: ['personality'],
        action: 'SCMP_ACT_ALLOW',
        args: [{ index: 0, value, op: 'SCMP_CMP_EQ' }],
      })),
      { names: ['arch_prctl', 'modify_ldt'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64', 'x32', '386'] } },
      byCap('CAP_SYS_ADMIN', 'bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount mount_setattr move_mount open_tree perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog umount umount2 unshare'),
      {
        names: ['clone'],
        action: 'SCMP_ACT_ALLOW',
        args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
        excludes: { caps: ['CAP_SYS_ADMIN'], arches: ['s390', 's390x'] },
      },
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS, excludes: { caps: ['CAP_SYS_ADMIN'] } },
      byCap('CAP_SYS_BOOT', 'reboot'),
      byCap('CAP_SYS_CHROOT', 'chroot'),
      byCap('CAP_SYS_MODULE', 'delete_module init_module finit_module'),
      byCap('CAP_SYS_PACCT', 'acct'),
      byCap('CAP_SYS_PTRACE', 'kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace'),
      byCap('CAP_SYS_RAWIO', 'iopl ioperm'),
      byCap('CAP_SYS_TIME', 'settimeofday stime clock_settime clock_settime64'),
      byCap('CAP_SYS_TTY_CONFIG', 'vhangup'),
      byCap('CAP_SYS_NICE', 'get_mempolicy mbind set_mempolicy set_mempolicy_home_node'),
      byCap('CAP_SYSLOG', 'syslog'),
      byCap('CAP_BPF', 'bpf'),
      byCap('CAP_PERFMON', 'perf_event_open'),
    ],
  };
}

const NODE_ARCH_TO_DOCKER: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', s390x: 's390x', ppc64: 'ppc64le' };
const NATIVE_SCMP_ARCH: Record<string, string> = { x64: 'SCMP_ARCH_X86_64', arm64: 'SCMP_ARCH_AARCH64', ia32: 'SCMP_ARCH_X86', arm: 'SCMP_ARCH_ARM' };

function kernelAtLeast(min: string, kernel: string): boolean {
  const parse = (v: string): number[] => v.split(/[.-]/).slice(0, 2).map((x) => Number.parseInt(x, 10) || 0);
  const [a = 0, b = 0] = parse(kernel);
  const [c = 0, d = 0] = parse(min);
  return a > c || (a === c && b >= d);
}

/**
 * Docker's profile → OCI `linux.seccomp` for a container with `capabilities` (its bounding set),
 * as moby's `setupSeccomp` does: includes/excludes by caps, arch and kernel decide which rules apply.
 */
export function seccompFromDockerProfile(
  profile: DockerSeccompProfile,
  capabilities: readonly string[],
  options: { arch?: string; kernel?: string } = {},
): OciSeccomp {
  const nodeArch = options.arch ?? process.arch;
  const arch = NODE_ARCH_TO_DOCKER[nodeArch] ?? nodeArch;
  const kernel = options.kernel ?? release();
  const caps = new Set(capabilities);
  let architectures: string[] = profile.architectures ?? [];
  if (profile.archMap) {
    const native = NATIVE_SCMP_ARCH[nodeArch];
    const entry = profile.archMap.find((m) => m.architecture === native);
    if (entry) architectures = [entry.architecture, ...entry.subArchitectures];
  }
  const syscalls: NonNullable<OciSeccomp['syscalls']> = [];
  for (const rule of profile.syscalls ?? []) {
    const inc = rule.includes;
    const exc = rule.excludes;
    if (inc?.arches && !inc.arches.includes(arch)) continue;
    if (inc?.caps && !inc.caps.every((c) => caps.has(c))) continue;
    if (inc?.minKernel && !kernelAtLeast(inc.minKernel, kernel)) continue;
    if (exc?.arches && exc.arches.includes(arch)) continue;
    if (exc?.caps && exc.caps.some((c) => caps.has(c))) continue;
    if (exc?.minKernel && kernelAtLeast(exc.minKernel, kernel)) continue;
    const names = rule.names ?? (rule.name ? [rule.name] : []);
    if (names.length === 0) continue;
    const out: NonNullable<OciSeccomp['syscalls']>[number] = { names: [...names], action: rule.action };
    if (rule.errnoRet !== undefined) out.errnoRet = rule.errnoRet;
    if (rule.args && rule.args.length > 0) out.args = rule.args.map((a) => ({ ...a }));
    syscalls.push(out);
  }
  const result: OciSeccomp = { defaultAction: profile.defaultAction, architectures, syscalls };
  if (profile.defaultErrnoRet !== undefined) result.defaultErrnoRet = profile.defaultErrnoRet;
  return result;
}
