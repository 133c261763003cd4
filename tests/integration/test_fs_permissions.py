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


def test_chmod_narrows_for_the_kernel_and_never_widens_past_the_volume(
    shared_mount: Any, s3: Any, bucket: str
) -> None:
    """The owner narrows a file to 0600: the group member loses it. Widening to 0777 gives back no more than
    the volume's 0660: the member again, never the stranger. Neither of them may chmod or chown."""
    path = str(shared_mount.path / "dir" / "data.txt")

    def reads(uid: int, groups: tuple[int, ...] = ()) -> bool:
        return run_as(uid, uid, ["cat", path], groups=groups).returncode == 0

    assert run_as(OWNER, OWNER, ["chmod", "600", path]).returncode == 0
    assert reads(OWNER) and not reads(MEMBER, (GROUP,)) and not reads(STRANGER)
    assert s3.head_object(Bucket=bucket, Key="dir/data.txt")["Metadata"]["mode"] == str(0o100600)
    # The member reaches the file and is refused as not its owner; the stranger does not get that far.
    for uid, groups, why in (
        (MEMBER, (GROUP,), b"Operation not permitted"),
        (STRANGER, (), b"Permission denied"),
    ):
        assert why in run_as(uid, uid, ["chmod", "666", path], groups=groups).stderr
        assert why in run_as(uid, uid, ["chown", f"{OWNER}:{GROUP}", path], groups=groups).stderr
    assert run_as(OWNER, OWNER, ["chown", f"{OWNER}:{GROUP}", path]).returncode == 0  # a no-op
    assert run_as(OWNER, OWNER, ["chmod", "777", path]).returncode == 0
    assert reads(OWNER) and reads(MEMBER, (GROUP,)) and not reads(STRANGER)
    assert run_as(OWNER, OWNER, ["stat", "-c", "%a", path]).stdout == b"660\n"
    assert s3.get_object(Bucket=bucket, Key="dir/data.txt")["Body"].read() == b"secret"
