"""Target paths and what the mount table says about them — the publisher's decisions, kept pure.

A Mountpoint Pod's FUSE mount (its *source*) and every bind of it onto a pod's target path share one
device number in /proc/self/mountinfo, so the mount table alone tells which targets a source serves:
a restarted driver needs no memory of its own to find them.
"""

from __future__ import annotations

import enum
import errno
import os
import stat

from s3csi.errors import AlreadyExists, InvalidArgument
from s3csi.kernel.mountinfo import MountInfo


def is_within(base: str, path: str) -> bool:
    """``path`` lies strictly below ``base``; both absolute and normalised."""
    return path.startswith(base.rstrip("/") + "/")


def resolve_target(kubelet_dir: str, target_path: str) -> str:
    """The real path of ``target_path``, which must lie below ``kubelet_dir``.

    The parent is resolved with every symlink and ``..`` in it; the last component may not be a
    symlink (kubelet never makes one there, and a bind would follow it). The last component is
    not resolved through the kernel because a dead FUSE mount there answers ENOTCONN.
    """
    if not target_path or not os.path.isabs(target_path):
        raise InvalidArgument(f"target_path {target_path!r} must be an absolute path")
    base = os.path.realpath(kubelet_dir)
    name = os.path.basename(os.path.normpath(target_path))
    if name in ("", ".", ".."):
        raise InvalidArgument(f"target_path {target_path!r} does not name a directory")
    resolved = os.path.join(os.path.realpath(os.path.dirname(os.path.normpath(target_path))), name)
    try:
        if stat.S_ISLNK(os.lstat(resolved).st_mode):
            raise InvalidArgument(f"target_path {target_path} is a symbolic link")
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.ENOTCONN):
            raise InvalidArgument(f"target_path {target_path}: {exc.strerror}") from exc
    if not is_within(base, resolved):
        raise InvalidArgument(f"target_path {target_path} is not inside the kubelet directory {base}")
    return resolved


def targets_of(source: MountInfo, table: list[MountInfo]) -> list[MountInfo]:
    """Every other mount of the file system mounted at ``source``: the binds onto pods' targets."""
    return [m for m in table if m.device == source.device and m.mount_id != source.mount_id]


class TargetAction(enum.Enum):
    BIND = "bind"  # nothing is mounted at the target yet
    NONE = "none"  # the target already shows this very mount: a repeated call


def publish_action(target: MountInfo | None, source: MountInfo | None, *, read_only: bool) -> TargetAction:
    """What NodePublishVolume must do at a target, given what is mounted there and at the source.

    A target that shows something else — another volume, another Mountpoint Pod, or this one with
    the other read-only setting — is CSI's "published with incompatible options": ALREADY_EXISTS.
    """
    if target is None:
        return TargetAction.BIND
    if source is not None and target.device == source.device and target.read_only == read_only:
        return TargetAction.NONE
    raise AlreadyExists(
        f"target_path {target.mount_point} is already published with other options or another volume"
    )
