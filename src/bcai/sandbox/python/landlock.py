"""Landlock (Linux >= 5.13): confine a process's filesystem view, without privileges.

The child calls `restrict_filesystem(read_only, read_write)` just before it runs untrusted
code: afterwards every path outside those trees is refused by the kernel (EACCES), so
`open("/etc/passwd")` fails even when the audit hook has been bypassed. On ABI >= 4 TCP
bind/connect are refused too unless network access is granted; on ABI >= 6 the process may
not signal processes outside its own Landlock domain.

Landlock has no Python binding: this file speaks the three syscalls through ctypes. It runs
in the trusted zygote's child before untrusted code exists (the child's audit hook forbids
ctypes afterwards). `get_abi()` returns 0 where the kernel lacks Landlock; callers then
rely on the remaining layers and say so.
"""

from __future__ import annotations

import ctypes
import os
import struct
from typing import Iterable

_SYS_CREATE_RULESET = 444
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13
TRUNCATE = 1 << 14
IOCTL_DEV = 1 << 15
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
_SCOPE_ABSTRACT_UNIX_SOCKET = 1
_SCOPE_SIGNAL = 2
_NET_BIND_TCP = 1
_NET_CONNECT_TCP = 2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def get_abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is missing or disabled."""
    result = _libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return int(result) if result > 0 else 0


def _handled_fs(abi: int) -> int:
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


def restrict_filesystem(
    read_only: Iterable[str], read_write: Iterable[str], deny_network: bool
) -> int:
    """Allow reads under `read_only`, everything under `read_write`, nothing else.

    Returns the ABI used (0: Landlock unavailable, nothing done). Raises OSError when the
    kernel has Landlock but refuses the ruleset.
    """
    abi = get_abi()
    if abi == 0:
        return 0
    handled = _handled_fs(abi)
    net = (_NET_BIND_TCP | _NET_CONNECT_TCP) if (deny_network and abi >= 4) else 0
    scoped = (_SCOPE_SIGNAL | _SCOPE_ABSTRACT_UNIX_SOCKET) if abi >= 6 else 0
    if abi >= 6:
        attr = struct.pack("=QQQ", handled, net, scoped)
    elif abi >= 4:
        attr = struct.pack("=QQ", handled, net)
    else:
        attr = struct.pack("=Q", handled)
    buf = ctypes.create_string_buffer(attr, len(attr))
    ruleset = _libc.syscall(_SYS_CREATE_RULESET, buf, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        raise _oserror("landlock_create_ruleset")
    try:
        read_rights = EXECUTE | READ_FILE | READ_DIR
        for path in read_only:
            _add_path(int(ruleset), path, read_rights & handled)
        for path in read_write:
            _add_path(int(ruleset), path, handled)
        if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise _oserror("prctl(PR_SET_NO_NEW_PRIVS)")
        if _libc.syscall(_SYS_RESTRICT_SELF, ctypes.c_int(int(ruleset)), ctypes.c_uint32(0)) != 0:
            raise _oserror("landlock_restrict_self")
    finally:
        os.close(int(ruleset))
    return abi


def _add_path(ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a path that does not exist needs no rule
    try:
        if not os.path.isdir(path):
            rights &= _FILE_RIGHTS
        attr = ctypes.create_string_buffer(struct.pack("=Qi", rights, fd), 12)
        if _libc.syscall(_SYS_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH), attr, ctypes.c_uint32(0)) != 0:
            raise _oserror(f"landlock_add_rule({path})")
    finally:
        os.close(fd)


def _oserror(what: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")
