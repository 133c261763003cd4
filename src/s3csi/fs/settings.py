"""The file system's configuration: mount-s3's flags (same names, same meanings) as one frozen value.

Every flag's value is parsed and checked here, once, when the settings are built, against the flag's range,
pattern and default in :mod:`s3csi.mountflags`; a bad value raises ``InvalidArgument`` naming the flag.
Nothing in this module does I/O except :func:`check_mountpoint` and :func:`check_cache_dir`, which look at
the paths the command was given.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field

from s3csi.bucketforms import bucket_form
from s3csi.errors import InvalidArgument
from s3csi.metrics.endpoint import MetricsAddress, parse_address
from s3csi.mountflags import (
    BUCKET_TYPES,
    BY_NAME,
    CACHED_METADATA_TTL_S,
    DEFAULT_DIR_MODE,
    DEFAULT_FILE_MODE,
    DEFAULT_MAX_STAGED_FILE_SIZE_MIB,
    DEFAULT_MAX_THREADS,
    DEFAULT_PART_SIZE,
    DEFAULT_UPLOAD_CHECKSUMS,
    GBPS_PER_REQUEST,
    KMS_SSE_TYPES,
    MINIMAL_TTL_S,
    PATTERNS,
    RANGES,
    SSE_TYPES,
    TTL_WORDS,
    UPLOAD_CHECKSUMS,
    FlagSpec,
    MiB,
    ValueKind,
    is_directory_bucket,
)
from s3csi.s3.addressing import refuse_userinfo

# The kernel's read-ahead on a mount (KiB), set by whoever mounts it once INIT is answered. Its default,
# 128, turns every big read into 128 KiB FUSE requests; with 4 MiB they are 1 MiB (libfuse's largest),
# several in flight.
READ_AHEAD_KIB = 4096
_FD_PATH = re.compile(r"/dev/fd/(\d+)")


CACHE_DIR_PREFIX = "s3csi-cache-"
STAGING_DIR_PREFIX = "s3csi-staging-"
"""The fresh sub-directories of ``--cache`` a mount keeps its read parts and staged copies in (removed at
unmount; left behind only by a process that was killed)."""


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
    dir_mode: int = DEFAULT_DIR_MODE
    file_mode: int = DEFAULT_FILE_MODE
    metadata_ttl_s: float = MINIMAL_TTL_S
    negative_metadata_ttl_s: float = MINIMAL_TTL_S
    cache_dir: str | None = None
    max_cache_size: int | None = None
    # Appends, writes at any offset, truncate and read-write opens through a copy in a sub-directory of
    # cache_dir (fs/staging.py), files up to max_staged_file_size bytes.
    staged_writes: bool = False
    max_staged_file_size: int = DEFAULT_MAX_STAGED_FILE_SIZE_MIB * MiB
    read_part_size: int = DEFAULT_PART_SIZE
    write_part_size: int = DEFAULT_PART_SIZE
    # Most S3 requests in flight at once (reads, part uploads, listings together).
    max_threads: int = DEFAULT_MAX_THREADS
    storage_class: str | None = None
    sse: str | None = None  # one of mountflags.SSE_TYPES
    sse_kms_key_id: str | None = None
    debug: bool = False
    # The bucket and the endpoint (s3/endpoints.py), and what every request says (s3/settings.py).
    bucket_type: str | None = None
    requester_pays: bool = False
    expected_bucket_owner: str | None = None
    transfer_acceleration: bool = False
    dual_stack: bool = False
    upload_checksums: str = DEFAULT_UPLOAD_CHECKSUMS
    # The AWS profile whose keys sign requests (None: AWS_PROFILE, else the default chain).
    profile: str | None = None
    # Logging: into a new file in log_directory; a summary of S3 requests every minute; nothing at all.
    log_directory: str | None = None
    log_metrics: bool = False
    no_log: bool = False
    # Write-only O_APPEND opens of existing files append to the object in place (fs/appender.py);
    # directory buckets only.
    incremental_upload: bool = False
    # --cache-xz: the directory bucket read parts are shared in (fs/xz_cache.py).
    cache_xz: str | None = None

    @property
    def directory_bucket(self) -> bool:
        """A directory bucket (S3 Express One Zone): said by --bucket-type, else by the bucket's name."""
        if self.bucket_type is not None:
            return self.bucket_type == "directory"
        return is_directory_bucket(self.bucket)

    # --metrics-address: where the mount's Prometheus metrics are served (fs/metrics.py); None: nowhere.
    metrics_address: MetricsAddress | None = None

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
        # Not libfuse's auto_unmount for --auto-unmount: s3csi's own watcher (fs/auto_unmount.py).
        return tuple(options)


