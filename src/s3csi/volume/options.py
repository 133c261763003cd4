"""mount-s3 flags as an immutable value type: parsing, normalising, the deny-list, sorted rendering.

Mount options reach the driver as a PV's or StorageClass's ``mountOptions`` (CSI ``mount_flags``), written by
people in several spellings. :meth:`MountOptions.parse` accepts them all and keeps one canonical form:

- ``uid=1001``, ``--uid=1001``, ``--uid 1001``, ``uid 1001`` → ``--uid=1001``; ``allow-other`` and
  ``--allow-other`` → ``--allow-other``.
- An entry is split on its first ``=`` unless whitespace comes first, so ``prefix=env=prod/`` keeps the value
  ``env=prod/`` and ``region us-east-1`` (the Mountpoint CSI driver's spelling) is ``--region=us-east-1``.
- One entry is one option. kubelet hands each ``mountOptions`` item over unchanged and mount-s3 takes argv
  words, not fstab strings, so an entry holding a comma (``uid=1,gid=2``) is refused rather than guessed at.
- Values are stored canonically (``uid=0001`` → ``1``, ``dir-mode=0770`` → ``770``), so equal intents compare
  and hash equal; that matters for the sharing key.

Every ``MountOptions`` holds only allowed keys with valid values: :meth:`set` validates like :meth:`parse`.
Everything a PV author writes is untrusted: values are checked against a per-kind character set, which also
keeps shell and option-injection characters (``;``, ``$``, spaces, …) out of argv and the mount table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from s3csi.errors import InvalidArgument

MAX_ID = 2**31 - 1
"""The largest uid/gid accepted: Kubernetes' own limit for runAsUser/fsGroup (int32, non-negative)."""

# The ranges ``s3csi mount`` accepts (fs/settings.py; tests/unit/test_volume_policy.py checks they agree),
# so a bad value fails NodePublishVolume with INVALID_ARGUMENT, not later inside the Mountpoint Pod.
MIN_PART_SIZE = 5 * 2**20  # S3's smallest multipart-upload part
MIN_READ_PART_SIZE = 64 * 2**10
MAX_PART_SIZE = 5 * 2**30  # S3's largest part
MAX_THREADS = 1024
MAX_TTL_S = 100 * 365 * 24 * 3600  # what "indefinite" means to s3csi mount


class ValueKind(Enum):
    """What an option's value must look like."""

    FLAG = "no value"
    ID = f"a decimal id in 0..{MAX_ID}"
    MODE = "an octal mode of 3-4 digits, at most 0777"
    TTL = f"a whole number of seconds up to {MAX_TTL_S}, 'indefinite' or 'minimal'"
    PART_SIZE = f"a size in bytes from {MIN_PART_SIZE} (5 MiB) to {MAX_PART_SIZE} (5 GiB)"
    READ_PART_SIZE = f"a size in bytes from {MIN_READ_PART_SIZE} (64 KiB) to {MAX_PART_SIZE} (5 GiB)"
    THREADS = f"a whole number from 1 to {MAX_THREADS}"
    REGION = "a region name of lowercase letters, digits and '-', such as eu-west-1"
    PREFIX = "an S3 key prefix (letters, digits and ._~=+@:/-, no '.' or '..' segments)"
    STORAGE_CLASS = "an S3 storage class such as STANDARD"
    SSE = "one of aws:kms, aws:kms:dsse, AES256"
    KMS_KEY_ID = "a KMS key id, alias or ARN"
    USER_AGENT_PREFIX = "letters, digits and ._~/=+@:- (at most 256 characters)"


