"""The file system's configuration: mount-s3's flags (same names, same meanings) as one frozen value.

Every flag's value is parsed and checked here, once, when the settings are built; a bad value raises
``InvalidArgument`` naming the flag. Nothing in this module does I/O except :func:`check_mountpoint` and
:func:`check_cache_dir`, which look at the paths the command was given.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from typing import Literal

from s3csi.errors import InvalidArgument
from s3csi.s3.addressing import refuse_userinfo

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

DEFAULT_PART_SIZE = 8 * MiB
# S3 refuses multipart parts under 5 MiB (the last excepted) and over 5 GiB.
MIN_WRITE_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * GiB
MIN_READ_PART_SIZE = 64 * KiB
DEFAULT_MAX_THREADS = 16
# "minimal" is mount-s3's default: metadata is re-validated after one second.
MINIMAL_TTL_S = 1.0
# "indefinite": the kernel takes entry/attr timeouts as seconds; a century is forever for a mount.
INDEFINITE_TTL_S = 100 * 365 * 24 * 3600.0
# With --cache, mount-s3 keeps metadata for a minute unless --metadata-ttl says otherwise.
CACHED_METADATA_TTL_S = 60.0
SSE_TYPES = ("aws:kms", "aws:kms:dsse", "AES256")
MAX_ID = 2**32 - 2  # (uid_t)-1 means "no change" to the kernel

_BUCKET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{1,254}")
_STORAGE_CLASS = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
# The kernel's read-ahead on a mount (KiB), set by whoever mounts it once INIT is answered. Its default,
# 128, turns every big read into 128 KiB FUSE requests; with 4 MiB they are 1 MiB (libfuse's largest),
# several in flight.
READ_AHEAD_KIB = 4096
_FD_PATH = re.compile(r"/dev/fd/(\d+)")

SseType = Literal["aws:kms", "aws:kms:dsse", "AES256"]


@dataclass(frozen=True)
class FsSettings:
    """One mount. Sizes are bytes, times seconds, modes the permission bits only."""

    bucket: str
    # Where to mount, as given; or the /dev/fuse descriptor a privileged parent mounted (/dev/fd/N).
    mountpoint: str
    fuse_fd: int | None = None
    # Key prefix the mount shows as its root: "" or ending in "/".
    prefix: str = ""
    region: str | None = None
    endpoint_url: str | None = None
    force_path_style: bool = False
    no_sign_request: bool = False
    user_agent_prefix: str | None = None
    read_only: bool = False
    allow_delete: bool = False
    allow_overwrite: bool = False
    allow_rename: bool = False
    allow_other: bool = False
    allow_root: bool = False
    auto_unmount: bool = False
    foreground: bool = False
    uid: int = 0
    gid: int = 0
    dir_mode: int = 0o755
    file_mode: int = 0o644
    metadata_ttl_s: float = MINIMAL_TTL_S
    negative_metadata_ttl_s: float = MINIMAL_TTL_S
    cache_dir: str | None = None
    max_cache_size: int | None = None
    read_part_size: int = DEFAULT_PART_SIZE
    write_part_size: int = DEFAULT_PART_SIZE
    # Most S3 requests in flight at once (reads, part uploads, listings together).
    max_threads: int = DEFAULT_MAX_THREADS
    storage_class: str | None = None
    sse: SseType | None = None
    sse_kms_key_id: str | None = None
    debug: bool = False

    @property
    def fuse_options(self) -> tuple[str, ...]:
        """libfuse mount options. ``default_permissions`` always: the kernel enforces uid/gid/modes."""
        options = ["fsname=s3csi", "subtype=s3csi", "default_permissions", "noatime"]
        if self.allow_other:
            options.append("allow_other")
        if self.allow_root:
            options.append("allow_root")
        if self.read_only:
            options.append("ro")
        if self.auto_unmount:
            options.append("auto_unmount")
        return tuple(options)


@dataclass(frozen=True)
class FsFlags:
    """The command line as given (strings where the user typed text), before validation."""

    bucket: str
    directory: str
    prefix: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    force_path_style: bool = False
    no_sign_request: bool = False
    user_agent_prefix: str | None = None
    read_only: bool = False
    allow_delete: bool = False
    allow_overwrite: bool = False
    allow_rename: bool = False
    allow_other: bool = False
    allow_root: bool = False
    auto_unmount: bool = False
    foreground: bool = False
    uid: str | None = None
    gid: str | None = None
    dir_mode: str | None = None
    file_mode: str | None = None
    metadata_ttl: str | None = None
    negative_metadata_ttl: str | None = None
    cache: str | None = None
    max_cache_size: str | None = None
    part_size: str | None = None
    read_part_size: str | None = None
    write_part_size: str | None = None
    max_threads: str | None = None
    storage_class: str | None = None
    sse: str | None = None
    sse_kms_key_id: str | None = None
    debug: bool = False


def parse_id(flag: str, text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise InvalidArgument(f"{flag}: {text!r} is not a number") from None
    if not 0 <= value <= MAX_ID:
        raise InvalidArgument(f"{flag}: {value} is out of range 0..{MAX_ID}")
    return value


def parse_mode(flag: str, text: str) -> int:
    """Octal permission bits, ``755`` or ``0755`` (like mount-s3); no file type, no setuid bits."""
    try:
        value = int(text, 8)
    except ValueError:
        raise InvalidArgument(f"{flag}: {text!r} is not an octal mode such as 0755") from None
    if not 0 <= value <= 0o777:
        raise InvalidArgument(f"{flag}: {text!r} is out of range 0000..0777")
    return value


def parse_ttl(flag: str, text: str) -> float:
    """Seconds, or ``minimal`` (one second) or ``indefinite`` (never re-validated)."""
    if text == "minimal":
        return MINIMAL_TTL_S
    if text == "indefinite":
        return INDEFINITE_TTL_S
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgument(
            f"{flag}: {text!r} is not a number of seconds, 'minimal' or 'indefinite'"
        ) from None
    if not 0 <= value <= INDEFINITE_TTL_S:
        raise InvalidArgument(f"{flag}: {text!r} must be between 0 and {INDEFINITE_TTL_S:.0f} seconds")
    return value


def parse_int(flag: str, text: str, *, low: int, high: int) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise InvalidArgument(f"{flag}: {text!r} is not a whole number") from None
    if not low <= value <= high:
        raise InvalidArgument(f"{flag}: {value} is out of range {low}..{high}")
    return value


def parse_prefix(text: str) -> str:
    if not text:
        return ""
    if not text.endswith("/"):
        raise InvalidArgument(f"--prefix: {text!r} must end with '/'")
    if text.startswith("/") or "//" in text:
        raise InvalidArgument(f"--prefix: {text!r} must not start with '/' or contain '//'")
    return text


def parse_fd_path(directory: str) -> int | None:
    """The descriptor number of a ``/dev/fd/N`` mount point, else None."""
    match = _FD_PATH.fullmatch(directory)
    return int(match.group(1)) if match else None


def build_settings(flags: FsFlags, *, default_uid: int, default_gid: int) -> FsSettings:
    """Validate the flags and build the settings. Raises ``InvalidArgument`` naming the bad flag.

    The mount point itself is only looked at by :func:`check_mountpoint` (I/O).
    """
    if not _BUCKET_NAME.fullmatch(flags.bucket):
        raise InvalidArgument(f"BUCKET: {flags.bucket!r} is not a valid bucket name")
    if not flags.directory:
        raise InvalidArgument("DIRECTORY: must not be empty")
    fuse_fd = parse_fd_path(flags.directory)
    if flags.allow_other and flags.allow_root:
        raise InvalidArgument("--allow-other and --allow-root cannot be used together")
    if flags.auto_unmount and fuse_fd is not None:
        raise InvalidArgument("--auto-unmount: a /dev/fd/N mount is unmounted by the parent that mounted it")
    if flags.read_only and (flags.allow_delete or flags.allow_overwrite or flags.allow_rename):
        raise InvalidArgument(
            "--read-only cannot be combined with --allow-delete, --allow-overwrite or --allow-rename"
        )
    if flags.max_cache_size is not None and flags.cache is None:
        raise InvalidArgument("--max-cache-size needs --cache")
    if flags.cache is not None and not flags.cache:
        raise InvalidArgument("--cache: the directory must not be empty")
    if flags.sse is not None and flags.sse not in SSE_TYPES:
        raise InvalidArgument(f"--sse: {flags.sse!r} must be one of {', '.join(SSE_TYPES)}")
    if flags.sse_kms_key_id is not None and flags.sse not in ("aws:kms", "aws:kms:dsse"):
        raise InvalidArgument("--sse-kms-key-id needs --sse aws:kms or --sse aws:kms:dsse")
    if flags.sse_kms_key_id is not None and not flags.sse_kms_key_id.strip():
        raise InvalidArgument("--sse-kms-key-id must not be empty")
    if flags.storage_class is not None and not _STORAGE_CLASS.fullmatch(flags.storage_class):
        raise InvalidArgument(
            f"--storage-class: {flags.storage_class!r} is not a storage class such as STANDARD_IA"
        )
    if flags.endpoint_url is not None:
        refuse_userinfo(flags.endpoint_url, "--endpoint-url")
    if flags.endpoint_url is not None and not flags.endpoint_url.startswith(("http://", "https://")):
        raise InvalidArgument(f"--endpoint-url: {flags.endpoint_url!r} must start with http:// or https://")
    if flags.region is not None and not re.fullmatch(r"[a-z0-9-]{1,64}", flags.region):
        raise InvalidArgument(f"--region: {flags.region!r} is not a region name such as eu-west-1")
    if flags.user_agent_prefix is not None and not flags.user_agent_prefix.isprintable():
        raise InvalidArgument("--user-agent-prefix must be printable text")

    part_size = (
        parse_int("--part-size", flags.part_size, low=MIN_WRITE_PART_SIZE, high=MAX_PART_SIZE)
        if flags.part_size is not None
        else DEFAULT_PART_SIZE
    )
    read_part_size = (
        parse_int("--read-part-size", flags.read_part_size, low=MIN_READ_PART_SIZE, high=MAX_PART_SIZE)
        if flags.read_part_size is not None
        else part_size
    )
    write_part_size = (
        parse_int("--write-part-size", flags.write_part_size, low=MIN_WRITE_PART_SIZE, high=MAX_PART_SIZE)
        if flags.write_part_size is not None
        else part_size
    )
    metadata_ttl = (
        parse_ttl("--metadata-ttl", flags.metadata_ttl)
        if flags.metadata_ttl is not None
        else (CACHED_METADATA_TTL_S if flags.cache is not None else MINIMAL_TTL_S)
    )
    negative_ttl = (
        parse_ttl("--negative-metadata-ttl", flags.negative_metadata_ttl)
        if flags.negative_metadata_ttl is not None
        else metadata_ttl
    )
    return FsSettings(
        bucket=flags.bucket,
        mountpoint=flags.directory,
        fuse_fd=fuse_fd,
        prefix=parse_prefix(flags.prefix) if flags.prefix is not None else "",
        region=flags.region,
        endpoint_url=flags.endpoint_url,
        force_path_style=flags.force_path_style,
        no_sign_request=flags.no_sign_request,
        user_agent_prefix=flags.user_agent_prefix,
        read_only=flags.read_only,
        allow_delete=flags.allow_delete,
        allow_overwrite=flags.allow_overwrite,
        allow_rename=flags.allow_rename,
        allow_other=flags.allow_other,
        allow_root=flags.allow_root,
        auto_unmount=flags.auto_unmount,
        foreground=flags.foreground,
        uid=parse_id("--uid", flags.uid) if flags.uid is not None else default_uid,
        gid=parse_id("--gid", flags.gid) if flags.gid is not None else default_gid,
        dir_mode=parse_mode("--dir-mode", flags.dir_mode) if flags.dir_mode is not None else 0o755,
        file_mode=parse_mode("--file-mode", flags.file_mode) if flags.file_mode is not None else 0o644,
        metadata_ttl_s=metadata_ttl,
        negative_metadata_ttl_s=negative_ttl,
        cache_dir=flags.cache,
        max_cache_size=(
            parse_int("--max-cache-size", flags.max_cache_size, low=1, high=2**40) * MiB
            if flags.max_cache_size is not None
            else None
        ),
        read_part_size=read_part_size,
        write_part_size=write_part_size,
        max_threads=parse_int("--max-threads", flags.max_threads, low=1, high=1024)
        if flags.max_threads is not None
        else DEFAULT_MAX_THREADS,
        storage_class=flags.storage_class,
        sse=flags.sse,  # type: ignore[arg-type]  # checked against SSE_TYPES above
        sse_kms_key_id=flags.sse_kms_key_id,
        debug=flags.debug,
    )


def check_mountpoint(settings: FsSettings) -> None:
    """The mount point must be a directory, or ``/dev/fd/N`` an open descriptor (of /dev/fuse)."""
    if settings.fuse_fd is not None:
        try:
            mode = os.fstat(settings.fuse_fd).st_mode
        except OSError:
            raise InvalidArgument(
                f"DIRECTORY: {settings.mountpoint} is not an open file descriptor"
            ) from None
        if not stat.S_ISCHR(mode):
            raise InvalidArgument(f"DIRECTORY: {settings.mountpoint} is not a /dev/fuse descriptor")
        return
    if not os.path.isdir(settings.mountpoint):
        raise InvalidArgument(f"DIRECTORY: {settings.mountpoint} is not a directory")


def check_cache_dir(settings: FsSettings) -> None:
    if settings.cache_dir is not None and not os.path.isdir(settings.cache_dir):
        raise InvalidArgument(f"--cache: {settings.cache_dir} is not a directory")
