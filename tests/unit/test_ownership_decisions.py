"""The ownership decisions (kubelet's mode arithmetic + fsUser) as tables, no file system."""

from __future__ import annotations

import io
import stat

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3csi.errors import InvalidArgument
from s3csi.ownership.cli import ProgressLine
from s3csi.ownership.policy import (
    Change,
    FsGroupChangePolicy,
    OwnershipTarget,
    decide,
    root_matches,
    target_mode,
)
from s3csi.ownership.walk import OwnershipReport

REG = stat.S_IFREG
DIR = stat.S_IFDIR
LNK = stat.S_IFLNK
SGID = stat.S_ISGID
SUID = stat.S_ISUID
G = 1234  # fsGroup
U = 1000  # fsUser


@pytest.mark.parametrize(
    ("st_mode", "read_only", "expected"),
    [
        # files: | 0660 (rw) or | 0440 (ro); no execute bit is ever added to a file
        (REG | 0o644, False, 0o664),
        (REG | 0o600, False, 0o660),
        (REG | 0o000, False, 0o660),
        (REG | 0o700, False, 0o760),  # owner x stays owner-only: kubelet adds no x to files
        (REG | 0o755, False, 0o775),
        (REG | 0o644, True, 0o644),
        (REG | 0o600, True, 0o640),
        (REG | 0o666, True, 0o666),  # bits are only added: read-only removes no write bit
        (REG | SUID | 0o755, False, SUID | 0o775),
        # directories: | 0660/0440 | 0110 | setgid — kubelet's 2770
        (DIR | 0o700, False, SGID | 0o770),
        (DIR | 0o755, False, SGID | 0o775),
        (DIR | 0o000, False, SGID | 0o770),
        (DIR | 0o700, True, SGID | 0o750),
        (DIR | SGID | 0o770, False, SGID | 0o770),
        (DIR | stat.S_ISVTX | 0o777, False, stat.S_ISVTX | SGID | 0o777),
    ],
)
def test_target_mode_is_kubelets_arithmetic(st_mode: int, read_only: bool, expected: int) -> None:
    assert target_mode(st_mode, read_only) == expected


@pytest.mark.parametrize(
    ("st_mode", "st_uid", "st_gid", "target", "expected"),
    [
        # already right: no call at all
        (REG | 0o664, 0, G, OwnershipTarget(G), None),
        (DIR | SGID | 0o770, 0, G, OwnershipTarget(G), None),
        (REG | 0o640, 5, G, OwnershipTarget(G, read_only=True), None),
        # group only, owner kept
        (REG | 0o664, 7, 0, OwnershipTarget(G), Change(owner=(7, G), mode=None)),
        # mode only
        (REG | 0o644, 0, G, OwnershipTarget(G), Change(owner=None, mode=0o664)),
        (DIR | 0o770, 0, G, OwnershipTarget(G), Change(owner=None, mode=SGID | 0o770)),
        # both
        (DIR | 0o755, 0, 0, OwnershipTarget(G), Change(owner=(0, G), mode=SGID | 0o775)),
        (REG | 0o600, 0, 0, OwnershipTarget(G, read_only=True), Change(owner=(0, G), mode=0o640)),
        # fsUser replaces the owner
        (REG | 0o600, 0, G, OwnershipTarget(G, fs_user=U), Change(owner=(U, G), mode=0o660)),
        (REG | 0o660, U, G, OwnershipTarget(G, fs_user=U), None),
        (REG | 0o660, 0, 0, OwnershipTarget(G, fs_user=0), Change(owner=(0, G), mode=None)),
        # symlinks: lchown only, never a chmod whatever their mode
        (LNK | 0o777, 0, 0, OwnershipTarget(G), Change(owner=(0, G), mode=None)),
        (LNK | 0o777, 0, 0, OwnershipTarget(G, fs_user=U), Change(owner=(U, G), mode=None)),
        (LNK | 0o777, 0, G, OwnershipTarget(G), None),
        # chown(2) clears setuid/setgid of a regular file: the chmod must put them back
        (REG | SUID | 0o775, 0, 0, OwnershipTarget(G), Change(owner=(0, G), mode=SUID | 0o775)),
        (REG | SGID | 0o775, 0, 0, OwnershipTarget(G), Change(owner=(0, G), mode=SGID | 0o775)),
        (REG | SUID | 0o775, 0, G, OwnershipTarget(G), None),
        # ... but not a directory's setgid: the kernel keeps it
        (DIR | SGID | 0o770, 0, 0, OwnershipTarget(G), Change(owner=(0, G), mode=None)),
        # other file types are changed like files (kubelet does the same)
        (stat.S_IFSOCK | 0o755, 0, 0, OwnershipTarget(G), Change(owner=(0, G), mode=0o775)),
        (stat.S_IFIFO | 0o600, 0, G, OwnershipTarget(G), Change(owner=None, mode=0o660)),
    ],
)
def test_decide(
    st_mode: int, st_uid: int, st_gid: int, target: OwnershipTarget, expected: Change | None
) -> None:
    assert decide(st_mode, st_uid, st_gid, target) == expected


