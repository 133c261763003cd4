"""Bad flags and values: one line on stderr naming what was wrong, a non-zero exit, nothing mounted."""

from __future__ import annotations

from pathlib import Path

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from tests.integration.fs_helpers import is_mounted, run_mount_command, world_readable_dir

pytestmark = [pytest.mark.integration]

BAD = [
    (["--no-such-flag"], "--no-such-flag"),
    (["--uid", "abc"], "--uid"),
    (["--gid", "-1"], "--gid"),
    (["--dir-mode", "999"], "--dir-mode"),
    (["--file-mode", "01777"], "--file-mode"),
    (["--metadata-ttl", "soon"], "--metadata-ttl"),
    (["--negative-metadata-ttl", "-3"], "--negative-metadata-ttl"),
    (["--prefix", "no-slash"], "--prefix"),
    (["--part-size", "1024"], "--part-size"),
    (["--read-part-size", "1k"], "--read-part-size"),
    (["--write-part-size", "4194304"], "--write-part-size"),
    (["--max-threads", "0"], "--max-threads"),
    (["--sse", "rot13"], "--sse"),
    (["--sse-kms-key-id", "k"], "--sse-kms-key-id"),
    (["--storage-class", "cheap please"], "--storage-class"),
    (["--max-cache-size", "10"], "--max-cache-size"),
    (["--cache", "/nonexistent/cache"], "--cache"),
    (["--endpoint-url", "ftp://x"], "--endpoint-url"),
    # Keys in the URL are refused without repeating them (hunter2 must not reach stderr).
    (["--endpoint-url", "http://user:hunter2@127.0.0.1:9"], "--endpoint-url"),
    (["--region", "Mars 1"], "--region"),
    (["--allow-other", "--allow-root"], "--allow-root"),
    (["--read-only", "--allow-delete"], "--read-only"),
]


@pytest.mark.parametrize(("flags", "named"), BAD, ids=[named + "=" + "_".join(f) for f, named in BAD])
def test_bad_flag_is_refused_by_name(
    s3_server: EmbeddedS3Server, bucket: str, flags: list[str], named: str
) -> None:
    path = world_readable_dir("s3csi-bad-")
    try:
        result = run_mount_command(s3_server, bucket, str(path), "--foreground", *flags)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and named in lines[0], result.stderr
        assert "hunter2" not in result.stderr
        assert not is_mounted(path)
    finally:
        path.rmdir()


@pytest.mark.parametrize(
    ("directory", "named"),
    [
        ("/nonexistent/dir", "/nonexistent/dir"),
        ("/dev/fd/987", "/dev/fd/987"),
        ("/etc/hostname", "/etc/hostname"),
    ],
)
def test_bad_mount_point_is_refused(
    s3_server: EmbeddedS3Server, bucket: str, directory: str, named: str
) -> None:
    result = run_mount_command(s3_server, bucket, directory, "--foreground")
    assert result.returncode == 2
    assert named in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_unknown_bucket_fails_before_mounting(s3_server: EmbeddedS3Server, tmp_path: Path) -> None:
    result = run_mount_command(s3_server, "missing-bucket", str(tmp_path), "--foreground")
    assert result.returncode == 1
    # Log lines may come first (credentials found, …); the failure itself is one line, no traceback.
    errors = [line for line in result.stderr.splitlines() if line.startswith("s3csi mount: error:")]
    assert len(errors) == 1 and "NoSuchBucket" in errors[0] and "missing-bucket" in errors[0]
    assert "Traceback" not in result.stderr
    assert not is_mounted(tmp_path)
