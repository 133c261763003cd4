"""The file system end to end: a real FUSE mount of a bucket on the real (moto) S3 server, used by real
processes, checked through boto3 (the independent witness)."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from tests.conftest import WORKLOAD_UID, run_as
from tests.integration.fs_helpers import mounted

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("privileged")]

MiB = 1024 * 1024
WRITER = """
import hashlib, os, sys
data = os.urandom({size})
with open(sys.argv[1], "wb") as f:
    for i in range(0, len(data), 1 << 20):
        f.write(data[i : i + (1 << 20)])
print(hashlib.sha256(data).hexdigest())
"""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def body(s3: Any, bucket: str, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def put_many(s3: Any, bucket: str, keys: list[str], data: bytes = b"x") -> None:
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=bucket, Key=key, Body=data), keys))


def test_write_as_workload_uid_reaches_s3_intact(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    with mounted(
        s3_server, bucket, "--uid", "1001", "--gid", "1001", "--allow-other", "--write-part-size", "5242880"
    ) as fs:
        script = WRITER.format(size=13 * MiB + 123)
        result = run_as(
            WORKLOAD_UID, WORKLOAD_UID, [sys.executable, "-c", script, str(fs.path / "written.bin")]
        )
        assert result.returncode == 0, result.stderr.decode()
        expected = result.stdout.decode().strip()
        # 13 MiB in 5 MiB parts: a multipart upload of three parts, durable once close() returned.
        assert sha256(body(s3, bucket, "written.bin")) == expected
        listing = subprocess.run(
            ["ls", "-ln", str(fs.path)], capture_output=True, text=True, check=True
        ).stdout
        assert " 1001 1001 " in listing and "written.bin" in listing


def test_small_file_roundtrip_and_read_back(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    with mounted(s3_server, bucket) as fs:
        (fs.path / "hello.txt").write_bytes(b"hello, world\n")
        assert body(s3, bucket, "hello.txt") == b"hello, world\n"
        assert (fs.path / "hello.txt").read_bytes() == b"hello, world\n"
        (fs.path / "empty").touch()
        assert body(s3, bucket, "empty") == b""
        assert (fs.path / "empty").stat().st_size == 0


def test_random_reads_return_the_right_bytes(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    data = os.urandom(3 * MiB + 17)
    s3.put_object(Bucket=bucket, Key="random.bin", Body=data)
    with (
        mounted(s3_server, bucket, "--read-part-size", "262144") as fs,
        open(fs.path / "random.bin", "rb") as f,
    ):
        for offset, size in [
            (3 * MiB, 100),
            (5, 10),
            (MiB - 3, 7),
            (2 * MiB + 5, 300_000),
            (3 * MiB + 10, 100),
        ]:
            f.seek(offset)
            assert f.read(size) == data[offset : offset + size], (offset, size)
        f.seek(0)
        assert sha256(f.read()) == sha256(data)


def test_listing_nested_prefixes_and_implicit_directories(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str
) -> None:
    put_many(s3, bucket, ["top.txt", "a/b/c/deep.txt", "a/one", "a/two", "x/y", "same", "same/inner"])
    with mounted(s3_server, bucket) as fs:
        assert sorted(os.listdir(fs.path)) == ["a", "same", "top.txt", "x"]
        assert sorted(os.listdir(fs.path / "a")) == ["b", "one", "two"]
        assert os.listdir(fs.path / "a" / "b" / "c") == ["deep.txt"]
        # A key and a prefix of the same name: the directory wins (like mount-s3).
        assert (fs.path / "same").is_dir()
        assert os.listdir(fs.path / "same") == ["inner"]
        assert (fs.path / "a" / "b" / "c" / "deep.txt").read_bytes() == b"x"
        assert not (fs.path / "missing").exists()


def test_unsafe_keys_are_hidden(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    long_name = "n" * 256
    put_many(s3, bucket, ["ok", "dir/", "dir/./x", "dir/../y", "dir//z", f"dir/{long_name}", "dir/fine", "."])
    with mounted(s3_server, bucket) as fs:
        assert sorted(os.listdir(fs.path)) == ["dir", "ok"]
        # "dir/" (a marker), ".", "..", the empty name of "dir//z" and a 256-byte name are not shown.
        assert os.listdir(fs.path / "dir") == ["fine"]


def test_mkdir_is_local_until_a_file_is_written(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    with mounted(s3_server, bucket) as fs:
        (fs.path / "new").mkdir()
        assert (fs.path / "new").is_dir() and os.listdir(fs.path / "new") == []
        assert "new" in os.listdir(fs.path)
        assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
        (fs.path / "new" / "sub").mkdir()
        (fs.path / "new" / "sub").rmdir()
        (fs.path / "new" / "file").write_bytes(b"1")
        assert body(s3, bucket, "new/file") == b"1"
        with pytest.raises(OSError) as excinfo:
            (fs.path / "new").rmdir()
        assert excinfo.value.errno == errno.ENOTEMPTY
        (fs.path / "gone").mkdir()
        (fs.path / "gone").rmdir()
        assert not (fs.path / "gone").exists()


@pytest.mark.parametrize(
    ("action", "expected_errno"),
    [
        (lambda p: os.chown(p / "f", 5, 5), errno.EPERM),
        (lambda p: os.link(p / "f", p / "hard"), errno.ENOTSUP),
        (lambda p: os.setxattr(p / "f", "user.k", b"v"), errno.ENOTSUP),
        (lambda p: os.rename(p / "f", p / "g"), errno.EPERM),
        (lambda p: os.unlink(p / "f"), errno.EPERM),
        (lambda p: open(p / "f", "r+b").close(), errno.EPERM),  # write without O_TRUNC
        (lambda p: open(p / "f", "wb").close(), errno.EPERM),  # overwrite without --allow-overwrite
        (lambda p: os.truncate(p / "f", 1), errno.EPERM),
        (lambda p: os.mkfifo(p / "fifo"), errno.ENOTSUP),
    ],
    ids=[
        "chown",
        "link",
        "setxattr",
        "rename",
        "unlink",
        "open-rw",
        "overwrite",
        "truncate",
        "mkfifo",
    ],
)
def test_unsupported_operations_fail_with_a_clear_errno(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str, action: Any, expected_errno: int
) -> None:
    s3.put_object(Bucket=bucket, Key="f", Body=b"data")
    with mounted(s3_server, bucket) as fs:
        with pytest.raises(OSError) as excinfo:
            action(fs.path)
        assert excinfo.value.errno == expected_errno
        assert body(s3, bucket, "f") == b"data"
        assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]) == ["f"]


def test_out_of_order_write_and_reading_a_file_being_written(
    s3_server: EmbeddedS3Server, bucket: str
) -> None:
    with mounted(s3_server, bucket) as fs:
        fd = os.open(fs.path / "seq", os.O_WRONLY | os.O_CREAT)
        try:
            os.write(fd, b"abc")
            with pytest.raises(OSError) as excinfo:
                os.pwrite(fd, b"x", 100)
            assert excinfo.value.errno == errno.EINVAL
            with pytest.raises(OSError) as excinfo:
                open(fs.path / "seq", "rb").close()
            assert excinfo.value.errno == errno.EBUSY
        finally:
            os.close(fd)
        assert (fs.path / "seq").read_bytes() == b"abc"


def test_file_written_then_read_by_another_mount(s3_server: EmbeddedS3Server, bucket: str) -> None:
    payload = os.urandom(MiB)
    with mounted(s3_server, bucket) as writer, mounted(s3_server, bucket) as reader:
        (writer.path / "shared").write_bytes(payload)
        assert (reader.path / "shared").read_bytes() == payload


def test_statfs_and_ownership_defaults(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="d/f", Body=b"1")
    with mounted(s3_server, bucket) as fs:
        vfs = os.statvfs(fs.path)
        assert vfs.f_namemax == 255 and vfs.f_bavail > 0
        for path, mode in [(fs.path / "d", 0o40755), (fs.path / "d" / "f", 0o100644)]:
            st = path.stat()
            assert (st.st_uid, st.st_gid, st.st_mode) == (os.getuid(), os.getgid(), mode)


def test_fsync_makes_the_file_durable_before_close(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    with mounted(s3_server, bucket) as fs, open(fs.path / "synced", "wb") as f:
        f.write(b"durable")
        f.flush()
        os.fsync(f.fileno())
        assert body(s3, bucket, "synced") == b"durable"


def test_mount_command_is_listed_in_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "s3csi", "mount", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    for flag in ("--allow-rename", "--metadata-ttl", "--cache", "--sse-kms-key-id", "--auto-unmount"):
        assert flag in result.stdout


def test_create_never_replaces_an_object_the_kernel_thought_absent(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str
) -> None:
    with mounted(s3_server, bucket, "--negative-metadata-ttl", "indefinite") as fs:
        assert not (fs.path / "raced").exists()  # the kernel now caches "no such file"
        s3.put_object(Bucket=bucket, Key="raced", Body=b"someone else's")
        with pytest.raises(FileExistsError):
            (fs.path / "raced").write_bytes(b"mine")
    assert body(s3, bucket, "raced") == b"someone else's"
