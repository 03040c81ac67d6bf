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
  talks to its parent over pipes it inherited).
- Dangerous calls: tracing, mounts, namespaces, BPF, kernel modules, kexec, keyrings,
  personality, io_uring (its ops bypass seccomp), userfaultfd, identity changes ...

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
)
NETWORK_SYSCALLS: tuple[str, ...] = ("socket", "socketpair")
SIGNAL_SYSCALLS: tuple[str, ...] = ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo")


def load_filter(own_pid: int, network_access: bool) -> None:
    """Install the filter on the calling (single-threaded) process. Irreversible."""
    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in DENIED_SYSCALLS:
        _add(rules, seccomp.ERRNO(errno.EPERM), name)
    _add(rules, seccomp.ERRNO(errno.ENOSYS), "clone3")
    if not network_access:
        for name in NETWORK_SYSCALLS:
            _add(rules, seccomp.ERRNO(errno.EACCES), name)
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
