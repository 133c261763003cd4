"""Failures are loud: an upload that cannot finish is an error from close(), and unmounting with a file
still open for writing neither hangs nor pretends the file was stored."""

from __future__ import annotations

import errno
import os
import signal
from typing import Any

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from tests.boto_support import boto3_client
from tests.integration.fs_helpers import is_mounted, mounted

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("privileged")]

MiB = 1024 * 1024


def test_upload_to_a_deleted_bucket_fails_at_close(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    with mounted(s3_server, bucket) as fs:
        fd = os.open(fs.path / "doomed.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.write(fd, b"never stored")
        s3.delete_bucket(Bucket=bucket)
        with pytest.raises(OSError) as excinfo:
            os.close(fd)
        assert excinfo.value.errno in (errno.EIO, errno.ENOENT)
        assert not (fs.path / "doomed.txt").exists()
    assert "doomed.txt" in fs.final_log and "failed" in fs.final_log


def test_server_gone_mid_multipart_upload_fails_at_close() -> None:
    own_server = EmbeddedS3Server.start()
    try:
        s3 = boto3_client("s3", own_server)
        s3.create_bucket(Bucket="stopping")
        with mounted(own_server, "stopping", "--write-part-size", str(5 * MiB)) as fs:
            with open(fs.path / "big.bin", "wb") as f:
                f.write(os.urandom(6 * MiB))  # one part is uploaded while writing
                own_server.stop()
                f.write(os.urandom(MiB))
                with pytest.raises(OSError) as excinfo:
                    f.close()
            assert excinfo.value.errno == errno.EIO
    finally:
        own_server.stop()
    assert "big.bin" in fs.final_log


def test_sigterm_with_a_file_open_for_writing_exits_loudly(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str
) -> None:
    with mounted(s3_server, bucket, "--write-part-size", str(5 * MiB)) as fs:
        fd = os.open(fs.path / "unfinished", os.O_WRONLY | os.O_CREAT)
        try:
            os.write(fd, os.urandom(6 * MiB))
            fs.process.send_signal(signal.SIGTERM)
            status = fs.process.wait(timeout=60)
        finally:
            try:
                os.close(fd)
            except OSError as exc:
                assert exc.errno in (errno.ENOTCONN, errno.EIO, errno.ECONNABORTED)
        assert status == 1
        assert not is_mounted(fs.path)
    assert "unfinished" in fs.final_log and "not stored" in fs.final_log
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_lazy_unmount_lets_an_open_file_finish(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    import subprocess

    with mounted(s3_server, bucket) as fs:
        with open(fs.path / "finishing", "wb") as f:
            f.write(b"first half, ")
            subprocess.run(["umount", "-l", str(fs.path)], check=True)
            f.write(b"second half")
        assert fs.process.wait(timeout=60) == 0
    assert s3.get_object(Bucket=bucket, Key="finishing")["Body"].read() == b"first half, second half"


def test_close_returns_an_error_when_the_server_is_frozen() -> None:
    """A server that accepts connections and never answers (SIGSTOPped): close() fails with EIO after
    the flush deadline (2 request timeouts, docs/filesystem.md) instead of waiting through every retry,
    and the file is reported as not stored."""
    own_server = EmbeddedS3Server.start()
    try:
        s3 = boto3_client("s3", own_server)
        s3.create_bucket(Bucket="freezing")
        with mounted(own_server, "freezing") as fs:
            fd = os.open(fs.path / "frozen.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.write(fd, b"never answered")
            own_server.process.send_signal(signal.SIGSTOP)
            try:
                with pytest.raises(OSError) as excinfo:
                    os.close(fd)  # pytest's timeout (300 s) is the generous bound on this wait
            finally:
                own_server.process.send_signal(signal.SIGCONT)
            assert excinfo.value.errno == errno.EIO
    finally:
        own_server.stop()
    assert "upload of s3://freezing/frozen.txt not completed within 120 s" in fs.final_log
    assert "upload of s3://freezing/frozen.txt failed: the file was not stored" in fs.final_log
