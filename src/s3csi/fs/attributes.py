"""Attributes stored with an object, in S3 user metadata (pure): their format and what a process sees.

The format is s3fs-fuse's, which rclone shares for the modification time, so a bucket written by either
shows its times here and ours show there (docs/filesystem.md, "Attributes stored with the object"):

- ``x-amz-meta-mtime`` / ``x-amz-meta-atime``: seconds since the epoch, in decimal, with an optional
  fraction (``1700000000`` from s3fs, ``1700000000.123456789`` from rclone and from us). Kept to the
  nanosecond: ``rsync -t`` compares nanoseconds.
- ``x-amz-meta-mode``: the whole ``st_mode`` in decimal (s3fs: ``33188`` is a 0644 regular file,
  ``41471`` a symbolic link).

uid and gid are never stored or read: ownership is the volume's (the mount's --uid/--gid).

Modes. What a process sees, and the kernel enforces, is the stored permission bits *and* the volume's
(the mount's --file-mode/--dir-mode): a stored mode narrows, never widens; no stored mode shows the
volume's mode unchanged.
"""

from __future__ import annotations

import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass

MTIME = "mtime"
ATIME = "atime"
MODE = "mode"
STORED_KEYS = (MTIME, ATIME, MODE)
"""The user-metadata keys s3csi reads and writes; every other key belongs to another tool."""
# The keys above, as they travel in HTTP headers.
META_PREFIX = "x-amz-meta-"
NS_PER_S = 1_000_000_000
PERMISSION_BITS = 0o777
# Kinds of entry a stored mode may name: others (devices, FIFOs, sockets) are shown as regular files.
KNOWN_TYPES = (stat.S_IFREG, stat.S_IFLNK, stat.S_IFDIR)
_TIME = re.compile(r"(-?[0-9]{1,12})(?:\.([0-9]{1,9})[0-9]*)?")
_MODE = re.compile(r"[0-9]{1,7}")


@dataclass(frozen=True, slots=True)
class StoredAttributes:
    """What an object's metadata says; None where it says nothing (or nothing readable)."""

    mtime_ns: int | None = None
    atime_ns: int | None = None
    mode: int | None = None

    @property
    def is_symlink(self) -> bool:
        return self.mode is not None and stat.S_ISLNK(self.mode)


NOTHING_STORED = StoredAttributes()


def parse_time(text: str) -> int | None:
    """``"1700000000"`` or ``"1700000000.5"`` → nanoseconds since the epoch; None if unreadable."""
    match = _TIME.fullmatch(text.strip())
    if match is None:
        return None
    seconds, fraction = match.group(1), match.group(2) or ""
    nanos = int(fraction.ljust(9, "0")) if fraction else 0
    whole = int(seconds)
    return whole * NS_PER_S - nanos if seconds.startswith("-") else whole * NS_PER_S + nanos


def format_time(ns: int) -> str:
    """Nanoseconds since the epoch → ``"1700000000.123456789"`` (whole seconds without a fraction)."""
    seconds, nanos = divmod(ns, NS_PER_S)
    return str(seconds) if nanos == 0 else f"{seconds}.{nanos:09d}"


def parse_mode(text: str) -> int | None:
    """s3fs's decimal ``st_mode``; None if unreadable or of a kind this file system does not show."""
    if not _MODE.fullmatch(text.strip()):
        return None
    mode = int(text)
    kind = stat.S_IFMT(mode)
    if kind == 0:
        return stat.S_IFREG | (mode & PERMISSION_BITS)  # permission bits alone: a regular file
    if kind not in KNOWN_TYPES:
        return None
    return kind | (mode & PERMISSION_BITS)


def decode(metadata: Mapping[str, str]) -> StoredAttributes:
    """The attributes in an object's user metadata (keys without ``x-amz-meta-``, lower case)."""
    mtime, atime, mode = metadata.get(MTIME), metadata.get(ATIME), metadata.get(MODE)
    return StoredAttributes(
        mtime_ns=None if mtime is None else parse_time(mtime),
        atime_ns=None if atime is None else parse_time(atime),
        mode=None if mode is None else parse_mode(mode),
    )


def encode(attributes: StoredAttributes) -> dict[str, str]:
    """User metadata (keys without ``x-amz-meta-``) for ``attributes``; only what is set."""
    metadata = {}
    if attributes.mtime_ns is not None:
        metadata[MTIME] = format_time(attributes.mtime_ns)
    if attributes.atime_ns is not None:
        metadata[ATIME] = format_time(attributes.atime_ns)
    if attributes.mode is not None:
        metadata[MODE] = str(attributes.mode)
    return metadata


def merged(metadata: Mapping[str, str], attributes: StoredAttributes) -> dict[str, str]:
    """An object's user metadata with ``attributes`` replacing ours, every other key kept (a metadata
    copy replaces all of it: what another tool stored must survive a ``touch``)."""
    return {**metadata, **encode(attributes)}


def shown_permissions(stored_mode: int | None, policy: int) -> int:
    """The permission bits a process sees: the stored ones within the volume's ``policy``."""
    if stored_mode is None:
        return policy
    return stored_mode & PERMISSION_BITS & policy


def chown_allowed(owner: int, group: int, new_uid: int | None, new_gid: int | None) -> bool:
    """``chown``/``chgrp`` succeed (changing nothing) only to the owner and group the volume gives."""
    return (new_uid is None or new_uid == owner) and (new_gid is None or new_gid == group)


def combine(current: StoredAttributes, changes: StoredAttributes) -> StoredAttributes:
    """``current`` with what ``changes`` sets (a setattr sets some of mode, mtime, atime)."""
    return StoredAttributes(
        mtime_ns=current.mtime_ns if changes.mtime_ns is None else changes.mtime_ns,
        atime_ns=current.atime_ns if changes.atime_ns is None else changes.atime_ns,
        mode=current.mode if changes.mode is None else changes.mode,
    )
