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
from collections.abc import Sequence

from s3csi.errors import AlreadyExists, FailedPrecondition, InvalidArgument
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


def group_change(published: Sequence[str], requested: Sequence[str]) -> tuple[str, str] | None:
    """The ``--gid`` a target was published with and the one a new publish of it asks for, when they
    differ ("none" for an absent one); None when they agree.

    A pod's fsGroup cannot change while it runs (its securityContext is immutable), so kubelet's periodic
    republish always asks for the group the target has: another one is a conflicting request, and
    answering OK would leave the old group showing. What may change under a running pod (the
    ``s3csi.io/fs-user`` annotation, a PV's other mount options) keeps the mount as it is."""
    before, after = _gid(published), _gid(requested)
    return None if before == after else (before, after)


def _gid(args: Sequence[str]) -> str:
    return next((arg.removeprefix("--gid=") for arg in args if arg.startswith("--gid=")), "none")


def check_unpublish(target: str, volume_id: str, published_volume_id: str | None) -> None:
    """NodeUnpublishVolume must not remove what another volume published at ``target``: the CO named
    the wrong volume, and retrying with it will not help. ``published_volume_id`` None: nothing known."""
    if published_volume_id is not None and published_volume_id != volume_id:
        raise FailedPrecondition(
            f"target_path {target} holds volume {published_volume_id!r}, not {volume_id!r}: "
            "nothing unpublished"
        )
