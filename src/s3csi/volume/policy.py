"""The ownership and read-only policy: what every mount looks like (docs/mount-options.md).

:func:`effective_mount` turns a volume's mount options and the workload pod's security intent into the
mount-s3 argument list. The rules, in the order they apply:

1. The access mode must be one s3csi supports (:data:`SUPPORTED_ACCESS_MODES`), and options that only work
   together must come together (``--sse-kms-key-id`` needs ``--sse=aws:kms`` or ``--sse=aws:kms:dsse``;
   ``--max-staged-file-size`` needs ``--staged-writes`` — a mount option, or the volume attribute
   ``stagedWrites: "true"`` — whose ``--cache`` directory the driver gives).
2. **fsGroup** (kubelet's ``volume_mount_group``) *overrides* ``--gid`` (the pod-level intent wins) and
   adds ``--allow-other`` when absent; ``--uid`` is untouched.
3. **fsUser** (the pod annotation ``s3csi.io/fs-user``, else the volume attribute ``fsUser``; the pod's
   wins, as fsGroup's does) *overrides* ``--uid`` and adds ``--allow-other`` when absent: without it FUSE
   lets only the Mountpoint Pod's own uid (1000) in, so the owner could not open its own files.
4. Modes, when absent: with an fsGroup ``--dir-mode=770 --file-mode=660``; with only an fsUser the
   owner-only ``--dir-mode=700 --file-mode=600`` that ssh and psql demand.
5. **read-only** when the request says so, the access mode is ``*_READER_ONLY``, or the options hold
   ``--read-only``: ``--read-only`` is in the arguments and nothing drops it. The write permissions
   ``--allow-delete``, ``--allow-overwrite``, ``--allow-rename``, ``--incremental-upload`` and
   ``--staged-writes`` (with its ``--max-staged-file-size``) are removed: they cannot apply.
6. ``--allow-other`` lets every uid in, root included, so it replaces ``--allow-root`` (FUSE refuses both);
   without ``--allow-other``, ``--allow-root`` is added because the Mountpoint Pod runs as uid 1000 and a
   workload running as root must still reach its volume.
7. **Default owner.** With ``--allow-other`` and no ``--uid`` (an fsGroup alone, say), the files would belong
   to the Mountpoint Pod's uid, 1000 — a uid workload images commonly run as, which would then get the
   owner's rights on every file. ``--uid=0`` is set instead: root passes the kernel's permission checks
   anyway, so owning the files grants nobody anything new. Without ``--allow-other`` the kernel lets only
   the uid that mounted the FUSE session (the node plugin's, root) in, and the owner is left as it is.

The function is idempotent: feeding its arguments back in as mount flags, with the same request, gives the
same arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from s3csi.errors import InvalidArgument
from s3csi.mountflags import KMS_SSE_TYPES, MAX_ID, ValueKind, is_directory_bucket
from s3csi.volume.context import CACHE, FS_USER, FS_USER_ANNOTATION, STAGED_WRITES, CacheVolume
from s3csi.volume.options import MountOptions, parse_id


class AccessMode(Enum):
    """CSI ``VolumeCapability.AccessMode.Mode``, with the spec's numbers: ``AccessMode(request_value)``."""

    UNKNOWN = 0
    SINGLE_NODE_WRITER = 1
    SINGLE_NODE_READER_ONLY = 2
    MULTI_NODE_READER_ONLY = 3
    MULTI_NODE_SINGLE_WRITER = 4
    MULTI_NODE_MULTI_WRITER = 5
    SINGLE_NODE_SINGLE_WRITER = 6
    SINGLE_NODE_MULTI_WRITER = 7

    @classmethod
    def from_csi(cls, value: int) -> AccessMode:
        """The mode for a wire value; InvalidArgument for one this spec version does not define."""
        try:
            return cls(value)
        except ValueError:
            raise InvalidArgument(f"volume capability access mode {value} is not a CSI access mode") from None


SUPPORTED_ACCESS_MODES: frozenset[AccessMode] = frozenset(
    {
        AccessMode.SINGLE_NODE_WRITER,
        AccessMode.SINGLE_NODE_READER_ONLY,
        AccessMode.MULTI_NODE_READER_ONLY,
        AccessMode.MULTI_NODE_MULTI_WRITER,
    }
)
"""docs/architecture.md#csi. The single-writer modes are refused: nothing in S3 could enforce "one writer"."""

READER_ONLY_ACCESS_MODES: frozenset[AccessMode] = frozenset(
    {AccessMode.SINGLE_NODE_READER_ONLY, AccessMode.MULTI_NODE_READER_ONLY}
)

DEFAULT_OWNER_UID = 0
"""The file owner of a mount that lets other users in when neither the mount options nor fsUser name one."""

FS_GROUP_DIR_MODE = "770"
FS_GROUP_FILE_MODE = "660"
FS_USER_DIR_MODE = "700"
FS_USER_FILE_MODE = "600"

_DEFAULT_MODES = {  # keyed by "has an fsGroup"
    True: (FS_GROUP_DIR_MODE, FS_GROUP_FILE_MODE),
    False: (FS_USER_DIR_MODE, FS_USER_FILE_MODE),
}
_WRITE_PERMISSIONS = (
    "allow-delete",
    "allow-overwrite",
    "allow-rename",
    "staged-writes",
    "max-staged-file-size",
    "incremental-upload",
)