@dataclass(frozen=True)
class FsFlags:
    """The command line as given, before validation: BUCKET, DIR and the flags that were given, by their
    names in :data:`s3csi.mountflags.FLAGS` (``{"uid": "1001", "allow-other": True}``)."""

    bucket: str
    directory: str
    given: Mapping[str, str | bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in self.given.items():
            spec = BY_NAME.get(name)
            if spec is None:
                raise InvalidArgument(f"--{name}: not a flag of s3csi mount")
            if isinstance(value, bool) is not (spec.kind is ValueKind.FLAG):
                raise InvalidArgument(
                    f"--{name}: takes no value" if spec.kind is ValueKind.FLAG else f"--{name}: needs a value"
                )

    def on(self, name: str) -> bool:
        """Was the switch ``--name`` given?"""
        return self.given.get(name) is True

    def text(self, name: str) -> str | None:
        """The text given for ``--name``, or None when it was not given."""
        value = self.given.get(name)
        return value if isinstance(value, str) else None


def parse_int(flag: str, text: str, *, low: int, high: int) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise InvalidArgument(f"{flag}: {text!r} is not a whole number") from None
    if not low <= value <= high:
        raise InvalidArgument(f"{flag}: {value} is out of range {low}..{high}")
    return value


def parse_mode(flag: str, text: str) -> int:
    """Octal permission bits, ``755`` or ``0755`` (like mount-s3); no file type, no setuid bits."""
    low, high = RANGES[ValueKind.MODE]
    try:
        value = int(text, 8)
    except ValueError:
        raise InvalidArgument(f"{flag}: {text!r} is not an octal mode such as 0755") from None
    if not low <= value <= high:
        raise InvalidArgument(f"{flag}: {text!r} is out of range {low:04o}..{high:04o}")
    return value


def parse_ttl(flag: str, text: str) -> float:
    """Seconds, or ``minimal`` (one second) or ``indefinite`` (never re-validated)."""
    if text in TTL_WORDS:
        return TTL_WORDS[text]
    low, high = RANGES[ValueKind.TTL]
    try:
        value = float(text)
    except ValueError:
        raise InvalidArgument(
            f"{flag}: {text!r} is not a number of seconds, {' or '.join(map(repr, TTL_WORDS))}"
        ) from None
    if not low <= value <= high:
        raise InvalidArgument(f"{flag}: {text!r} must be between {low} and {high} seconds")
    return value


def parse_prefix(text: str) -> str:
    if not text:
        return ""
    if not text.endswith("/"):
        raise InvalidArgument(f"--prefix: {text!r} must end with '/'")
    if text.startswith("/") or "//" in text:
        raise InvalidArgument(f"--prefix: {text!r} must not start with '/' or contain '//'")
    return text


def parse_number(spec: FlagSpec, text: str) -> int:
    """A numeric flag's value, within its range: octal for modes, decimal for the rest."""
    if spec.kind is ValueKind.MODE:
        return parse_mode(spec.option, text)
    if spec.range is None:
        raise TypeError(f"{spec.option} is not a numeric flag")
    low, high = spec.range
    return parse_int(spec.option, text, low=low, high=high)


def parse_text(spec: FlagSpec, text: str) -> str:
    """A textual flag's value, checked against its kind: InvalidArgument naming the flag otherwise."""
    kind, flag = spec.kind, spec.option
    pattern = PATTERNS.get(kind)
    if pattern is not None and not pattern.fullmatch(text):
        raise InvalidArgument(f"{flag}: {text!r} is not {kind.value}")
    if kind is ValueKind.PREFIX:
        return parse_prefix(text)
    if kind is ValueKind.SSE and text not in SSE_TYPES:
        raise InvalidArgument(f"{flag}: {text!r} must be one of {', '.join(SSE_TYPES)}")
    if kind is ValueKind.KMS_KEY_ID and not text.strip():
        raise InvalidArgument(f"{flag} must not be empty")
    if kind is ValueKind.USER_AGENT_PREFIX and not text.isprintable():
        raise InvalidArgument(f"{flag} must be printable text")
    if kind is ValueKind.URL:
        refuse_userinfo(text, flag)
        if not text.startswith(("http://", "https://")):
            raise InvalidArgument(f"{flag}: {text!r} must start with http:// or https://")
    if kind is ValueKind.BUCKET_TYPE and text not in BUCKET_TYPES:
        raise InvalidArgument(f"{flag}: {text!r} must be one of {', '.join(BUCKET_TYPES)}")
    if kind is ValueKind.UPLOAD_CHECKSUMS and text not in UPLOAD_CHECKSUMS:
        raise InvalidArgument(f"{flag}: {text!r} must be one of {', '.join(UPLOAD_CHECKSUMS)}")
    if kind is ValueKind.DIRECTORY and not text:
        raise InvalidArgument(f"{flag}: the directory must not be empty")
    if kind is ValueKind.METRICS_ADDRESS:
        parse_address(text, flag)
    return text


def parse_fd_path(directory: str) -> int | None:
    """The descriptor number of a ``/dev/fd/N`` mount point, else None."""
    match = _FD_PATH.fullmatch(directory)
    return int(match.group(1)) if match else None


def build_settings(flags: FsFlags, *, default_uid: int, default_gid: int) -> FsSettings:
    """Validate the flags and build the settings. Raises ``InvalidArgument`` naming the bad flag.

    Each value is checked against its spec (:mod:`s3csi.mountflags`); the rules between flags are here.
    The mount point itself is only looked at by :func:`check_mountpoint` (I/O).
    """
    bucket_form(flags.bucket, what="BUCKET", legacy_names=True)
    if not flags.directory:
        raise InvalidArgument("DIRECTORY: must not be empty")
    fuse_fd = parse_fd_path(flags.directory)
    on = flags.on
    if on("allow-other") and on("allow-root"):
        raise InvalidArgument("--allow-other and --allow-root cannot be used together")
    if on("auto-unmount") and fuse_fd is not None:
        raise InvalidArgument("--auto-unmount: a /dev/fd/N mount is unmounted by the parent that mounted it")
    if on("read-only") and (
        on("allow-delete") or on("allow-overwrite") or on("allow-rename") or on("staged-writes")
    ):
        raise InvalidArgument(
            "--read-only cannot be combined with --allow-delete, --allow-overwrite, --allow-rename"
            " or --staged-writes"
        )
    cache = _text(flags, "cache")
    if flags.text("max-cache-size") is not None and cache is None:
        raise InvalidArgument("--max-cache-size needs --cache")
    if on("staged-writes") and cache is None:
        raise InvalidArgument(
            "--staged-writes needs --cache DIR: the staged copies are kept in that directory"
        )
    if flags.text("max-staged-file-size") is not None and not on("staged-writes"):
        raise InvalidArgument("--max-staged-file-size needs --staged-writes")
    if on("incremental-upload"):
        _check_incremental_upload(flags)
    sse = _text(flags, "sse")
    if flags.text("sse-kms-key-id") is not None and sse not in KMS_SSE_TYPES:
        raise InvalidArgument(f"--sse-kms-key-id needs --sse {' or --sse '.join(KMS_SSE_TYPES)}")

    if on("no-log") and (on("debug") or on("log-metrics") or flags.text("log-directory") is not None):
        raise InvalidArgument("--no-log cannot be combined with --debug, --log-metrics or --log-directory")
    part_size = _number(flags, "part-size", DEFAULT_PART_SIZE)
    throughput = _number(flags, "maximum-throughput-gbps", 0)
    metadata_ttl = _ttl(flags, "metadata-ttl", CACHED_METADATA_TTL_S if cache is not None else MINIMAL_TTL_S)
    max_cache_size = _number(flags, "max-cache-size", 0)
    return FsSettings(
        bucket=flags.bucket,
        mountpoint=flags.directory,
        fuse_fd=fuse_fd,
        prefix=_text(flags, "prefix") or "",
        region=_text(flags, "region"),
        endpoint_url=_text(flags, "endpoint-url"),
        force_path_style=on("force-path-style"),
        no_sign_request=on("no-sign-request"),
        user_agent_prefix=_text(flags, "user-agent-prefix"),
        read_only=on("read-only"),
        allow_delete=on("allow-delete"),
        allow_overwrite=on("allow-overwrite"),
        allow_rename=on("allow-rename"),
        allow_other=on("allow-other"),
        allow_root=on("allow-root"),
        auto_unmount=on("auto-unmount"),
        foreground=on("foreground"),
        uid=_number(flags, "uid", default_uid),
        gid=_number(flags, "gid", default_gid),
        dir_mode=_number(flags, "dir-mode", DEFAULT_DIR_MODE),
        file_mode=_number(flags, "file-mode", DEFAULT_FILE_MODE),
        metadata_ttl_s=metadata_ttl,
        negative_metadata_ttl_s=_ttl(flags, "negative-metadata-ttl", metadata_ttl),
        cache_dir=cache,
        max_cache_size=max_cache_size * MiB if max_cache_size else None,
        staged_writes=on("staged-writes"),
        max_staged_file_size=_number(flags, "max-staged-file-size", DEFAULT_MAX_STAGED_FILE_SIZE_MIB) * MiB,
        read_part_size=_number(flags, "read-part-size", part_size),
        write_part_size=_number(flags, "write-part-size", part_size),
        max_threads=_number(
            flags, "max-threads", threads_for(throughput) if throughput else DEFAULT_MAX_THREADS
        ),
        storage_class=_text(flags, "storage-class"),
        sse=sse,
        sse_kms_key_id=_text(flags, "sse-kms-key-id"),
        debug=on("debug"),
        bucket_type=_text(flags, "bucket-type"),
        requester_pays=on("requester-pays"),
        expected_bucket_owner=_text(flags, "expected-bucket-owner"),
        transfer_acceleration=on("transfer-acceleration"),
        dual_stack=on("dual-stack"),
        upload_checksums=_text(flags, "upload-checksums") or DEFAULT_UPLOAD_CHECKSUMS,
        profile=_text(flags, "profile"),
        log_directory=_text(flags, "log-directory"),
        log_metrics=on("log-metrics"),
        no_log=on("no-log"),
        incremental_upload=on("incremental-upload"),
        cache_xz=_text(flags, "cache-xz"),
        metrics_address=_metrics_address(flags),
    )


def threads_for(gbps: int) -> int:
    """``--maximum-throughput-gbps``: the S3 requests to keep in flight for that target, one request
    sustaining about ``GBPS_PER_REQUEST`` (S3's per-connection guidance), within --max-threads' range;
    0 for no target."""
    if not gbps:
        return 0
    low, high = RANGES[ValueKind.THREADS]
    return max(low, min(high, math.ceil(gbps / GBPS_PER_REQUEST)))


def _check_incremental_upload(flags: FsFlags) -> None:
    """Directory buckets only: by name, or said with --bucket-type directory (a custom endpoint's)."""
    bucket_type = flags.text("bucket-type")
    if bucket_type == "general-purpose" or (bucket_type is None and not is_directory_bucket(flags.bucket)):
        raise InvalidArgument(
            f"--incremental-upload appends with S3 Express One Zone's write offsets, which only directory "
            f"buckets (NAME--ZONEID--x-s3, or --bucket-type directory) take; {flags.bucket} is a "
            "general-purpose bucket"
        )
    if flags.on("read-only"):
        raise InvalidArgument("--incremental-upload cannot be combined with --read-only")


def _number(flags: FsFlags, name: str, default: int) -> int:
    text = flags.text(name)
    return default if text is None else parse_number(BY_NAME[name], text)


def _ttl(flags: FsFlags, name: str, default: float) -> float:
    text = flags.text(name)
    return default if text is None else parse_ttl(BY_NAME[name].option, text)


def _metrics_address(flags: FsFlags) -> MetricsAddress | None:
    text = _text(flags, "metrics-address")
    return None if text is None else parse_address(text, BY_NAME["metrics-address"].option)


def _text(flags: FsFlags, name: str) -> str | None:
    text = flags.text(name)
    return None if text is None else parse_text(BY_NAME[name], text)


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
