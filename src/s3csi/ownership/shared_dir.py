"""Directories s3csi shares with a non-root group: ``root:<gid> 2770``, as kubelet makes an fsGroup volume.

The local runtime gives each Mountpoint Pod a comm directory (mount.sock lives there) and cache
directories that the pod's group must write and nobody else may enter.
"""

from __future__ import annotations

import os
import stat

from s3csi.errors import FailedPrecondition, NotFound, PermissionDenied
from s3csi.ownership.policy import OwnershipTarget, decide

_OPEN_DIR_NOFOLLOW = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def prepare_shared_dir(path: str, gid: int, uid: int = 0) -> None:
    """Create ``path`` (or fix it when it exists) as ``uid:gid``, mode 2770. Idempotent.

    The mode is ``decide``'s for an owner-only directory, so it is what a fsGroup walk would give it
    minus any access for others: an existing directory loses its group/other bits before the group
    bits are added back. The parent must exist; a symlink or a non-directory at ``path`` is refused.
    """
    target = OwnershipTarget(fs_group=gid, fs_user=uid)
    try:
        # Owner-only until chown+chmod below: nobody else can enter it in between.
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except FileNotFoundError:
        raise NotFound(f"{path}: parent directory does not exist") from None
    except PermissionError:
        raise PermissionDenied(f"{path}: permission denied creating the directory") from None
    try:
        fd = os.open(path, _OPEN_DIR_NOFOLLOW)
    except OSError as exc:
        raise FailedPrecondition(f"{path}: not a directory we can share ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        change = decide(st.st_mode & ~0o077, st.st_uid, st.st_gid, target)
        if change is None:
            return
        if change.owner is not None:
            os.fchown(fd, *change.owner)
        if change.mode is not None and change.mode != stat.S_IMODE(st.st_mode):
            os.fchmod(fd, change.mode)
    except PermissionError:
        raise PermissionDenied(f"{path}: permission denied setting owner {uid}:{gid} mode 2770") from None
    finally:
        os.close(fd)
