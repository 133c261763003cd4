"""Bind mounts, unmounts and the mount table.

A read-only bind needs two calls: the kernel ignores MS_RDONLY on the first MS_BIND, so the bind is
remounted read-only; if that fails the bind is removed again rather than left writable.
"""

from __future__ import annotations

import errno
import os

from s3csi.errors import FailedPrecondition, NotFound
from s3csi.kernel import syscalls
from s3csi.kernel.mountinfo import MountInfo, parse_mountinfo

__all__ = [
    "MountInfo",
    "bind_mount",
    "find_mount",
    "is_dead_fuse",
    "make_shared",
    "mountinfo",
    "unmount",
    "unmount_all",
]

MOUNTINFO_PATH = "/proc/self/mountinfo"
# Nothing reached through a pod volume may be a device or gain privileges.
_BIND_FLAGS = syscalls.MS_NOSUID | syscalls.MS_NODEV


def bind_mount(source: str, target: str, *, read_only: bool) -> None:
    syscalls.mount(source, target, None, syscalls.MS_BIND, None)
    if not read_only:
        return
    try:
        remount = syscalls.MS_BIND | syscalls.MS_REMOUNT | syscalls.MS_RDONLY | _BIND_FLAGS
        syscalls.mount(source, target, None, remount, None)
    except Exception:
        syscalls.umount2(target, syscalls.UMOUNT_NOFOLLOW | syscalls.MNT_DETACH)
        raise


def make_shared(target: str) -> None:
    """Make the mount at ``target`` shared (its own peer group unless it already is in one): a bind of it
    is then a peer, and a mount made later on top of it reaches every peer and every slave copy."""
    syscalls.mount("none", target, None, syscalls.MS_SHARED, None)


def unmount(target: str, *, lazy: bool = False) -> None:
    """Unmount ``target`` (never following a symlink in its last component).

    ``lazy`` detaches at once even when busy or when the FUSE server is gone (MNT_DETACH).
    Raises ``NotFound`` when ``target`` is not a mount point.
    """
    flags = syscalls.UMOUNT_NOFOLLOW | (syscalls.MNT_DETACH if lazy else 0)
    syscalls.umount2(target, flags)


def unmount_all(target: str, *, lazy: bool = False) -> int:
    """Unmount every mount stacked at ``target``, top first; how many there were.

    A recovered FUSE session is mounted on top of the dead one it replaces (docs/architecture.md,
    "Mountpoint Pod crash recovery"), so a source or target may hold several. A busy one (EBUSY) is
    detached lazily rather than left behind.
    """
    count = 0
    while find_mount(target) is not None:
        try:
            unmount(target, lazy=lazy)
        except FailedPrecondition:
            unmount(target, lazy=True)
        count += 1
    return count


def mountinfo(path: str = MOUNTINFO_PATH) -> list[MountInfo]:
    with open(path, encoding="utf-8", errors="surrogateescape") as file:
        return parse_mountinfo(file.read())


def find_mount(path: str, table: list[MountInfo] | None = None) -> MountInfo | None:
    """The mount on top at ``path`` (the last one listed there), or None when nothing is mounted there.

    ``path`` is compared after normalisation, not resolved: resolving would stat through a dead FUSE
    mount, and a mount point is what the table says, not what a symlink points to.
    """
    wanted = os.path.normpath(os.path.abspath(path))
    found = None
    for entry in mountinfo() if table is None else table:
        if entry.mount_point == wanted:
            found = entry
    return found


def is_dead_fuse(path: str) -> bool:
    """True when ``path`` is a FUSE mount whose server has gone: the kernel answers ENOTCONN."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENOTCONN:
            return True
        if exc.errno == errno.ENOENT:
            raise NotFound(f"{path} does not exist") from exc
        return False
    return False