@pytest.mark.parametrize(
    ("st_mode", "st_uid", "st_gid", "target", "matches"),
    [
        (DIR | SGID | 0o770, 0, G, OwnershipTarget(G), True),
        (DIR | SGID | 0o775, 0, G, OwnershipTarget(G), True),  # a superset of the bits is fine
        (DIR | SGID | 0o777, 9, G, OwnershipTarget(G), True),  # owner is not checked without fsUser
        (DIR | 0o770, 0, G, OwnershipTarget(G), False),  # no setgid
        (DIR | SGID | 0o750, 0, G, OwnershipTarget(G), False),  # no group write
        (DIR | SGID | 0o760, 0, G, OwnershipTarget(G), False),  # no group search
        (DIR | SGID | 0o670, 0, G, OwnershipTarget(G), False),  # no owner search (execMask is 0110)
        (DIR | SGID | 0o770, 0, G + 1, OwnershipTarget(G), False),  # other group
        (DIR | SGID | 0o750, 0, G, OwnershipTarget(G, read_only=True), True),
        (DIR | SGID | 0o710, 0, G, OwnershipTarget(G, read_only=True), False),
        (DIR | SGID | 0o770, U, G, OwnershipTarget(G, fs_user=U), True),
        (DIR | SGID | 0o770, 0, G, OwnershipTarget(G, fs_user=U), False),  # other owner
        (REG | SGID | 0o770, 0, G, OwnershipTarget(G), False),  # not a directory
    ],
)
def test_root_matches(st_mode: int, st_uid: int, st_gid: int, target: OwnershipTarget, matches: bool) -> None:
    assert root_matches(st_mode, st_uid, st_gid, target) is matches


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Always", FsGroupChangePolicy.ALWAYS),
        ("OnRootMismatch", FsGroupChangePolicy.ON_ROOT_MISMATCH),
        (FsGroupChangePolicy.ON_ROOT_MISMATCH, FsGroupChangePolicy.ON_ROOT_MISMATCH),
    ],
)
def test_policy_parse(value: str, expected: FsGroupChangePolicy) -> None:
    assert FsGroupChangePolicy.parse(value) is expected


@pytest.mark.parametrize("value", ["always", "onRootMismatch", "", "Never"])
def test_policy_parse_refuses_other_spellings(value: str) -> None:
    with pytest.raises(InvalidArgument, match=r"fsGroupChangePolicy.*allowed: Always, OnRootMismatch"):
        FsGroupChangePolicy.parse(value)


@pytest.mark.parametrize(
    ("fs_group", "fs_user", "named"),
    [(-1, None, "fsGroup"), (2**32 - 1, None, "fsGroup"), (True, None, "fsGroup"), (1, -5, "fsUser")],
)
def test_target_refuses_bad_ids(fs_group: int, fs_user: int | None, named: str) -> None:
    with pytest.raises(InvalidArgument, match=named):
        OwnershipTarget(fs_group, fs_user)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _report(entries: int) -> OwnershipReport:
    return OwnershipReport(path="/v", walked=True, changed=entries)


def test_progress_is_silent_for_walks_shorter_than_the_delay() -> None:
    stream, clock = io.StringIO(), FakeClock()
    line = ProgressLine(stream, clock=clock)
    clock.now += 0.9
    line(_report(5000))
    line.close()
    assert stream.getvalue() == ""


def test_progress_writes_periodic_lines_when_not_a_terminal() -> None:
    stream, clock = io.StringIO(), FakeClock()
    line = ProgressLine(stream, clock=clock)
    for seconds, entries in [(1.5, 2048), (2.0, 4096), (6.6, 6144)]:
        clock.now = 100.0 + seconds
        line(_report(entries))
    line.close()
    assert stream.getvalue().splitlines() == [
        "/v: 2048 entries (2048 changed, 0 skipped, 0 errors), 2 s",
        "/v: 6144 entries (6144 changed, 0 skipped, 0 errors), 7 s",
    ]


def test_progress_rewrites_one_line_on_a_terminal() -> None:
    stream, clock = FakeTty(), FakeClock()
    line = ProgressLine(stream, clock=clock)
    for seconds, entries in [(1.0, 2048), (1.5, 4096)]:
        clock.now = 100.0 + seconds
        line(_report(entries))
    line.close()
    out = stream.getvalue()
    assert out.count("\r") == 2
    assert out.endswith("4096 entries (4096 changed, 0 skipped, 0 errors), 2 s\x1b[K\n")


FILE_TYPES = [REG, DIR, LNK, stat.S_IFIFO, stat.S_IFSOCK, stat.S_IFCHR]
ids = st.integers(min_value=0, max_value=70000)


@given(
    file_type=st.sampled_from(FILE_TYPES),
    bits=st.integers(min_value=0, max_value=0o7777),
    uid=ids,
    gid=ids,
    fs_group=ids,
    fs_user=st.none() | ids,
    read_only=st.booleans(),
)
def test_decide_adds_only_and_is_idempotent(
    *, file_type: int, bits: int, uid: int, gid: int, fs_group: int, fs_user: int | None, read_only: bool
) -> None:
    target = OwnershipTarget(fs_group, fs_user, read_only)
    change = decide(file_type | bits, uid, gid, target)
    new_uid, new_gid = change.owner if change and change.owner else (uid, gid)
    new_bits = change.mode if change and change.mode is not None else bits
    assert new_bits & bits == bits  # never removes a bit
    assert new_gid == fs_group and new_uid == (uid if fs_user is None else fs_user)
    if file_type == LNK:
        assert change is None or change.mode is None
    assert decide(file_type | new_bits, new_uid, new_gid, target) is None
    if file_type == DIR:
        assert root_matches(file_type | new_bits, new_uid, new_gid, target)