ALLOWED_OPTIONS: Mapping[str, ValueKind] = {
    # The one table of what a PV or StorageClass may ask for: the flags of ``s3csi mount`` (mount-s3's, plus
    # our ``allow-rename``) minus DENIED_OPTIONS. Keys are option names without the leading "--".
    "prefix": ValueKind.PREFIX,
    "region": ValueKind.REGION,
    "read-only": ValueKind.FLAG,
    "allow-delete": ValueKind.FLAG,
    "allow-overwrite": ValueKind.FLAG,
    "allow-rename": ValueKind.FLAG,
    "allow-other": ValueKind.FLAG,
    "allow-root": ValueKind.FLAG,
    "uid": ValueKind.ID,
    "gid": ValueKind.ID,
    "dir-mode": ValueKind.MODE,
    "file-mode": ValueKind.MODE,
    "metadata-ttl": ValueKind.TTL,
    "negative-metadata-ttl": ValueKind.TTL,
    "part-size": ValueKind.PART_SIZE,
    "read-part-size": ValueKind.READ_PART_SIZE,
    "write-part-size": ValueKind.PART_SIZE,
    "max-threads": ValueKind.THREADS,
    "storage-class": ValueKind.STORAGE_CLASS,
    "sse": ValueKind.SSE,
    "sse-kms-key-id": ValueKind.KMS_KEY_ID,
    "no-sign-request": ValueKind.FLAG,
    "user-agent-prefix": ValueKind.USER_AGENT_PREFIX,
    "debug": ValueKind.FLAG,
    "force-path-style": ValueKind.FLAG,
}

DENIED_OPTIONS: Mapping[str, str] = {
    # Options that would let a PV author escape the driver's control. The reason is part of the error.
    "endpoint-url": "the S3 endpoint is driver configuration (--s3-endpoint-url); "
    "a volume cannot choose where the driver sends its credentials",
    "profile": "credentials come from the volume's authenticationSource, not from an AWS config profile",
    "cache": "a cache directory is a path on the node; a volume cannot choose one",
    "max-cache-size": "it only bounds --cache, which a volume cannot set",
    "auto-unmount": "the node plugin mounts and unmounts the Mountpoint Pod's file system itself",
    "log-directory": "log files are managed by the driver; a volume cannot choose a host path",
    "ca-bundle": "the trusted certificate authorities are driver configuration",
    "o": "fstab-style '-o a,b' strings are not parsed; give each option as its own mountOptions entry",
}

DROPPED_OPTIONS: frozenset[str] = frozenset({"foreground", "help", "version"})
"""Accepted and dropped without effect: they would stop the file system from serving, never grant anything."""

_SHORT_OPTIONS: Mapping[str, str] = {"f": "foreground", "h": "help", "V": "version", "d": "debug", "o": "o"}

_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_DECIMAL = re.compile(r"[0-9]{1,19}")
_OCTAL_MODE = re.compile(r"[0-7]{3,4}")
REGION_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_PREFIX_CHARS = re.compile(r"[A-Za-z0-9._~=+@:/-]+")
_STORAGE_CLASS = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_KMS_KEY_ID = re.compile(r"[A-Za-z0-9:/_.-]{1,2048}")
_USER_AGENT_PREFIX = re.compile(r"[A-Za-z0-9._~/=+@:-]{1,256}")
_SSE_VALUES = frozenset({"aws:kms", "aws:kms:dsse", "AES256"})
_MAX_PREFIX_LENGTH = 1024  # an S3 key is at most 1024 bytes; the prefix is ASCII by its character set


def _describe(text: str) -> str:
    """Quote user input for an error message: escaped, and short enough for one log line."""
    return repr(text if len(text) <= 80 else text[:77] + "...")


def parse_id(value: str) -> int:
    """A uid or gid: decimal digits only (no sign, no spaces), at most :data:`MAX_ID`."""
    if not _DECIMAL.fullmatch(value) or int(value) > MAX_ID:
        raise ValueError(ValueKind.ID.value)
    return int(value)


def normalise_prefix(value: str) -> str:
    """An S3 key prefix as mount-s3 wants it: no leading "/", ending in "/" when non-empty.

    Empty, "." and ".." segments are refused rather than resolved: ``a//b`` and ``a/../b`` name other keys in
    S3 than their resolved forms, and a volume must never reach outside the prefix it was given.
    """
    prefix = value.lstrip("/")
    if not prefix:
        return ""
    if len(prefix) > _MAX_PREFIX_LENGTH or not _PREFIX_CHARS.fullmatch(prefix):
        raise ValueError(ValueKind.PREFIX.value)
    if not prefix.endswith("/"):
        prefix += "/"
    if any(segment in ("", ".", "..") for segment in prefix[:-1].split("/")):
        raise ValueError(ValueKind.PREFIX.value)
    return prefix


