"""mount(2) and umount2(2) through ctypes, with their failures translated once into s3csi errors.

Python's standard library has no binding for either call, and running mount(8) would make every
publish fork a process and parse its messages.
"""

from __future__ import annotations

import ctypes
import errno
import os

from s3csi.errors import (
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    S3csiError,
)

# <linux/mount.h>
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_BIND = 4096
MS_SHARED = 1 << 20

# <sys/mount.h>
MNT_DETACH = 2
UMOUNT_NOFOLLOW = 8

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.mount.restype = ctypes.c_int
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.umount2.restype = ctypes.c_int

_ERRNO_TO_ERROR: dict[int, type[S3csiError]] = {
    errno.ENOENT: NotFound,
    errno.ENOTDIR: InvalidArgument,
    errno.EPERM: PermissionDenied,
    errno.EACCES: PermissionDenied,
    errno.EBUSY: FailedPrecondition,
    errno.EINVAL: InvalidArgument,
}


def os_error(operation: str, path: str, code: int) -> S3csiError:
    """The s3csi error for ``operation`` on ``path`` failing with ``code``; the message names both."""
    error = _ERRNO_TO_ERROR.get(code, Internal)
    return error(f"{operation} {path}: [Errno {code}] {os.strerror(code)} ({errno.errorcode.get(code, '?')})")


def mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    result = _libc.mount(
        source.encode(),
        target.encode(),
        fstype.encode() if fstype is not None else None,
        flags,
        data.encode() if data is not None else None,
    )
    if result != 0:
        code = ctypes.get_errno()
        raise os_error(f"mount(2) of {source!r} ({fstype or 'bind'}) on", target, code)


def umount2(target: str, flags: int) -> None:
    """umount2(2); raises ``NotFound`` when ``target`` is not a mount point (EINVAL) or does not exist."""
    if _libc.umount2(target.encode(), flags) != 0:
        code = ctypes.get_errno()
        if code == errno.EINVAL:
            raise NotFound(f"umount2(2) {target}: not a mount point")
        raise os_error("umount2(2)", target, code)
