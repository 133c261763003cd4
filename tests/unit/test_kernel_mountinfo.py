from __future__ import annotations

import pytest

from s3csi.kernel.mount import find_mount
from s3csi.kernel.mountinfo import MountInfo, parse_line, parse_mountinfo, unescape

PROC5_EXAMPLE = "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
FUSE_LINE = (
    "812 29 0:91 / /var/lib/s3csi/sources/k1 rw,nosuid,nodev,noatime - fuse.s3csi s3csi "
    "rw,user_id=0,group_id=0,default_permissions,allow_other"
)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            PROC5_EXAMPLE,
            MountInfo(
                36,
                35,
                "98:0",
                "/mnt1",
                "/mnt2",
                ("rw", "noatime"),
                ("master:1",),
                "ext3",
                "/dev/root",
                ("rw", "errors=continue"),
            ),
        ),
        (
            FUSE_LINE,
            MountInfo(
                812,
                29,
                "0:91",
                "/",
                "/var/lib/s3csi/sources/k1",
                ("rw", "nosuid", "nodev", "noatime"),
                (),
                "fuse.s3csi",
                "s3csi",
                ("rw", "user_id=0", "group_id=0", "default_permissions", "allow_other"),
            ),
        ),
        (  # no optional fields, several optional fields
            "1 0 0:1 / / ro shared:1 master:2 propagate_from:3 - tmpfs none rw",
            MountInfo(
                1,
                0,
                "0:1",
                "/",
                "/",
                ("ro",),
                ("shared:1", "master:2", "propagate_from:3"),
                "tmpfs",
                "none",
                ("rw",),
            ),
        ),
        (  # space, tab, newline and backslash are octal-escaped in root, mount point and source
            r"5 1 0:2 /a\040b /mnt/x\011y\012z\134w rw - fuse src\040name rw",
            MountInfo(5, 1, "0:2", "/a b", "/mnt/x\ty\nz\\w", ("rw",), (), "fuse", "src name", ("rw",)),
        ),
        (  # a bind mount of a directory inside another file system
            "7 1 8:1 /srv/data /pods/v rw,nosuid,nodev - ext4 /dev/sda1 rw",
            MountInfo(
                7,
                1,
                "8:1",
                "/srv/data",
                "/pods/v",
                ("rw", "nosuid", "nodev"),
                (),
                "ext4",
                "/dev/sda1",
                ("rw",),
            ),
        ),
    ],
)
def test_parse_line(line: str, expected: MountInfo) -> None:
    assert parse_line(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "",
        "36 35 98:0 /mnt1 /mnt2 rw",
        "x 35 98:0 /mnt1 /mnt2 rw - ext3 /dev/root rw",
        "36 35 98:0 /a /b rw - ext3",
    ],
)
def test_malformed_lines_are_named(line: str) -> None:
    with pytest.raises(ValueError, match="malformed mountinfo line"):
        parse_line(line)


@pytest.mark.parametrize(
    ("field", "expected"),
    [("plain", "plain"), (r"a\040b", "a b"), (r"\134\134", "\\\\"), (r"a\04b", r"a\04b"), (r"\0401", " 1")],
)
def test_unescape(field: str, expected: str) -> None:
    assert unescape(field) == expected


@pytest.mark.parametrize(
    ("entry", "read_only", "is_fuse"),
    [
        (parse_line(PROC5_EXAMPLE), False, False),
        (parse_line(FUSE_LINE), False, True),
        (parse_line("1 0 0:1 / /x ro,nosuid - fuse fuse rw"), True, True),
        (parse_line("1 0 0:1 / /x ro - fuseblk /dev/sdb rw"), True, False),
    ],
)
def test_flags(entry: MountInfo, read_only: bool, is_fuse: bool) -> None:
    assert (entry.read_only, entry.is_fuse) == (read_only, is_fuse)


def test_parse_table_skips_blank_lines() -> None:
    assert [m.mount_id for m in parse_mountinfo(f"{PROC5_EXAMPLE}\n\n{FUSE_LINE}\n")] == [36, 812]


@pytest.mark.parametrize(
    ("path", "expected_id"),
    [("/mnt2", 3), ("/mnt2/", 3), ("/mnt2/../mnt2", 3), ("/mnt3", None), ("/var/lib/s3csi/sources/k1", 812)],
)
def test_find_mount_returns_the_top_mount(path: str, expected_id: int | None) -> None:
    table = parse_mountinfo(f"{PROC5_EXAMPLE}\n{FUSE_LINE}\n3 36 0:5 / /mnt2 rw - tmpfs tmpfs rw\n")
    found = find_mount(path, table)
    assert (found.mount_id if found else None) == expected_id