@dataclass(frozen=True)
class PolicyInput:
    """What NodePublishVolume knows that shapes the mount."""

    mount_flags: Sequence[str]
    """The PV's or StorageClass's ``mountOptions`` (CSI ``mount_flags``), untrusted."""
    volume_mount_group: str | None
    """The pod's fsGroup as kubelet sends it (a decimal string); None or "" when the pod has none."""
    fs_user_annotation: str | None
    """The pod's ``s3csi.io/fs-user`` annotation, untrusted; None when absent."""
    volume_fs_user: int | None
    """``VolumeContext.fs_user``."""
    readonly: bool
    """NodePublishVolumeRequest.readonly."""
    access_mode: AccessMode
    volume_staged_writes: bool = False
    """``VolumeContext.staged_writes``: the volume attribute that turns ``--staged-writes`` on."""


@dataclass(frozen=True)
class EffectiveMount:
    """The decision: how the Mountpoint Pod mounts this volume for this workload."""

    args: tuple[str, ...]
    """The mount-s3 arguments, sorted and normalised (``--key`` / ``--key=value``)."""
    read_only: bool
    uid: int | None
    """The owner mount-s3 reports (``--uid``); None: the Mountpoint Pod's own uid."""
    gid: int | None
    """The group mount-s3 reports (``--gid``); None: the Mountpoint Pod's own gid."""
    fs_group: int | None
    fs_user: int | None
    allow_other: bool


def _fs_group(volume_mount_group: str | None) -> int | None:
    if not volume_mount_group:
        return None
    try:
        return parse_id(volume_mount_group)
    except ValueError:
        raise InvalidArgument(
            f"volume_mount_group (the pod's fsGroup) {volume_mount_group[:80]!r} must be {ValueKind.ID.value}"
        ) from None


def _fs_user(annotation: str | None, volume_fs_user: int | None) -> int | None:
    if annotation is not None:
        try:
            return parse_id(annotation)
        except ValueError:
            raise InvalidArgument(
                f"pod annotation {FS_USER_ANNOTATION} {annotation[:80]!r} must be {ValueKind.ID.value}"
            ) from None
    if volume_fs_user is not None and not 0 <= volume_fs_user <= MAX_ID:
        raise InvalidArgument(f"volume attribute {FS_USER} {volume_fs_user} must be {ValueKind.ID.value}")
    return volume_fs_user


def effective_mount(request: PolicyInput) -> EffectiveMount:
    """Apply the rules of the module docstring; InvalidArgument names the option or field at fault."""
    if request.access_mode not in SUPPORTED_ACCESS_MODES:
        raise InvalidArgument(f"volume capability access mode {request.access_mode.name} is not supported")
    options = MountOptions.parse(request.mount_flags)
    if request.volume_staged_writes:
        options = options.set_if_absent("staged-writes")
    if options.has("sse-kms-key-id") and options.get("sse") not in KMS_SSE_TYPES:
        raise InvalidArgument("mount option --sse-kms-key-id needs --sse=aws:kms or --sse=aws:kms:dsse")
    if options.has("max-staged-file-size") and not options.has("staged-writes"):
        raise InvalidArgument("mount option --max-staged-file-size needs --staged-writes")
    fs_group = _fs_group(request.volume_mount_group)
    fs_user = _fs_user(request.fs_user_annotation, request.volume_fs_user)

    if fs_group is not None:
        options = options.set("gid", str(fs_group)).set_if_absent("allow-other")
    if fs_user is not None:
        options = options.set("uid", str(fs_user)).set_if_absent("allow-other")
    if fs_group is not None or fs_user is not None:
        dir_mode, file_mode = _DEFAULT_MODES[fs_group is not None]
        options = options.set_if_absent("dir-mode", dir_mode).set_if_absent("file-mode", file_mode)

    read_only = (
        request.readonly or request.access_mode in READER_ONLY_ACCESS_MODES or options.has("read-only")
    )
    if read_only:
        options = options.set("read-only")
        for permission in _WRITE_PERMISSIONS:
            options = options.remove(permission)

    allow_other = options.has("allow-other")
    options = options.remove("allow-root") if allow_other else options.set("allow-root")
    if allow_other:
        options = options.set_if_absent("uid", str(DEFAULT_OWNER_UID))

    uid, gid = options.get("uid"), options.get("gid")
    return EffectiveMount(
        args=options.to_args(),
        read_only=read_only,
        uid=None if uid is None else int(uid),
        gid=None if gid is None else int(gid),
        fs_group=fs_group,
        fs_user=fs_user,
        allow_other=allow_other,
    )


def check_bucket_type(mount: EffectiveMount, bucket: str) -> None:
    """``--incremental-upload`` appends with a directory bucket's write offsets: InvalidArgument naming the
    bucket when the volume's is a general-purpose one (it would fail only inside the Mountpoint Pod)."""
    options = MountOptions.parse(mount.args)
    bucket_type = options.get("bucket-type")
    directory = bucket_type == "directory" or (bucket_type is None and is_directory_bucket(bucket))
    if options.has("incremental-upload") and not directory:
        raise InvalidArgument(
            f"mount option --incremental-upload needs a directory bucket (NAME--ZONEID--x-s3, or "
            f"--bucket-type=directory); {bucket} is a general-purpose bucket"
        )


def check_staging_cache(mount: EffectiveMount, cache: CacheVolume | None) -> None:
    """``--staged-writes`` keeps its copies in the Mountpoint Pod's cache volume (the mounter's --cache,
    which a volume cannot name): InvalidArgument naming the attribute when the volume asks for none."""
    if cache is None and MountOptions.parse(mount.args).has("staged-writes"):
        raise InvalidArgument(
            f"--staged-writes (mount option, or volume attribute {STAGED_WRITES}) keeps its copies in the "
            f"Mountpoint Pod's cache volume: set the volume attribute {CACHE} "
            "(docs/kubernetes.md#the-cache-volume)"
        )