def _canonical_int(low: int, high: int) -> Callable[[str], str]:
    def canonical(value: str) -> str:
        if not _DECIMAL.fullmatch(value) or not low <= int(value) <= high:
            raise ValueError
        return str(int(value))

    return canonical


def _canonical_mode(value: str) -> str:
    if not _OCTAL_MODE.fullmatch(value) or int(value, 8) > 0o777:
        raise ValueError
    return f"{int(value, 8):03o}"


def _canonical_ttl(value: str) -> str:
    if value in ("indefinite", "minimal"):
        return value
    return _canonical_int(0, MAX_TTL_S)(value)


def _matching(pattern: re.Pattern[str]) -> Callable[[str], str]:
    def canonical(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError
        return value

    return canonical


def _one_of(values: frozenset[str]) -> Callable[[str], str]:
    def canonical(value: str) -> str:
        if value not in values:
            raise ValueError
        return value

    return canonical


def _canonical_prefix(value: str) -> str:
    prefix = normalise_prefix(value)
    if not prefix:
        raise ValueError
    return prefix


_CANONICAL: Mapping[ValueKind, Callable[[str], str]] = {
    ValueKind.ID: lambda value: str(parse_id(value)),
    ValueKind.MODE: _canonical_mode,
    ValueKind.TTL: _canonical_ttl,
    ValueKind.PART_SIZE: _canonical_int(MIN_PART_SIZE, MAX_PART_SIZE),
    ValueKind.READ_PART_SIZE: _canonical_int(MIN_READ_PART_SIZE, MAX_PART_SIZE),
    ValueKind.THREADS: _canonical_int(1, MAX_THREADS),
    ValueKind.REGION: _matching(REGION_PATTERN),
    ValueKind.PREFIX: _canonical_prefix,
    ValueKind.STORAGE_CLASS: _matching(_STORAGE_CLASS),
    ValueKind.SSE: _one_of(_SSE_VALUES),
    ValueKind.KMS_KEY_ID: _matching(_KMS_KEY_ID),
    ValueKind.USER_AGENT_PREFIX: _matching(_USER_AGENT_PREFIX),
}


def _split(entry: str) -> tuple[str, str | None]:
    """``key=value`` on the first "=", unless whitespace comes first (``--key value``)."""
    equals = entry.find("=")
    space = next((i for i, char in enumerate(entry) if char.isspace()), -1)
    if equals != -1 and (space == -1 or equals < space):
        return entry[:equals], entry[equals + 1 :]
    if space != -1:
        return entry[:space], entry[space:].strip()
    return entry, None


def _name_of(key: str, shown: str) -> str:
    """The option name without dashes, or InvalidArgument naming the entry ``shown``."""
    if key.startswith("--"):
        name = key[2:]
    elif key.startswith("-"):
        short = key[1:]
        if short not in _SHORT_OPTIONS:
            raise InvalidArgument(f"mount option {shown}: unknown short option {_describe(key)}")
        name = _SHORT_OPTIONS[short]
    else:
        name = key
    if not name:
        raise InvalidArgument(f"mount option {shown}: the option name is empty")
    if name in DENIED_OPTIONS:
        # Named without its value: a denied value (an endpoint URL, a path) may carry userinfo or secrets.
        option = "-o" if name == "o" else f"--{name}"
        raise InvalidArgument(f"mount option {option} is not allowed: {DENIED_OPTIONS[name]}")
    if name in DROPPED_OPTIONS:
        return name
    if name not in ALLOWED_OPTIONS:
        hyphenated = name.replace("_", "-")
        hint = f" (did you mean --{hyphenated}?)" if hyphenated in ALLOWED_OPTIONS else ""
        if not _NAME.fullmatch(name):
            raise InvalidArgument(f"mount option {shown}: malformed option name{hint}")
        raise InvalidArgument(f"mount option {shown}: unknown option --{name}{hint}")
    return name


def _canonical_value(name: str, value: str | None, shown: str) -> str | None:
    kind = ALLOWED_OPTIONS[name]
    if kind is ValueKind.FLAG:
        if value is not None:
            raise InvalidArgument(f"mount option {shown}: --{name} takes no value")
        return None
    if value is None:
        raise InvalidArgument(f"mount option {shown}: --{name} needs a value, {kind.value}")
    try:
        return _CANONICAL[kind](value)
    except ValueError:
        raise InvalidArgument(f"mount option {shown}: --{name} must be {kind.value}") from None


def _bare(key: str) -> str:
    """The option name the accessors look up: ``uid`` for both ``uid`` and ``--uid``."""
    return key[2:] if key.startswith("--") else key


@dataclass(frozen=True)
class MountOptions:
    """A set of valid mount-s3 options, at most one value per key; every method returns a new value.

    Build it with :meth:`parse` (untrusted input) or from :meth:`empty` with :meth:`set`.
    """

    _items: tuple[tuple[str, str | None], ...] = ()

    @classmethod
    def empty(cls) -> MountOptions:
        return cls()

    @classmethod
    def parse(cls, mount_flags: Sequence[str]) -> MountOptions:
        """Parse CSI ``mount_flags`` in any accepted spelling.

        Raises :class:`InvalidArgument` naming the entry for: empty entries or names, commas, denied, unknown
        or malformed options, a value on a flag or none on an option that needs one, malformed values, and one
        option given twice with different values (repeating the same value is harmless and kept once).
        ``--foreground``/``-f``, ``--help``/``-h`` and ``--version``/``-V`` are dropped.
        """
        items: dict[str, str | None] = {}
        for entry in mount_flags:
            shown = _describe(entry)
            text = entry.strip()
            if not text:
                raise InvalidArgument(f"mount option {shown}: empty mount option")
            if "," in text:
                raise InvalidArgument(
                    f"mount option {shown}: one entry holds several comma-separated options; "
                    "give each option as its own mountOptions entry"
                )
            key, value = _split(text)
            name = _name_of(key, shown)
            if name in DROPPED_OPTIONS:
                if value is not None:
                    raise InvalidArgument(f"mount option {shown}: --{name} takes no value")
                continue
            canonical = _canonical_value(name, value, shown)
            if name in items and items[name] != canonical:
                raise InvalidArgument(f"mount option {shown}: --{name} is given twice with different values")
            items[name] = canonical
        return cls(tuple(sorted(items.items())))

    def has(self, key: str) -> bool:
        name = _bare(key)
        return any(item_name == name for item_name, _ in self._items)

    def get(self, key: str) -> str | None:
        """The canonical value of ``key``; None when absent or when ``key`` is a flag."""
        name = _bare(key)
        return next((value for item_name, value in self._items if item_name == name), None)

    def set(self, key: str, value: str | None = None) -> MountOptions:
        """Set or replace ``key``; validated like :meth:`parse` (InvalidArgument on a bad key or value)."""
        shown = _describe(key if value is None else f"{key}={value}")
        name = _name_of(key if key.startswith("-") else f"--{key}", shown)
        if name in DROPPED_OPTIONS:
            raise InvalidArgument(f"mount option {shown}: --{name} cannot be set")
        canonical = _canonical_value(name, value, shown)
        kept = tuple(item for item in self._items if item[0] != name)
        return MountOptions(tuple(sorted((*kept, (name, canonical)))))

    def set_if_absent(self, key: str, value: str | None = None) -> MountOptions:
        return self if self.has(key) else self.set(key, value)

    def remove(self, key: str) -> MountOptions:
        name = _bare(key)
        return MountOptions(tuple(item for item in self._items if item[0] != name))

    def to_args(self) -> tuple[str, ...]:
        """The mount-s3 argument list: ``--key`` / ``--key=value``, sorted."""
        return tuple(sorted(f"--{name}" if value is None else f"--{name}={value}" for name, value in self))

    def __iter__(self) -> Iterator[tuple[str, str | None]]:
        """(name without dashes, canonical value or None) pairs, sorted by name."""
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
