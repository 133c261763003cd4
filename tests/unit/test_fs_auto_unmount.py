"""``--auto-unmount``'s watcher: what it does with the mount once the mounter is gone."""

from __future__ import annotations

import errno

import pytest

from s3csi.fs.auto_unmount import Verdict, is_ours, verdict
from s3csi.kernel.mountinfo import MountInfo

# (still mounted, errno of the probe or None when it answered, verdict)
CASES = [
    (False, None, Verdict.GONE),  # unmounted cleanly before the mounter exited, or replaced
    (True, errno.ENOTCONN, Verdict.UNMOUNT),  # the connection is aborted: the server is gone
    # The probe was in flight when the connection was aborted (fusermount3 3.14 stops here and leaves it).
    (True, errno.ECONNABORTED, Verdict.PROBE_AGAIN),
    (True, None, Verdict.SERVED),  # another process holds the FUSE device and answers
    (True, errno.EACCES, Verdict.SERVED),  # an answer from a live server
]


@pytest.mark.parametrize(("mounted", "probe_errno", "expected"), CASES)
def test_verdict(mounted: bool, probe_errno: int | None, expected: Verdict) -> None:
    assert verdict(mounted, probe_errno) is expected


def mount(mount_id: int, fstype: str = "fuse.s3csi") -> MountInfo:
    return MountInfo(mount_id, 1, "0:99", "/", "/mnt/data", ("rw",), (), fstype, "s3csi", ("rw",))


# (the mount on top now, the id the mounter announced, the id on top when the watcher started, ours?)
OWNERSHIP = [
    (None, 45, 0, False),  # nothing mounted any more
    (mount(45), 45, 0, True),
    (mount(46), 45, 0, False),  # another mount stacked on ours since: never unmount someone else's
    # The mounter died between its mount and its announcement: a FUSE mount that was not there before.
    (mount(45), None, 0, True),
    (mount(45), None, 12, True),
    (mount(12), None, 12, False),  # what was there before the mounter started
    (mount(45, "ext4"), None, 0, False),
    (None, None, 0, False),  # the mount never happened
]


@pytest.mark.parametrize(("top", "announced", "before", "expected"), OWNERSHIP)
def test_is_ours(top: MountInfo | None, announced: int | None, before: int, expected: bool) -> None:
    assert is_ours(top, announced, before) is expected
