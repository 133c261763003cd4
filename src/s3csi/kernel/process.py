"""Whether other processes of the same uid can reach into this one: the kernel's "dumpable" flag.

Every Mountpoint Pod runs as uid 1000. While a process is dumpable, any other process of its uid
may ptrace it, read ``/proc/PID/environ``, ``/proc/PID/mem``, follow ``/proc/PID/cwd`` and
``/proc/PID/fd/*`` (past directories it could not enter itself) and take its descriptors with
``pidfd_getfd`` — one mounter would reach another's credentials and FUSE session. A non-dumpable
process's /proc entries belong to root and all of that needs CAP_SYS_PTRACE.
"""

from __future__ import annotations

import ctypes
import errno
import os

from s3csi.errors import FailedPrecondition, Internal

# <linux/prctl.h>
PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3
SUID_DUMPABLE = "/proc/sys/fs/suid_dumpable"

_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.restype = ctypes.c_int


def make_non_dumpable() -> None:
    """Clear this process's dumpable flag (it stays clear across the rest of its life: no exec follows)."""
    if _libc.prctl(PR_SET_DUMPABLE, ctypes.c_ulong(0), 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise Internal(f"prctl(PR_SET_DUMPABLE, 0): {os.strerror(code)} ({errno.errorcode.get(code, '?')})")


def is_dumpable() -> bool:
    return int(_libc.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)) == 1


def check_suid_dumpable(value: str) -> None:
    """Refuse ``fs.suid_dumpable = 1``: pure, the value as read from ``/proc/sys/fs/suid_dumpable``.

    The local runtime starts a mounter with a real gid that differs from its effective gid, so the
    kernel gives the new program the dumpable value ``fs.suid_dumpable`` from its first instruction.
    0 (the default) and 2 both make it non-dumpable to ptrace; 1 would leave it open to a ptrace
    attach of another uid-1000 process until the mounter clears the flag itself, and an attach made
    in that window survives the prctl.
    """
    if value.strip() not in ("0", "2"):
        raise FailedPrecondition(
            f"fs.suid_dumpable is {value.strip()!r}: a starting Mountpoint Pod could be ptraced by any "
            "uid-1000 process; set it to 0 (sysctl -w fs.suid_dumpable=0) or 2"
        )


def read_suid_dumpable() -> str:
    with open(SUID_DUMPABLE, encoding="ascii") as file:
        return file.read()
