"""Open /dev/fuse and mount it, the way a privileged parent hands a FUSE session to an unprivileged server.

The node plugin (root) makes the mount; the Mountpoint Pod (uid 1000, no capabilities) receives the
fd over mount.sock and serves it (docs/node-publish.md). The mount carries ``default_permissions`` so the
kernel enforces the modes, owner and group the file system reports — that is how fsGroup and fsUser
take effect for the workload.
"""

from __future__ import annotations

import errno
import os

from s3csi.errors import Internal
from s3csi.kernel import syscalls
from s3csi.kernel.mount import find_mount
from s3csi.kernel.mountinfo import read_ahead_path

FUSE_DEVICE = "/dev/fuse"
FUSE_FSTYPE = "fuse.s3csi"
# The root of the mount is a directory (S_IFDIR, octal) — the kernel wants the file type only.
_ROOT_MODE = "40000"


def open_fuse_device() -> int:
    """A new FUSE connection: an fd on /dev/fuse, close-on-exec so only an explicit hand-over passes it on."""
    try:
        return os.open(FUSE_DEVICE, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        raise Internal(f"cannot open {FUSE_DEVICE}: [Errno {exc.errno}] {exc.strerror}") from exc


def fuse_mount_data(fd: int, *, allow_other: bool, user_id: int, group_id: int) -> str:
    """The option string of the FUSE mount (what mount.fuse3 would pass to the kernel)."""
    options = [
        f"fd={fd}",
        f"rootmode={_ROOT_MODE}",
        f"user_id={user_id}",
        f"group_id={group_id}",
        "default_permissions",
    ]
    if allow_other:
        options.append("allow_other")
    return ",".join(options)


def fuse_mount_flags(*, read_only: bool) -> int:
    flags = syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOATIME
    return flags | syscalls.MS_RDONLY if read_only else flags


def mount_fuse(
    fd: int,
    target: str,
    *,
    allow_other: bool,
    read_only: bool,
    fsname: str = "s3csi",
    user_id: int = 0,
    group_id: int = 0,
) -> None:
    """Mount the FUSE connection ``fd`` on ``target``; the file system serving ``fd`` answers its requests.

    ``fsname`` is the mount's source as /proc/self/mountinfo shows it (never put a secret in it).
    """
    data = fuse_mount_data(fd, allow_other=allow_other, user_id=user_id, group_id=group_id)
    syscalls.mount(fsname, target, FUSE_FSTYPE, fuse_mount_flags(read_only=read_only), data)


def set_read_ahead(target: str, kib: int) -> None:
    """Let the kernel read ahead ``kib`` KiB on the FUSE mount at ``target``, so that big reads reach the
    file system as requests of up to 1 MiB instead of 128 KiB.

    Call it once the file system has answered the kernel's INIT: INIT lowers the window to what the
    kernel offered (128 KiB). The device comes from /proc/self/mountinfo, never from a stat of
    ``target``, which would wait on the file system.
    """
    mount = find_mount(target)
    if mount is None or not mount.is_fuse:
        raise Internal(f"no FUSE mount at {target} to set the read-ahead of")
    try:
        with open(read_ahead_path(mount), "w", encoding="ascii") as sysfs:
            sysfs.write(str(kib))
    except OSError as exc:
        raise Internal(f"cannot set the read-ahead of {target}: [Errno {exc.errno}] {exc.strerror}") from exc


def connection_aborted(path: str) -> bool:
    """True when the FUSE mount on top at ``path`` lost its server: the kernel answers ENOTCONN.

    statfs(2) is never answered from the kernel's caches (a stat of the root may be), so it reaches
    the connection every time. Blocking while a live server answers slowly: call it in a thread.
    """
    try:
        os.statvfs(path)
    except OSError as exc:
        return exc.errno == errno.ENOTCONN
    return False
