"""The seccomp filter the child loads just before it runs untrusted code.

A deny list on top of ALLOW: the interpreter and numpy need a long, version-dependent
tail of ordinary syscalls, while what must never happen is a short, stable list. Denied
calls fail with an errno (not a kill) so the program gets a clear Python exception and
the bridge a clear error kind; the process still cannot do the thing.

- No new processes and no threads: fork, vfork, clone (any flags) and execve/execveat are
  EPERM; clone3 is ENOSYS (glibc then falls back to clone, which is EPERM). The program is
  single-threaded by design (deterministic, and no thread games with signals).
- No signals to anyone but itself: kill/tgkill/tkill/rt_sigqueueinfo with another pid.
- No network unless granted: socket/socketpair are EACCES (AF_UNIX included: the child
  talks to its parent over pipes it inherited). Granted network means AF_INET/AF_INET6
  sockets only: AF_UNIX (the host's daemons' sockets: Landlock does not guard connect()
  to a named socket), netlink, packet ... and socketpair stay EACCES.
- Nothing aimed at another process, even one with the same uid (a root child keeps uid 0
  without capabilities, and the node and the zygote run as root; `nobody` children share
  one uid): prlimit64, sched_set{affinity,scheduler,param,attr} only on pid 0 (itself),
  setpriority and ioprio_set only on PRIO_PROCESS/IOPRIO_WHO_PROCESS 0.
- No change to any file's metadata: chmod/chown/utime/xattr families are EPERM. Landlock
  does not cover them, and a root child without capabilities still owns every root-owned
  file, so `chmod("/etc/shadow", 0o777)` would otherwise succeed.
- No System V IPC and no POSIX message queues: their objects outlive the process (a leak
  of host memory, and a channel to the next job) and no path-based layer sees them.
- No memfd_create: a memfd's pages are tmpfs memory that RLIMIT_AS does not count
  (max_open_files x max_file_size_mb of host memory); it is also the usual first step of
  fileless exec.
- No signals by way of a file's owner: fcntl F_SETOWN/F_SETOWN_EX/F_SETSIG (SIGIO, or
  any signal chosen with F_SETSIG, sent by the kernel to the owner when the result pipe
  drains: with the zygote's or node's pid, SIGKILL to them), ioctl FIOSETOWN/SIOCSPGRP
  likewise; also F_SETLEASE/F_NOTIFY and ioctl TIOCSTI. Commands are compared on their
  low 32 bits (the kernel reads an unsigned int), so high garbage does not slip by.
  Landlock ABI >= 6 scopes these signals too; older kernels have only this rule.
- No inotify/fanotify: watching /tmp would show other jobs' file activity.
- No page-cache probing or eviction of shared files: cachestat, mincore, preadv2 with
  RWF_NOWAIT, fadvise DONTNEED, madvise COLD/PAGEOUT (who else is using which library,
  and evicting it under them).
- Dangerous calls: tracing, mounts, namespaces, BPF, kernel modules, kexec, keyrings,
  personality, io_uring (its ops bypass seccomp), userfaultfd, identity changes ...

Syscalls libseccomp does not know by name (newer than it) are ENOSYS by number, so a
kernel newer than libseccomp does not open holes (setxattrat next to a denied setxattr).

libseccomp rejects foreign architectures and x32 syscall numbers on x86_64 by default
(bad-arch action: kill), which closes the classic "other ABI" escape.
"""

from __future__ import annotations

import errno

import pyseccomp as seccomp

