"""Attributes stored with the object (times, modes, symbolic links) and the everyday commands that need
them, through a real mount, run as the volume's owner (uid 1001) with no capabilities."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from tests.conftest import WORKLOAD_UID, run_as
from tests.integration.fs_helpers import MountedFs, mounted
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("privileged")]

USER = WORKLOAD_UID
EVERYDAY_FLAGS = ("--allow-delete", "--allow-overwrite", "--allow-rename", "--allow-other")


def owner_flags(file_mode: str = "0660", dir_mode: str = "0770") -> list[str]:
    return ["--uid", str(USER), "--gid", str(USER), "--file-mode", file_mode, "--dir-mode", dir_mode]


@pytest.fixture
def fs(s3_server: EmbeddedS3Server, bucket: str) -> Iterator[MountedFs]:
    with mounted(s3_server, bucket, *owner_flags(), *EVERYDAY_FLAGS) as mount:
        yield mount


def sh(command: str, cwd: Any = None) -> subprocess.CompletedProcess[bytes]:
    """``sh -c command`` as the volume's owner; fails the test, with its stderr, unless it exits 0."""
    result = run_as(USER, USER, ["sh", "-c", command], cwd=cwd)
    assert result.returncode == 0, (command, result.stderr.decode(errors="replace"))
    return result


def metadata(s3: Any, bucket: str, key: str) -> dict[str, str]:
    return dict(s3.head_object(Bucket=bucket, Key=key)["Metadata"])


def test_touch_creates_a_file_and_sets_the_times_of_an_existing_one(
    fs: MountedFs, s3: Any, bucket: str
) -> None:
    sh(f"touch {fs.path}/new")
    assert s3.get_object(Bucket=bucket, Key="new")["Body"].read() == b""
    s3.put_object(Bucket=bucket, Key="old", Body=b"kept")
    sh(f"touch -d '2001-02-03 04:05:06.789' {fs.path}/old {fs.path}/new")
    for name in ("old", "new"):
        assert os.stat(fs.path / name).st_mtime_ns == 981173106_789000000
    assert metadata(s3, bucket, "old")["mtime"] == "981173106.789000000"  # stored when touch returned
    # "new" was uploaded by this mount a moment before: its times are held for a rename, then stored.
    stored = wait_until(lambda: metadata(s3, bucket, "new").get("mtime") == "981173106.789000000")
    assert stored, metadata(s3, bucket, "new")
    assert s3.get_object(Bucket=bucket, Key="old")["Body"].read() == b"kept"


def test_times_set_while_writing_travel_with_the_upload(fs: MountedFs, s3: Any, bucket: str) -> None:
    path = fs.path / "written"
    with open(path, "wb") as file:
        file.write(b"abc")
        os.utime(file.fileno(), ns=(1_000_000_001, 1_234_567_890_123_456_789))
    assert metadata(s3, bucket, "written") == {"mtime": "1234567890.123456789", "atime": "1.000000001"}
    status = os.stat(path)
    assert (status.st_mtime_ns, status.st_atime_ns) == (1_234_567_890_123_456_789, 1_000_000_001)


def test_stored_times_of_other_writers_are_shown(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="s3fs", Body=b"x", Metadata={"mtime": "1600000000", "mode": "33188"})
    s3.put_object(Bucket=bucket, Key="rclone", Body=b"y", Metadata={"mtime": "1600000000.5"})
    s3.put_object(Bucket=bucket, Key="garbage", Body=b"z", Metadata={"mtime": "soon", "mode": "rwx"})
    with mounted(s3_server, bucket, *owner_flags("0777", "0777")) as fs:
        s3fs, rclone, garbage = (os.stat(fs.path / n) for n in ("s3fs", "rclone", "garbage"))
        assert (s3fs.st_mtime_ns, stat.S_IMODE(s3fs.st_mode)) == (1_600_000_000 * 10**9, 0o644)
        assert (rclone.st_mtime_ns, stat.S_IMODE(rclone.st_mode)) == (1_600_000_000_500_000_000, 0o777)
        # Unreadable metadata is no metadata: S3's time and the volume's mode.
        assert stat.S_IMODE(garbage.st_mode) == 0o777 and garbage.st_mtime > 1_600_000_000 + 10**8


