"""The flags of ``s3csi mount`` (mount-s3's names and meanings, plus ``--allow-rename``): the one place each
flag's name, value, range, default, help text and stance in a PersistentVolume is written.

Three consumers derive from :data:`FLAGS` and nothing else:

- ``s3csi mount``'s command line (``fs/cli.py``) adds one argparse argument per spec, with its help text;
- the file system's settings (``fs/settings.py``) parse each value against its kind's range and pattern and
  fall back to the spec's default;
- the volume policy (``volume/options.py``) lets a PV or StorageClass use exactly the specs marked
  :attr:`PvStance.ALLOWED`, refuses the :attr:`PvStance.DENIED` ones with their reason, and drops the
  :attr:`PvStance.DROPPED` ones.

``tests/unit/test_mountflags.py`` checks that the three agree and that no other module writes a range, a
default or one of these patterns. The module is pure and imports nothing from s3csi, so every layer may
use it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

MAX_ID = 2**31 - 1
"""The largest uid or gid, for ``--uid``/``--gid``, fsGroup, fsUser and the ownership walk alike.

Linux ids are 32-bit and ``(uid_t)-1`` means "no change" to chown(2), so the kernel alone would allow up
to 2**32-2. But Kubernetes refuses ``runAsUser``, ``runAsGroup`` and ``fsGroup`` above 2**31-1
(apimachinery's ``IsValidUserID``/``IsValidGroupID``), and systemd tells distributions never to allocate
ids from 2**31 up, because tools that keep ``uid_t`` in a signed int turn them negative. No pod can run as
such an id, so a mount reporting one would show files owned by an id nobody holds: 0..2**31-1 it is.
"""

# S3 refuses multipart parts under 5 MiB (the last excepted) and over 5 GiB.
MIN_WRITE_PART_SIZE = 5 * MiB
MAX_PART_SIZE = 5 * GiB
# A ranged GET may be smaller; below 64 KiB the request overhead dominates.
MIN_READ_PART_SIZE = 64 * KiB
DEFAULT_PART_SIZE = 8 * MiB
MAX_THREADS = 1024
DEFAULT_MAX_THREADS = 16
MAX_CACHE_SIZE_MIB = 2**40
# --max-staged-file-size: at most S3's largest object (5 TiB). The default, 1 GiB, bounds what one staged
# file takes of the cache volume (a Mountpoint Pod's emptyDir) and what one close() re-uploads whole: about
# ten seconds at 100 MB/s. Files larger than that are better written once, sequentially, on the fast path.
MAX_STAGED_FILE_SIZE_MIB = 5 * 1024 * 1024
DEFAULT_MAX_STAGED_FILE_SIZE_MIB = 1024
DEFAULT_DIR_MODE = 0o755
DEFAULT_FILE_MODE = 0o644
MAX_MODE = 0o777  # permission bits only: no setuid, setgid or sticky bit
# "minimal" is mount-s3's default: metadata is re-validated after one second.
MINIMAL_TTL_S = 1.0
# "indefinite": the kernel takes entry/attr timeouts as seconds; a century is forever for a mount.
MAX_TTL_S = 100 * 365 * 24 * 3600
INDEFINITE_TTL_S = float(MAX_TTL_S)
# With --cache, mount-s3 keeps metadata for a minute unless --metadata-ttl says otherwise.
CACHED_METADATA_TTL_S = 60.0
TTL_WORDS: Mapping[str, float] = {"minimal": MINIMAL_TTL_S, "indefinite": INDEFINITE_TTL_S}

SSE_TYPES = ("aws:kms", "aws:kms:dsse", "AES256")
KMS_SSE_TYPES = ("aws:kms", "aws:kms:dsse")  # the ones --sse-kms-key-id applies to
REGION_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
STORAGE_CLASS_PATTERN = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
MAX_PREFIX_LENGTH = 1024  # an S3 key is at most 1024 bytes
BUCKET_TYPES = ("general-purpose", "directory")
UPLOAD_CHECKSUMS = ("crc32c", "off")
# crc32c, as mount-s3: the C implementation (the crc32c package) costs about 10 ms of CPU per 100 MiB
# written; "off" is for S3-compatible stores that refuse the headers (docs/mount-options.md#upload-checksums).
DEFAULT_UPLOAD_CHECKSUMS = "crc32c"
ACCOUNT_ID_PATTERN = re.compile(r"[0-9]{12}")
PROFILE_PATTERN = re.compile(r"[A-Za-z0-9._+=,@-]{1,128}")
# --maximum-throughput-gbps: what one S3 request sustains (S3's guidance is 85-90 MB/s per connection), so
# the target divided by it is the number of requests kept in flight when --max-threads is not given.
GBPS_PER_REQUEST = 0.7
MAX_THROUGHPUT_GBPS = 1000
METRICS_LOG_INTERVAL_S = 60.0
# A directory bucket (S3 Express One Zone): BASE--ZONEID--x-s3, BASE as a general-purpose bucket's name (no
# dots), ZONEID an Availability Zone id such as usw2-az1 (or a Local Zone's, usw2-lax1-az1). The suffix is
# reserved for them, so the name alone tells; --incremental-upload takes these buckets only.
DIRECTORY_BUCKET_PATTERN = re.compile(
    r"(?P<base>[a-z0-9][a-z0-9-]*[a-z0-9])--(?P<zone>[a-z0-9]+(?:-[a-z0-9]+)+)--x-s3"
)


def is_directory_bucket(bucket: str) -> bool:
    """Whether ``bucket`` is a directory bucket's name."""
    return DIRECTORY_BUCKET_PATTERN.fullmatch(bucket) is not None


class ValueKind(Enum):
    """What a flag's value must be. The text is the volume policy's "must be …", so it describes the stricter
    spelling a PV must use (:data:`PV_SYNTAX`); the ranges are everyone's."""

    FLAG = "no value"
    ID = f"a decimal id in 0..{MAX_ID}"
    MODE = "an octal mode of 3-4 digits, at most 0777"
    TTL = f"a whole number of seconds up to {MAX_TTL_S}, 'indefinite' or 'minimal'"
    PART_SIZE = f"a size in bytes from {MIN_WRITE_PART_SIZE} (5 MiB) to {MAX_PART_SIZE} (5 GiB)"
    READ_PART_SIZE = f"a size in bytes from {MIN_READ_PART_SIZE} (64 KiB) to {MAX_PART_SIZE} (5 GiB)"
    THREADS = f"a whole number from 1 to {MAX_THREADS}"
    CACHE_SIZE = f"a size in MiB from 1 to {MAX_CACHE_SIZE_MIB}"
    STAGED_FILE_SIZE = f"a size in MiB from 1 to {MAX_STAGED_FILE_SIZE_MIB} (5 TiB)"
    REGION = "a region name of lowercase letters, digits and '-', such as eu-west-1"
    PREFIX = "an S3 key prefix (letters, digits and ._~=+@:/-, no '.' or '..' segments)"
    STORAGE_CLASS = "an S3 storage class such as STANDARD"
    SSE = f"one of {', '.join(SSE_TYPES)}"
    KMS_KEY_ID = "a KMS key id, alias or ARN"
    USER_AGENT_PREFIX = "letters, digits and ._~/=+@:- (at most 256 characters)"
    URL = "an http:// or https:// URL without a user name or password"
    DIRECTORY = "a directory"
    BUCKET_TYPE = f"one of {', '.join(BUCKET_TYPES)}"
    ACCOUNT_ID = "a 12-digit AWS account id"
    UPLOAD_CHECKSUMS = f"one of {', '.join(UPLOAD_CHECKSUMS)}"
    THROUGHPUT = f"a whole number of Gbit/s from 1 to {MAX_THROUGHPUT_GBPS}"
    PROFILE = "an AWS profile name (letters, digits and ._+=,@-)"
    DIRECTORY_BUCKET = "a directory bucket name (NAME--ZONE-ID--x-s3)"
    METRICS_ADDRESS = "HOST:PORT, :PORT or unix:/absolute/path"


RANGES: Mapping[ValueKind, tuple[int, int]] = {
    # Inclusive bounds of the numeric kinds (MODE's are the value of the octal text; TTL's in whole seconds).
    ValueKind.ID: (0, MAX_ID),
    ValueKind.MODE: (0, MAX_MODE),
    ValueKind.TTL: (0, MAX_TTL_S),
    ValueKind.PART_SIZE: (MIN_WRITE_PART_SIZE, MAX_PART_SIZE),
    ValueKind.READ_PART_SIZE: (MIN_READ_PART_SIZE, MAX_PART_SIZE),
    ValueKind.THREADS: (1, MAX_THREADS),
    ValueKind.CACHE_SIZE: (1, MAX_CACHE_SIZE_MIB),
    ValueKind.STAGED_FILE_SIZE: (1, MAX_STAGED_FILE_SIZE_MIB),
    ValueKind.THROUGHPUT: (1, MAX_THROUGHPUT_GBPS),
}

PATTERNS: Mapping[ValueKind, re.Pattern[str]] = {
    # Values every consumer checks the same way.
    ValueKind.REGION: REGION_PATTERN,
    ValueKind.STORAGE_CLASS: STORAGE_CLASS_PATTERN,
    ValueKind.ACCOUNT_ID: ACCOUNT_ID_PATTERN,
    ValueKind.PROFILE: PROFILE_PATTERN,
    ValueKind.DIRECTORY_BUCKET: DIRECTORY_BUCKET_PATTERN,
}

_DECIMAL = re.compile(r"[0-9]{1,19}")  # ASCII digits only: no sign, no spaces, no "1_000"
PV_SYNTAX: Mapping[ValueKind, re.Pattern[str]] = {
    # What a value written in a PV or StorageClass may look like, on top of its range: everything there is
    # untrusted, so the characters are listed, which keeps shell and option-injection characters (`;`, `$`,
    # spaces, commas, newlines) out of argv and the mount table. `s3csi mount` run by hand takes any spelling
    # Python's int() reads and any printable --user-agent-prefix.
    ValueKind.ID: _DECIMAL,
    ValueKind.MODE: re.compile(r"[0-7]{3,4}"),
    ValueKind.TTL: _DECIMAL,
    ValueKind.PART_SIZE: _DECIMAL,
    ValueKind.READ_PART_SIZE: _DECIMAL,
    ValueKind.THREADS: _DECIMAL,
    ValueKind.STAGED_FILE_SIZE: _DECIMAL,
    ValueKind.THROUGHPUT: _DECIMAL,
    ValueKind.PREFIX: re.compile(r"[A-Za-z0-9._~=+@:/-]+"),
    ValueKind.KMS_KEY_ID: re.compile(r"[A-Za-z0-9:/_.-]{1,2048}"),
    ValueKind.USER_AGENT_PREFIX: re.compile(r"[A-Za-z0-9._~/=+@:-]{1,256}"),
}


class PvStance(Enum):
    """What the volume policy does with the flag in a PV's or StorageClass's ``mountOptions``."""

    ALLOWED = "allowed"
    DENIED = "denied"  # refused with the spec's reason
    DROPPED = "dropped"  # accepted and left out: it never grants anything


@dataclass(frozen=True)
class FlagSpec:
    """One flag of ``s3csi mount``."""

    name: str
    """The long name without its dashes: ``allow-other``."""
    kind: ValueKind
    help: str
    pv: PvStance = PvStance.ALLOWED
    why: str = ""
    """Why a PV may not set it (DENIED, DROPPED): the operator reads this in the refusal."""
    default: int | float | str | None = None
    """The value when the flag is absent, or None when it is absent from the settings or computed."""
    default_help: str | None = None
    """The default as ``--help`` shows it, when there is one."""
    default_from: str | None = None
    """The flag whose value this one takes when absent (``read-part-size`` takes ``part-size``'s)."""
    metavar: str | None = None
    short: str | None = None
    """The one-letter alias without its dash: ``f`` for ``--foreground``."""

    @property
    def option(self) -> str:
        return f"--{self.name}"

    @property
    def dest(self) -> str:
        """The attribute argparse stores the value under."""
        return self.name.replace("-", "_")

    @property
    def range(self) -> tuple[int, int] | None:
        return RANGES.get(self.kind)


def _switch(
    name: str, help: str, *, pv: PvStance = PvStance.ALLOWED, why: str = "", short: str | None = None
) -> FlagSpec:
    """A flag without a value: on when given."""
    return FlagSpec(name, ValueKind.FLAG, help, pv=pv, why=why, short=short)


_NOT_FROM_A_VOLUME = "the node plugin mounts and unmounts the Mountpoint Pod's file system itself"

FLAGS: tuple[FlagSpec, ...] = (
    FlagSpec(
        "prefix",
        ValueKind.PREFIX,
        "key prefix to mount, ending in '/'",
        default="",
        default_help="the whole bucket",
    ),
    FlagSpec(
        "region",
        ValueKind.REGION,
        "AWS region of the bucket",
        default_help="AWS_REGION, else auto-detect (the instance's region, then the bucket's from S3)",
    ),
    FlagSpec(
        "endpoint-url",
        ValueKind.URL,
        "S3 endpoint URL",
        pv=PvStance.DENIED,
        why="the S3 endpoint is driver configuration (--s3-endpoint-url); "
        "a volume cannot choose where the driver sends its credentials",
        default_help="AWS_ENDPOINT_URL, else AWS",
    ),
    _switch("force-path-style", "address buckets as ENDPOINT/BUCKET/KEY"),
    _switch("read-only", "mount read-only: every change fails with EROFS"),
    _switch("allow-delete", "allow unlink (deletes the object)"),
    _switch("allow-overwrite", "allow replacing existing files (open with O_TRUNC)"),
    _switch("allow-rename", "allow renaming files (copy + delete: NOT atomic)"),
    _switch("allow-other", "allow other users, including root, to access the mount"),
    _switch("allow-root", "allow root to access the mount"),
    FlagSpec("uid", ValueKind.ID, "owner of every file and directory", default_help="the caller's uid"),
    FlagSpec("gid", ValueKind.ID, "group of every file and directory", default_help="the caller's gid"),
    FlagSpec(
        "dir-mode",
        ValueKind.MODE,
        "permission bits of directories, octal",
        default=DEFAULT_DIR_MODE,
        default_help=f"{DEFAULT_DIR_MODE:04o}",
    ),
    FlagSpec(
        "file-mode",
        ValueKind.MODE,
        "permission bits of files, octal",
        default=DEFAULT_FILE_MODE,
        default_help=f"{DEFAULT_FILE_MODE:04o}",
    ),
    _switch(
        "foreground",
        "stay in the foreground",
        pv=PvStance.DROPPED,
        why="the Mountpoint Pod always runs the file system in the foreground",
        short="f",
    ),
    _switch(
        "auto-unmount",
        "unmount when the process exits, even if killed",
        pv=PvStance.DENIED,
        why=_NOT_FROM_A_VOLUME,
    ),
    FlagSpec(
        "metadata-ttl",
        ValueKind.TTL,
        "seconds to cache metadata, or 'minimal' (1 s) or 'indefinite'",
        default=MINIMAL_TTL_S,
        default_help=f"minimal; {CACHED_METADATA_TTL_S:.0f} s with --cache",
    ),
    FlagSpec(
        "negative-metadata-ttl",
        ValueKind.TTL,
        "seconds to cache 'no such file'",
        default_help="--metadata-ttl",
        default_from="metadata-ttl",
    ),
    FlagSpec(
        "cache",
        ValueKind.DIRECTORY,
        "keep read parts in a cache in DIR",
        pv=PvStance.DENIED,
        why="a cache directory is a path on the node; a volume asks for a cache volume (attribute cache)",
        metavar="DIR",
    ),
    FlagSpec(
        "max-cache-size",
        ValueKind.CACHE_SIZE,
        "bound of the --cache",
        pv=PvStance.DENIED,
        why="the size of the volume's cache volume bounds the cache",
        default_help="leave 5% of the disk free",
        metavar="MiB",
    ),
    _switch(
        "staged-writes",
        "allow appends, writes at any offset, truncate and read-write opens, through a local copy in the"
        " --cache directory uploaded on close/fsync (needs --cache)",
    ),
    FlagSpec(
        "max-staged-file-size",
        ValueKind.STAGED_FILE_SIZE,
        "largest file --staged-writes copies; larger ones fail with EFBIG",
        default=DEFAULT_MAX_STAGED_FILE_SIZE_MIB,
        default_help=f"{DEFAULT_MAX_STAGED_FILE_SIZE_MIB} MiB",
        metavar="MiB",
    ),
    FlagSpec(
        "part-size",
        ValueKind.PART_SIZE,
        "part size of ranged GETs and multipart uploads",
        default=DEFAULT_PART_SIZE,
        default_help=f"{DEFAULT_PART_SIZE // MiB} MiB",
        metavar="BYTES",
    ),
    FlagSpec(
        "read-part-size",
        ValueKind.READ_PART_SIZE,
        "part size of ranged GETs",
        default_help="--part-size",
        default_from="part-size",
        metavar="BYTES",
    ),
    FlagSpec(
        "write-part-size",
        ValueKind.PART_SIZE,
        "part size of multipart uploads",
        default_help="--part-size",
        default_from="part-size",
        metavar="BYTES",
    ),
    FlagSpec(
        "max-threads",
        ValueKind.THREADS,
        "most S3 requests in flight at once",
        default=DEFAULT_MAX_THREADS,
        default_help=str(DEFAULT_MAX_THREADS),
        metavar="N",
    ),
    FlagSpec("storage-class", ValueKind.STORAGE_CLASS, "storage class of new objects, e.g. STANDARD_IA"),
    FlagSpec("sse", ValueKind.SSE, f"server-side encryption of new objects: {', '.join(SSE_TYPES)}"),
    FlagSpec("sse-kms-key-id", ValueKind.KMS_KEY_ID, "KMS key for --sse aws:kms / aws:kms:dsse"),
    _switch("no-sign-request", "send anonymous requests (public buckets)"),
    FlagSpec(
        "user-agent-prefix",
        ValueKind.USER_AGENT_PREFIX,
        "put this in front of the User-Agent of every request",
    ),
    _switch("debug", "log at DEBUG", short="d"),
    FlagSpec(
        "bucket-type",
        ValueKind.BUCKET_TYPE,
        f"type of the bucket: {', '.join(BUCKET_TYPES)}",
        default_help="from the bucket name (NAME--ZONE-ID--x-s3 is a directory bucket)",
    ),
    _switch(
        "requester-pays", "send x-amz-request-payer: requester: the requester pays for requests and transfer"
    ),
    FlagSpec(
        "expected-bucket-owner",
        ValueKind.ACCOUNT_ID,
        "account id that must own the bucket: S3 refuses every request (403) otherwise",
        metavar="ACCOUNT",
    ),
    _switch("transfer-acceleration", "use the bucket's S3 Transfer Acceleration endpoint"),
    _switch("dual-stack", "use S3's dual-stack (IPv4 and IPv6) endpoint"),
    FlagSpec(
        "upload-checksums",
        ValueKind.UPLOAD_CHECKSUMS,
        "checksum sent with every uploaded part or object, checked by S3: crc32c or off",
        default=DEFAULT_UPLOAD_CHECKSUMS,
        default_help=f"{DEFAULT_UPLOAD_CHECKSUMS} (off for a store that refuses it: docs/mount-options.md)",
    ),
    FlagSpec(
        "maximum-throughput-gbps",
        ValueKind.THROUGHPUT,
        f"target throughput: keeps Gbps/{GBPS_PER_REQUEST} S3 requests in flight unless --max-threads says",
        metavar="N",
    ),
    FlagSpec(
        "profile",
        ValueKind.PROFILE,
        "AWS shared config/credentials profile whose keys sign the requests",
        pv=PvStance.DENIED,
        why="credentials come from the volume's authenticationSource, not from an AWS config profile",
        default_help="AWS_PROFILE, else default",
        metavar="NAME",
    ),
    FlagSpec(
        "log-directory",
        ValueKind.DIRECTORY,
        "write the log to a new file in DIR instead of stderr or syslog",
        pv=PvStance.DENIED,
        why="log files are managed by the driver; a volume cannot choose a host path",
        metavar="DIR",
        short="l",
    ),
    _switch("log-metrics", f"log a summary of the S3 requests every {METRICS_LOG_INTERVAL_S:.0f} s"),
    _switch(
        "no-log",
        "log nothing (errors before the mount is up still reach stderr)",
        pv=PvStance.DENIED,
        why="the Mountpoint Pod's log is the operator's record of the volume's failures",
    ),
    _switch(
        "incremental-upload",
        "append to existing files opened with O_APPEND, in place (directory buckets only)",
    ),
    FlagSpec(
        "cache-xz",
        ValueKind.DIRECTORY_BUCKET,
        "keep read parts in BUCKET, a directory bucket shared by every mount that names it, read before S3",
        metavar="BUCKET",
    ),
    FlagSpec(
        "metrics-address",
        ValueKind.METRICS_ADDRESS,
        "serve Prometheus metrics of this mount at ADDR (HOST:PORT, :PORT or unix:/path), path /metrics",
        pv=PvStance.DENIED,
        why="the driver chooses where a Mountpoint Pod's metrics are served (its metrics port, or "
        "metrics.sock in its communication directory)",
        default_help="off",
        metavar="ADDR",
    ),
)

BY_NAME: Mapping[str, FlagSpec] = {spec.name: spec for spec in FLAGS}

MOUNT_S3_ONLY: Mapping[str, str] = {
    # mount-s3 flags (and its fstab form) that `s3csi mount` does not have, each with why a PV may not use it
    # either: the volume policy refuses them with this reason rather than as unknown.
    "ca-bundle": "the trusted certificate authorities are driver configuration",
    "o": "fstab-style '-o a,b' strings are not parsed; give each option as its own mountOptions entry",
}

COMMAND_WORDS: Mapping[str, str | None] = {
    # Words of any command line that never change a mount: a PV may hold them, the policy drops them.
    # name → its one-letter alias.
    "help": "h",
    "version": "V",
}
