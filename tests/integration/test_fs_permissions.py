"""The kernel enforces the owner, group and modes the mount reports (default_permissions): real processes
of the owner, a group member and a stranger, each with no capabilities."""

from __future__ import annotations

from typing import Any

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from tests.conftest import run_as
from tests.integration.fs_helpers import mounted

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("privileged")]

OWNER, GROUP = 1001, 2000
MEMBER, STRANGER = 1002, 1003


@pytest.fixture
def shared_mount(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> Any:
    s3.put_object(Bucket=bucket, Key="dir/data.txt", Body=b"secret")
    flags = [
        "--uid",
        str(OWNER),
        "--gid",
        str(GROUP),
        "--dir-mode",
        "0770",
        "--file-mode",
        "0660",
        "--allow-other",
    ]
    with mounted(s3_server, bucket, *flags) as fs:
        yield fs


@pytest.mark.parametrize(
    ("uid", "groups", "allowed"),
    [(OWNER, (), True), (MEMBER, (GROUP,), True), (STRANGER, (), False), (STRANGER, (4242,), False)],
    ids=["owner", "group-member", "other", "other-with-unrelated-group"],
)
def test_read_is_enforced_by_the_kernel(
    shared_mount: Any, uid: int, groups: tuple[int, ...], allowed: bool
) -> None:
    result = run_as(uid, uid, ["cat", str(shared_mount.path / "dir" / "data.txt")], groups=groups)
    if allowed:
        assert result.returncode == 0, result.stderr
        assert result.stdout == b"secret"
    else:
        assert result.returncode != 0
        assert b"Permission denied" in result.stderr


@pytest.mark.parametrize(
    ("uid", "groups", "allowed"),
    [(OWNER, (), True), (MEMBER, (GROUP,), True), (STRANGER, (), False)],
    ids=["owner", "group-member", "other"],
)
def test_create_is_enforced_by_the_kernel(
    shared_mount: Any, s3: Any, bucket: str, *, uid: int, groups: tuple[int, ...], allowed: bool
) -> None:
    target = shared_mount.path / "dir" / f"by-{uid}"
    result = run_as(uid, uid, ["sh", "-c", f"echo hi > {target}"], groups=groups)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    if allowed:
        assert result.returncode == 0, result.stderr
        assert f"dir/by-{uid}" in keys
    else:
        assert b"Permission denied" in result.stderr
        assert f"dir/by-{uid}" not in keys


def test_file_mode_0600_keeps_the_group_out(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="private", Body=b"mine")
    flags = ["--uid", str(OWNER), "--gid", str(GROUP), "--file-mode", "600", "--allow-other"]
    with mounted(s3_server, bucket, *flags) as fs:
        assert run_as(OWNER, OWNER, ["cat", str(fs.path / "private")]).stdout == b"mine"
        denied = run_as(MEMBER, MEMBER, ["cat", str(fs.path / "private")], groups=(GROUP,))
        assert b"Permission denied" in denied.stderr