def test_chmod_narrows_sticks_and_never_widens(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="id_rsa", Body=b"key")
    with mounted(s3_server, bucket, *owner_flags(), *EVERYDAY_FLAGS) as fs:
        sh(f"chmod 600 {fs.path}/id_rsa")
        assert stat.S_IMODE(os.stat(fs.path / "id_rsa").st_mode) == 0o600
        assert metadata(s3, bucket, "id_rsa")["mode"] == str(stat.S_IFREG | 0o600)
    with mounted(s3_server, bucket, *owner_flags(), *EVERYDAY_FLAGS) as fs:
        assert stat.S_IMODE(os.stat(fs.path / "id_rsa").st_mode) == 0o600  # after a new mount, too
        sh(f"chmod 777 {fs.path}/id_rsa")
        assert stat.S_IMODE(os.stat(fs.path / "id_rsa").st_mode) == 0o660  # the volume's mode at most
        sh(f"chmod 600 {fs.path}/id_rsa && echo new > {fs.path}/id_rsa")
        assert stat.S_IMODE(os.stat(fs.path / "id_rsa").st_mode) == 0o600  # replaced, still narrow
        assert s3.get_object(Bucket=bucket, Key="id_rsa")["Body"].read() == b"new\n"


def test_chown_to_the_owner_is_a_no_op_and_anything_else_eperm(fs: MountedFs) -> None:
    sh(f"echo x > {fs.path}/f && chown {USER}:{USER} {fs.path}/f && chgrp {USER} {fs.path}/f")
    for owner in ("0", f"{USER}:0", "1002"):
        result = run_as(USER, USER, ["chown", owner, str(fs.path / "f")])
        assert result.returncode != 0 and b"Operation not permitted" in result.stderr
    root = subprocess.run(["chown", "0:0", str(fs.path / "f")], capture_output=True, check=False)
    assert root.returncode != 0 and b"Operation not permitted" in root.stderr  # root too: not stored
    status = os.stat(fs.path / "f")
    assert (status.st_uid, status.st_gid) == (USER, USER)


def test_readdir_has_dot_entries(fs: MountedFs, s3: Any, bucket: str) -> None:
    for index in range(5):
        s3.put_object(Bucket=bucket, Key=f"d/f{index}", Body=b"")
    listing = sh(f"ls -f {fs.path}/d").stdout.decode().split()
    assert sorted(listing) == [".", "..", "f0", "f1", "f2", "f3", "f4"]
    os.mkdir(fs.path / "empty")
    lines = sh(f"ls -la {fs.path}/empty").stdout.decode().splitlines()
    assert [line.split()[-1] for line in lines[1:]] == [".", ".."]


def test_symlinks_are_objects_in_s3fs_format(fs: MountedFs, s3: Any, bucket: str) -> None:
    sh(f"echo data > {fs.path}/target && ln -s target {fs.path}/link && ln -s /etc/passwd {fs.path}/outside")
    assert os.readlink(fs.path / "link") == "target"
    assert stat.S_ISLNK(os.lstat(fs.path / "link").st_mode)
    assert (fs.path / "link").read_bytes() == b"data\n"  # the kernel resolves it, inside the mount
    assert s3.get_object(Bucket=bucket, Key="link")["Body"].read() == b"target"
    assert int(metadata(s3, bucket, "link")["mode"]) == stat.S_IFLNK | 0o777
    # A target outside the mount is text: the mount never opens it, the kernel resolves it in the
    # reader's own view of the file system (here the host's /etc/passwd, which the reader could read anyway).
    assert os.readlink(fs.path / "outside") == "/etc/passwd"
    assert "-> target" in sh(f"ls -l {fs.path}").stdout.decode()
    result = run_as(USER, USER, ["ln", "-s", "again", str(fs.path / "link")])
    assert result.returncode != 0 and b"File exists" in result.stderr
    sh(f"rm {fs.path}/link")
    assert "link" not in os.listdir(fs.path)


def test_symlinks_are_refused_on_a_read_only_mount(s3_server: EmbeddedS3Server, bucket: str) -> None:
    with mounted(s3_server, bucket, "--read-only") as fs:
        with pytest.raises(OSError) as excinfo:
            os.symlink("x", fs.path / "l")
        assert excinfo.value.errno == errno.EROFS


