"""Real FUSE mounts on /dev/fuse (needs root).

No file system serves these mounts: the test closes the fd, which is exactly the state of a
Mountpoint Pod that died — the kernel then answers ENOTCONN (nothing may stat the mount before that,
the request would wait for a FUSE server that never answers).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from s3csi.errors import S3csiError
from s3csi.kernel.fuse import mount_fuse, open_fuse_device
from s3csi.kernel.mount import find_mount, is_dead_fuse, unmount

pytestmark = pytest.mark.usefixtures("privileged")


@pytest.fixture
def target(tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "fuse"
    target.mkdir()
    yield target
    while find_mount(str(target)) is not None:
        unmount(str(target), lazy=True)


@pytest.mark.parametrize(("read_only", "allow_other"), [(False, True), (True, False)])
def test_mount_fuse_then_server_gone_is_dead(target: Path, read_only: bool, allow_other: bool) -> None:
    fd = open_fuse_device()
    assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    try:
        mount_fuse(fd, str(target), allow_other=allow_other, read_only=read_only, user_id=0, group_id=0)
        entry = find_mount(str(target))
        assert entry is not None
        assert (entry.fstype, entry.source) == ("fuse.s3csi", "s3csi")
        assert {"nosuid", "nodev", "noatime"} <= set(entry.options)
        assert entry.read_only is read_only
        assert {"user_id=0", "group_id=0", "default_permissions"} <= set(entry.super_options)
        assert ("allow_other" in entry.super_options) is allow_other
    finally:
        os.close(fd)
    assert is_dead_fuse(str(target))
    unmount(str(target), lazy=True)
    assert find_mount(str(target)) is None
    assert not is_dead_fuse(str(target))


def test_mount_fuse_with_a_bad_fd_names_the_path_and_errno(target: Path) -> None:
    read_end, write_end = os.pipe()  # not a FUSE device
    try:
        with pytest.raises(S3csiError, match=rf"{target}.*Errno"):
            mount_fuse(read_end, str(target), allow_other=False, read_only=False)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert find_mount(str(target)) is None
