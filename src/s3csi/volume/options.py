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
Which options are allowed, denied (and why) or dropped, and each value's range, come from the flag specs in
:mod:`s3csi.mountflags`, so a value accepted here is one ``s3csi mount`` accepts. Everything a PV author
writes is untrusted: values are also checked against a per-kind character set (``PV_SYNTAX``), which keeps
shell and option-injection characters (``;``, ``$``, spaces, …) out of argv and the mount table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from s3csi.errors import InvalidArgument
from s3csi.mountflags import (
    BUCKET_TYPES,
    COMMAND_WORDS,
    FLAGS,
    MAX_ID,
    MAX_PREFIX_LENGTH,
    MOUNT_S3_ONLY,
    PATTERNS,
    PV_SYNTAX,
    RANGES,
    SSE_TYPES,
    TTL_WORDS,
    UPLOAD_CHECKSUMS,
    PvStance,
    ValueKind,
)

ALLOWED_OPTIONS: Mapping[str, ValueKind] = {
    spec.name: spec.kind for spec in FLAGS if spec.pv is PvStance.ALLOWED
}
"""What a PV or StorageClass may ask for: the flags of ``s3csi mount`` a flag spec allows in a volume. Keys
are option names without the leading "--"."""

DENIED_OPTIONS: Mapping[str, str] = {
    **{spec.name: spec.why for spec in FLAGS if spec.pv is PvStance.DENIED},
    **MOUNT_S3_ONLY,
}
"""Options that would let a PV author escape the driver's control, each with its reason (part of the
error)."""

DROPPED_OPTIONS: frozenset[str] = frozenset(
    {spec.name for spec in FLAGS if spec.pv is PvStance.DROPPED} | set(COMMAND_WORDS)
)
"""Accepted and dropped without effect: they would stop the file system from serving, never grant anything."""

_SHORT_OPTIONS: Mapping[str, str] = {
    **{spec.short: spec.name for spec in FLAGS if spec.short},
    **{short: name for name, short in COMMAND_WORDS.items() if short},
    "o": "o",  # mount(8)'s "-o a,b", refused by name
}

_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _describe(text: str) -> str:
    """Quote user input for an error message: escaped, and short enough for one log line."""
    return repr(text if len(text) <= 80 else text[:77] + "...")


def parse_id(value: str) -> int:
    """A uid or gid: decimal digits only (no sign, no spaces), at most :data:`~s3csi.mountflags.MAX_ID`."""
    if not PV_SYNTAX[ValueKind.ID].fullmatch(value) or int(value) > MAX_ID:
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
    if len(prefix) > MAX_PREFIX_LENGTH or not PV_SYNTAX[ValueKind.PREFIX].fullmatch(prefix):
        raise ValueError(ValueKind.PREFIX.value)
    if not prefix.endswith("/"):
        prefix += "/"
    if any(segment in ("", ".", "..") for segment in prefix[:-1].split("/")):
        raise ValueError(ValueKind.PREFIX.value)
    return prefix


def _canonical_int(kind: ValueKind) -> Callable[[str], str]:
    """Decimal digits within the kind's range, without leading zeros."""
    low, high = RANGES[kind]

    def canonical(value: str) -> str:
        if not PV_SYNTAX[kind].fullmatch(value) or not low <= int(value) <= high:
            raise ValueError
        return str(int(value))

    return canonical


def _canonical_mode(value: str) -> str:
    low, high = RANGES[ValueKind.MODE]
    if not PV_SYNTAX[ValueKind.MODE].fullmatch(value) or not low <= int(value, 8) <= high:
        raise ValueError
    return f"{int(value, 8):03o}"


def _canonical_ttl(value: str) -> str:
    if value in TTL_WORDS:
        return value
    return _canonical_int(ValueKind.TTL)(value)


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
    # One canonical form per kind a volume may use (ALLOWED_OPTIONS); test_mountflags.py checks the cover.
    ValueKind.ID: lambda value: str(parse_id(value)),
    ValueKind.MODE: _canonical_mode,
    ValueKind.TTL: _canonical_ttl,
    ValueKind.PART_SIZE: _canonical_int(ValueKind.PART_SIZE),
    ValueKind.READ_PART_SIZE: _canonical_int(ValueKind.READ_PART_SIZE),
    ValueKind.THREADS: _canonical_int(ValueKind.THREADS),
    ValueKind.STAGED_FILE_SIZE: _canonical_int(ValueKind.STAGED_FILE_SIZE),
    ValueKind.REGION: _matching(PATTERNS[ValueKind.REGION]),
    ValueKind.PREFIX: _canonical_prefix,
    ValueKind.STORAGE_CLASS: _matching(PATTERNS[ValueKind.STORAGE_CLASS]),
    ValueKind.SSE: _one_of(frozenset(SSE_TYPES)),
    ValueKind.KMS_KEY_ID: _matching(PV_SYNTAX[ValueKind.KMS_KEY_ID]),
    ValueKind.USER_AGENT_PREFIX: _matching(PV_SYNTAX[ValueKind.USER_AGENT_PREFIX]),
    ValueKind.BUCKET_TYPE: _one_of(frozenset(BUCKET_TYPES)),
    ValueKind.ACCOUNT_ID: _matching(PATTERNS[ValueKind.ACCOUNT_ID]),
    ValueKind.UPLOAD_CHECKSUMS: _one_of(frozenset(UPLOAD_CHECKSUMS)),
    ValueKind.THROUGHPUT: _canonical_int(ValueKind.THROUGHPUT),
    ValueKind.DIRECTORY_BUCKET: _matching(PATTERNS[ValueKind.DIRECTORY_BUCKET]),
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