DENIED_SYSCALLS: tuple[str, ...] = (
    "fork", "vfork", "clone", "execve", "execveat",
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_open", "pidfd_getfd",
    "pidfd_send_signal",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "open_tree", "move_mount",
    "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register",
    "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load",
    "keyctl", "add_key", "request_key", "personality", "acct", "quotactl", "syslog",
    "reboot", "swapon", "swapoff", "settimeofday", "clock_settime", "clock_adjtime",
    "adjtimex", "iopl", "ioperm", "mknod", "mknodat", "open_by_handle_at",
    "name_to_handle_at", "lookup_dcookie", "move_pages", "migrate_pages", "mbind",
    "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups",
    "setfsuid", "setfsgid", "capset", "sethostname", "setdomainname", "vhangup",
    "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
    "seccomp", "prctl",
    # file metadata (not covered by Landlock)
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
    "utime", "utimes", "futimesat", "utimensat", "setxattr", "lsetxattr", "fsetxattr",
    "setxattrat", "removexattr", "lremovexattr", "fremovexattr", "removexattrat",
    # System V IPC and POSIX message queues (objects outlive the process)
    "shmget", "shmat", "shmctl", "shmdt", "msgget", "msgsnd", "msgrcv", "msgctl",
    "semget", "semop", "semtimedop", "semctl", "mq_open", "mq_unlink", "mq_timedsend",
    "mq_timedreceive", "mq_notify", "mq_getsetattr",
    # watching the filesystem; other processes' memory and mounts
    "inotify_init", "inotify_init1", "inotify_add_watch", "fanotify_init", "fanotify_mark",
    "process_madvise", "process_mrelease", "get_robust_list", "listmount", "statmount",
    "open_tree_attr", "quotactl_fd",
    # anonymous files: tmpfs memory outside RLIMIT_AS
    "memfd_create", "memfd_secret",
    # host-wide effects and side channels: flushing every file system, the system-wide
    # AIO context budget (fs.aio-max-nr), page-cache probing, the LDT, legacy calls
    "sync", "syncfs", "io_setup", "io_submit", "io_destroy", "io_getevents", "io_cancel",
    "io_pgetevents", "cachestat", "modify_ldt", "uselib", "sysfs", "ustat",
    # page-cache pages of read-only files moved into pipes (the Dirty Pipe class):
    # sendfile to a pipe is splice by another name (splice_file_to_pipe)
    "splice", "tee", "vmsplice", "sendfile",
    # page-cache residency of shared files (the "page cache attack" side channel, as
    # cachestat above); mincore reports it for files the caller owns, and a uid-0 child
    # owns every root-owned library
    "mincore",
)
NETWORK_SYSCALLS: tuple[str, ...] = ("socket", "socketpair")
SIGNAL_SYSCALLS: tuple[str, ...] = ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")
#: Calls whose first argument is a pid: only 0 (the caller itself) is allowed.
SELF_ONLY_SYSCALLS: tuple[str, ...] = (
    "prlimit64", "sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr",
)
#: fcntl commands (arg 1) refused: F_SETOWN, F_SETSIG, F_SETOWN_EX, F_SETLEASE, F_NOTIFY.
FCNTL_DENIED = (8, 10, 15, 1024, 1026)
#: ioctl requests (arg 1) refused: FIOSETOWN, SIOCSPGRP, TIOCSTI.
IOCTL_DENIED = (0x8901, 0x8902, 0x5412)
#: (syscall, argument index, value) refused: evicting shared files from the page cache
#: (fadvise DONTNEED; madvise COLD and PAGEOUT on a mapped library, allowed to its
#: owner, which a uid-0 child is) primes the page-cache side channel and slows every
#: process on the host that uses those files.
ADVICE_DENIED = (("fadvise64", 3, 4), ("madvise", 2, 20), ("madvise", 2, 21))
#: preadv2 flags (arg 5) refused: RWF_NOWAIT reads only cached pages, so EAGAIN tells
#: whether another process has a shared file's page cached.
PREADV2_FLAGS_DENIED = 0x8  # RWF_NOWAIT
_LOW32 = 0xFFFFFFFF
#: Socket families a granted network may use.
NETWORK_FAMILIES = (2, 10)  # AF_INET, AF_INET6
_MAX_FAMILY = 64


#: Native syscall numbers below this are checked against libseccomp's table.
_SYSCALL_SPACE = 1024


