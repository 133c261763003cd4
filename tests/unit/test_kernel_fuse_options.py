from __future__ import annotations

import pytest

from s3csi.kernel import syscalls
from s3csi.kernel.fuse import fuse_mount_data, fuse_mount_flags


@pytest.mark.parametrize(
    ("allow_other", "user_id", "group_id", "expected"),
    [
        (False, 0, 0, "fd=7,rootmode=40000,user_id=0,group_id=0,default_permissions"),
        (True, 0, 0, "fd=7,rootmode=40000,user_id=0,group_id=0,default_permissions,allow_other"),
        (True, 1000, 1000, "fd=7,rootmode=40000,user_id=1000,group_id=1000,default_permissions,allow_other"),
    ],
)
def test_fuse_mount_data(allow_other: bool, user_id: int, group_id: int, expected: str) -> None:
    assert fuse_mount_data(7, allow_other=allow_other, user_id=user_id, group_id=group_id) == expected


@pytest.mark.parametrize(
    ("read_only", "expected"),
    [
        (False, syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOATIME),
        (True, syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOATIME | syscalls.MS_RDONLY),
    ],
)
def test_fuse_mount_flags(read_only: bool, expected: int) -> None:
    assert fuse_mount_flags(read_only=read_only) == expected
