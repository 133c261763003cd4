"""What a volume entry should look like after an fsGroup change — pure, so it is tested with tables.

The mode arithmetic is kubelet's (kubernetes/kubernetes ``pkg/volume/volume_linux.go``,
``changeFilePermission`` and ``requiresPermissionChange``, read at commit 7dd8853f)::

    rwMask   = 0660     roMask = 0440     execMask = 0110
    mask     = roMask if readOnly else rwMask
    if dir:  mask |= setgid | execMask
    chmod(mode | mask)                      # bits are only ever added, never removed

So a file gets owner+group read (and write unless read-only) and never an execute bit it did not
have; a directory also gets owner+group search and setgid, so new files inherit the group (the
``root:<fsGroup> 2770`` of Kubernetes' volumes proposal). A symlink is never chmodded (chmod would
follow it to its target, and a link's own mode means nothing); unlike kubelet, which skips symlinks,
its own owner and group are changed (lchown) so that every entry of the volume carries fsGroup.
fsUser (the pod-level owner) replaces the owner; without it the owner is kept, as kubelet keeps it.
"""

from __future__ import annotations

import enum
import stat
from dataclasses import dataclass

from s3csi.errors import InvalidArgument
from s3csi.mountflags import MAX_ID

RW_MASK = 0o660
RO_MASK = 0o440
EXEC_MASK = 0o110


class FsGroupChangePolicy(enum.StrEnum):
    """``pod.spec.securityContext.fsGroupChangePolicy``, with the Kubernetes spelling."""

    ALWAYS = "Always"
    ON_ROOT_MISMATCH = "OnRootMismatch"

    @classmethod
    def parse(cls, value: str | FsGroupChangePolicy) -> FsGroupChangePolicy:
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(member.value for member in cls)
            raise InvalidArgument(f"unknown fsGroupChangePolicy {value!r} (allowed: {allowed})") from None


def check_id(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
        raise InvalidArgument(f"{name} must be an integer from 0 to {MAX_ID}, not {value!r}")
    return value


@dataclass(frozen=True)
class OwnershipTarget:
    """The ownership every entry of the volume should end up with."""

    fs_group: int
    fs_user: int | None = None  # None: keep each entry's owner, as kubelet does
    read_only: bool = False

    def __post_init__(self) -> None:
        check_id("fsGroup", self.fs_group)
        if self.fs_user is not None:
            check_id("fsUser", self.fs_user)


@dataclass(frozen=True)
class Change:
    """The calls to make on one entry; ``None`` means that call is not needed."""

    owner: tuple[int, int] | None  # (uid, gid) for lchown/fchown
    mode: int | None  # permission bits incl. setuid/setgid/sticky for chmod; never set for a symlink


def target_mode(st_mode: int, read_only: bool) -> int:
    """kubelet's ``info.Mode() | mask`` on the permission bits (see the module docstring)."""
    mask = RO_MASK if read_only else RW_MASK
    if stat.S_ISDIR(st_mode):
        mask |= stat.S_ISGID | EXEC_MASK
    return stat.S_IMODE(st_mode) | mask


def decide(st_mode: int, st_uid: int, st_gid: int, target: OwnershipTarget) -> Change | None:
    """The change one entry (as lstat(2) saw it) needs, or None when it is already right."""
    uid = st_uid if target.fs_user is None else target.fs_user
    owner = None if (st_uid, st_gid) == (uid, target.fs_group) else (uid, target.fs_group)
    if stat.S_ISLNK(st_mode):
        return None if owner is None else Change(owner=owner, mode=None)
    new_mode = target_mode(st_mode, target.read_only)
    # chown(2) clears setuid/setgid on a regular file; kubelet chmods from the mode it saw before the
    # chown, which puts them back, so the chmod cannot be skipped then.
    kernel_clears = owner is not None and stat.S_ISREG(st_mode) and st_mode & (stat.S_ISUID | stat.S_ISGID)
    mode = new_mode if new_mode != stat.S_IMODE(st_mode) or kernel_clears else None
    if owner is None and mode is None:
        return None
    return Change(owner=owner, mode=mode)


def root_matches(st_mode: int, st_uid: int, st_gid: int, target: OwnershipTarget) -> bool:
    """kubelet's ``requiresPermissionChange``, negated: may OnRootMismatch skip the walk?

    The root must be a directory with the group (and owner, with fsUser), the mask's bits and setgid.
    That is enough because the walk changes the root last: a root that matches was set by a walk that
    finished.
    """
    if not stat.S_ISDIR(st_mode) or st_gid != target.fs_group:
        return False
    if target.fs_user is not None and st_uid != target.fs_user:
        return False
    required = (RO_MASK if target.read_only else RW_MASK) | EXEC_MASK
    return st_mode & required == required and bool(st_mode & stat.S_ISGID)