def compute_unknown_syscalls() -> list[int]:
    """Native syscall numbers the installed libseccomp cannot name.

    A deny list by name misses whatever the kernel added after libseccomp (kernel 6.18
    has setxattrat, removexattrat, open_tree_attr, listmount ... that libseccomp 2.5
    does not know, so rules "by name" for them silently do nothing). These numbers get
    ENOSYS: a program sees the kernel as older than it is, and libc falls back.
    """
    arch = seccomp.system_arch()
    unknown = []
    for number in range(_SYSCALL_SPACE):
        try:
            seccomp.resolve_syscall(arch, number)
        except ValueError:
            unknown.append(number)
    return unknown


def load_filter(own_pid: int, network_access: bool) -> None:
    """Install the filter on the calling (single-threaded) process. Irreversible."""
    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    try:
        rules.set_attr(seccomp.Attr.CTL_OPTIMIZE, 2)  # binary tree: ~10 checks per call, not ~600
    except (OSError, ValueError, RuntimeError):
        pass
    for number in compute_unknown_syscalls():
        rules.add_rule(seccomp.ERRNO(errno.ENOSYS), number)
    for name in DENIED_SYSCALLS:
        _add(rules, seccomp.ERRNO(errno.EPERM), name)
    _add(rules, seccomp.ERRNO(errno.ENOSYS), "clone3")
    if not network_access:
        for name in NETWORK_SYSCALLS:
            _add(rules, seccomp.ERRNO(errno.EACCES), name)
    else:
        # libseccomp takes one comparison per argument and rule: deny family by family.
        _add(rules, seccomp.ERRNO(errno.EACCES), "socketpair")
        for family in range(_MAX_FAMILY):
            if family not in NETWORK_FAMILIES:
                _add(rules, seccomp.ERRNO(errno.EACCES), "socket", seccomp.Arg(0, seccomp.EQ, family))
        _add(rules, seccomp.ERRNO(errno.EACCES), "socket", seccomp.Arg(0, seccomp.GE, _MAX_FAMILY))
    for name, commands in (("fcntl", FCNTL_DENIED), ("ioctl", IOCTL_DENIED)):
        for command in commands:
            _add(rules, seccomp.ERRNO(errno.EPERM), name, seccomp.Arg(1, seccomp.MASKED_EQ, _LOW32, command))
    for name, index, advice in ADVICE_DENIED:
        _add(rules, seccomp.ERRNO(errno.EPERM), name, seccomp.Arg(index, seccomp.MASKED_EQ, _LOW32, advice))
    _add(rules, seccomp.ERRNO(errno.EPERM), "preadv2", seccomp.Arg(5, seccomp.MASKED_EQ, PREADV2_FLAGS_DENIED, PREADV2_FLAGS_DENIED))
    for name in SELF_ONLY_SYSCALLS:
        _add(rules, seccomp.ERRNO(errno.EPERM), name, seccomp.Arg(0, seccomp.NE, 0))
    for name in ("setpriority", "ioprio_set"):  # (which, who, ...): PRIO_PROCESS=0 / IOPRIO_WHO_PROCESS=1, who 0
        _add(rules, seccomp.ERRNO(errno.EPERM), name, seccomp.Arg(0, seccomp.NE, 0 if name == "setpriority" else 1))
        _add(rules, seccomp.ERRNO(errno.EPERM), name, seccomp.Arg(1, seccomp.NE, 0))
    for name in SIGNAL_SYSCALLS:
        _add(rules, seccomp.ERRNO(errno.EPERM), name, seccomp.Arg(0, seccomp.NE, own_pid))
    _add(rules, seccomp.ERRNO(errno.EPERM), "tkill", seccomp.Arg(0, seccomp.NE, own_pid))
    rules.load()


def _add(rules: seccomp.SyscallFilter, action: int, name: str, *args: seccomp.Arg) -> None:
    try:
        rules.add_rule(action, name, *args)
    except (OSError, ValueError, RuntimeError):
        # A syscall this architecture or libseccomp does not know cannot be called either.
        pass
