"""Giving up root in the child: become `nobody`, or keep uid 0 with no capabilities.

Dropping to `nobody` is the stronger choice (root-owned files then fall to ordinary DAC
checks) but it needs a Python installation `nobody` can read: a pyenv interpreter under
`/root` (mode 0700), as on the development machine, breaks every lazy import. So the
bridge checks `is_world_readable(python paths)` once and otherwise keeps uid 0 with
every capability dropped (bounding, ambient, effective, permitted, inheritable): no DAC
override, no chown, no raw sockets, no module loading, nothing a root uid needs caps for.
Landlock and seccomp apply in both modes.
"""

from __future__ import annotations

import ctypes
import os
import stat
import struct
import sysconfig
from typing import Iterable

_SYS_CAPSET = 126  # x86_64
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_PR_SET_KEEPCAPS = 8
_PR_SET_DUMPABLE = 4
_LAST_CAP = 63

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def get_python_paths() -> list[str]:
    paths = sysconfig.get_paths()
    return sorted({paths["stdlib"], paths["platstdlib"], paths["purelib"], paths["platlib"]})


def is_world_readable(paths: Iterable[str]) -> bool:
    """True when every ancestor of every path is world-searchable and the paths readable."""
    for path in paths:
        current = os.path.realpath(path)
        try:
            mode = os.stat(current).st_mode
        except OSError:
            return False
        if not (mode & stat.S_IROTH and mode & stat.S_IXOTH):
            return False
        while current != "/":
            current = os.path.dirname(current)
            if not os.stat(current).st_mode & stat.S_IXOTH:
                return False
    return True


def drop_to_user(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def drop_capabilities() -> None:
    """Empty every capability set of the calling (single-threaded) process."""
    for cap in range(_LAST_CAP + 1):
        _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the kernel's last cap
    _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = ctypes.create_string_buffer(struct.pack("=Ii", _LINUX_CAPABILITY_VERSION_3, 0), 8)
    data = ctypes.create_string_buffer(b"\0" * 24, 24)
    if _libc.syscall(_SYS_CAPSET, header, data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")


def set_undumpable() -> None:
    """No core dump of this process, and no /proc/<pid> or ptrace access to it from a
    same-uid process without CAP_SYS_PTRACE. RLIMIT_CORE 0 alone does not stop a dump
    where core_pattern pipes to a helper (systemd-coredump, apport): a crashing job would
    hand up to its whole address space to the host. A uid change resets the flag, so
    this comes after the privilege drop."""
    if _libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl(PR_SET_DUMPABLE): {os.strerror(err)}")
