"""Which S3 keys the file system shows, and under which name (pure).

A listing of directory prefix ``P`` yields object keys ``P + name`` and common prefixes
``P + name + "/"``. An entry is hidden (never shown, never looked up) when its name:

- is empty: the key ``P`` itself (a "directory marker" object) or a prefix ``P + "/"`` from a run of
  slashes such as ``a//b``;
- is ``.`` or ``..``, which mean something else in a path;
- contains a NUL byte, which no file name may hold;
- is longer than 255 bytes in UTF-8 (NAME_MAX), which the kernel would refuse.

Keys are also limited to 1024 bytes by S3, so a new name whose key would be longer is refused.
"""

from __future__ import annotations

NAME_MAX = 255
KEY_MAX = 1024


def is_visible_name(name: str) -> bool:
    if not name or name in (".", ".."):
        return False
    if "/" in name or "\0" in name:
        return False
    return len(name.encode("utf-8", "surrogateescape")) <= NAME_MAX


def child_name(dir_prefix: str, key: str) -> str | None:
    """The name an object key or a common prefix (ending in "/") has in the directory, or None if hidden."""
    if not key.startswith(dir_prefix):
        return None
    rest = key[len(dir_prefix) :]
    name = rest[:-1] if rest.endswith("/") else rest
    return name if is_visible_name(name) else None


def fits_in_key(dir_prefix: str, name: str) -> bool:
    """Whether a new entry ``name`` under ``dir_prefix`` (with a trailing "/" for directories) fits S3."""
    return len((dir_prefix + name + "/").encode("utf-8", "surrogateescape")) <= KEY_MAX