def test_mkdir_p_rm_r_mv_and_replace_by_rename(fs: MountedFs, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="s3fs-dir/", Body=b"")  # a directory marker, as s3fs makes them
    s3.put_object(Bucket=bucket, Key="s3fs-dir/inner/", Body=b"")
    sh(f"mkdir -p {fs.path}/a/b/c && echo 1 > {fs.path}/a/b/c/f && mkdir -p {fs.path}/a/b/c")
    sh(f"mv {fs.path}/a/b/c/f {fs.path}/a/g")
    sh(f"echo old > {fs.path}/conf && echo new > {fs.path}/conf.tmp && mv {fs.path}/conf.tmp {fs.path}/conf")
    assert (fs.path / "conf").read_bytes() == b"new\n"
    sh(f"rm -r {fs.path}/a {fs.path}/s3fs-dir")
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))
    assert keys == ["conf"]


def test_a_metadata_copy_keeps_the_bytes_another_client_wrote_meanwhile(
    fs: MountedFs, s3: Any, bucket: str
) -> None:
    (fs.path / "shared").write_bytes(b"ours")
    assert os.stat(fs.path / "shared").st_size == 4  # the mount knows this version
    s3.put_object(Bucket=bucket, Key="shared", Body=b"theirs, newer")
    os.utime(fs.path / "shared", ns=(5 * 10**9, 5 * 10**9))
    # The object copied onto itself is S3's current one: a metadata copy never brings back older bytes.
    # (That the copy is refused when the version changed, and made again from a fresh HEAD, is
    # tests/unit/test_fs_attributes_store.py's: the test server ignores x-amz-copy-source-if-match.)
    # Uploaded by this mount a moment before: the change is held, then stored (docs/posix.md).
    assert wait_until(lambda: metadata(s3, bucket, "shared").get("mtime") == "5"), metadata(
        s3, bucket, "shared"
    )
    assert s3.get_object(Bucket=bucket, Key="shared")["Body"].read() == b"theirs, newer"


def test_a_link_listed_before_it_is_looked_up_becomes_a_link(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str
) -> None:
    """A listing cannot tell a link (s3fs's format) from a file; the kernel must learn it is a link without an
    error, however long --metadata-ttl is."""
    s3.put_object(Bucket=bucket, Key="d/target", Body=b"data")
    s3.put_object(Bucket=bucket, Key="d/link", Body=b"target", Metadata={"mode": str(stat.S_IFLNK | 0o777)})
    with mounted(s3_server, bucket, "--metadata-ttl", "300") as fs:
        assert sorted(os.listdir(fs.path / "d")) == ["link", "target"]
        # lstat, not islink: an error (the kernel's EIO for an inode whose type changed) must fail the test.
        assert wait_until(lambda: stat.S_ISLNK(os.lstat(fs.path / "d" / "link").st_mode), within=10)
        assert os.readlink(fs.path / "d" / "link") == "target"
        assert (fs.path / "d" / "link").read_bytes() == b"data"
        assert os.stat(fs.path / "d" / "target").st_size == 4


def test_planted_links_give_nothing_their_reader_could_not_reach(fs: MountedFs, s3: Any, bucket: str) -> None:
    """An attacker with write access to the bucket plants links in s3fs's format; the mount (root here) must
    never resolve them itself: the reader gets only what its own permissions reach."""
    link = str(stat.S_IFLNK | 0o777)
    s3.put_object(Bucket=bucket, Key="shadow", Body=b"/etc/shadow", Metadata={"mode": link})
    s3.put_object(Bucket=bucket, Key="up", Body=b"../../../../etc/shadow", Metadata={"mode": link})
    s3.put_object(
        Bucket=bucket, Key="huge", Body=b"x" * 5000, Metadata={"mode": link}
    )  # longer than PATH_MAX
    s3.put_object(Bucket=bucket, Key="socket", Body=b"s", Metadata={"mode": str(stat.S_IFSOCK | 0o777)})
    shadow = Path("/etc/shadow").read_bytes()
    for name in ("shadow", "up"):
        assert os.readlink(fs.path / name).endswith("etc/shadow")
        result = run_as(USER, USER, ["cat", str(fs.path / name)])
        assert result.returncode != 0 and b"Permission denied" in result.stderr
        assert shadow not in result.stdout
    assert stat.S_ISREG(os.lstat(fs.path / "huge").st_mode)  # too long for a target: a file
    assert (fs.path / "huge").read_bytes() == b"x" * 5000
    assert stat.S_ISREG(os.lstat(fs.path / "socket").st_mode)  # a kind the mount does not show: a file
