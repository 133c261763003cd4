"""Parse /proc/self/mountinfo (proc(5)) — pure, so the grammar is tested with plain tables.

One line::

    36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
    (1)(2) (3)  (4)   (5)     (6)       (7)   (8) (9)    (10)          (11)

Fields 4, 5 and 10 escape space, tab, newline and backslash as ``\\040``-style octal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class MountInfo:
    mount_id: int
    parent_id: int
    device: str  # major:minor
    root: str  # the directory of the file system that is mounted here (a bind mount's source inside it)
    mount_point: str
    options: tuple[str, ...]  # per-mount options: ro|rw, nosuid, nodev, noatime…
    optional_fields: tuple[str, ...]  # shared:N, master:N, propagate_from:N, unbindable
    fstype: str
    source: str
    super_options: tuple[str, ...]

    @property
    def read_only(self) -> bool:
        return "ro" in self.options

    @property
    def is_fuse(self) -> bool:
        return self.fstype == "fuse" or self.fstype.startswith("fuse.")


def unescape(field: str) -> str:
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def parse_line(line: str) -> MountInfo:
    """One mountinfo line; ``ValueError`` naming the line when it does not follow proc(5)."""
    fields = line.split(" ")
    try:
        separator = fields.index("-", 6)
        mount_id, parent_id, device, root, mount_point, options = fields[:6]
        fstype, source, super_options = fields[separator + 1 : separator + 4]
        return MountInfo(
            mount_id=int(mount_id),
            parent_id=int(parent_id),
            device=device,
            root=unescape(root),
            mount_point=unescape(mount_point),
            options=tuple(options.split(",")),
            optional_fields=tuple(fields[6:separator]),
            fstype=fstype,
            source=unescape(source),
            super_options=tuple(super_options.split(",")),
        )
    except ValueError as exc:
        raise ValueError(f"malformed mountinfo line: {line!r}") from exc


def parse_mountinfo(text: str) -> list[MountInfo]:
    return [parse_line(line) for line in text.splitlines() if line]


def read_ahead_path(mount: MountInfo) -> str:
    """The sysfs file that holds the read-ahead window (KiB) of ``mount``'s backing device (bdi)."""
    return f"/sys/class/bdi/{mount.device}/read_ahead_kb"
