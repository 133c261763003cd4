"""Credentials the standard AWS way, through a real mount on a moto server that enforces IAM: a shared
credentials file that changes is used from the next request, without a remount."""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from s3csi.s3 import Credentials
from tests.integration.fs_helpers import mounted
from tests.integration.iam_support import bucket_policy, iam_world

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("privileged")]


def write_credentials(path: Path, credentials: Credentials) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(
        f"[team]\naws_access_key_id = {credentials.access_key_id}\n"
        f"aws_secret_access_key = {credentials.secret_access_key}\n"
    )
    os.replace(temporary, path)


def test_rotated_credentials_file_is_used_without_remount(tmp_path: Path) -> None:
    with iam_world() as world:
        bucket = world.bucket(f"rotate-{uuid.uuid4().hex[:12]}")
        allowed = world.user("fs-reader", bucket_policy(bucket, ["s3:*"]))
        denied = world.user("fs-nobody", None)
        s3 = world.client("s3")
        for name in ("one", "two", "three"):
            s3.put_object(Bucket=bucket, Key=name, Body=name.encode())
        credentials = tmp_path / "credentials"
        write_credentials(credentials, allowed)
        env = {
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
            "AWS_CONFIG_FILE": str(tmp_path / "config"),
            "AWS_PROFILE": "team",
            "HOME": str(tmp_path),
        }
        flags = ("--metadata-ttl", "0")
        with mounted(world.server, bucket, *flags, env=env, keys_in_env=False) as fs:
            assert (fs.path / "one").read_bytes() == b"one"
            write_credentials(credentials, denied)
            with pytest.raises(PermissionError):  # S3's AccessDenied is EACCES
                (fs.path / "two").read_bytes()
            write_credentials(credentials, allowed)
            assert (fs.path / "three").read_bytes() == b"three"
        assert denied.secret_access_key not in fs.final_log


def _garble(path: Path) -> None:
    path.write_text("this is not an INI file\naws_secret_access_key = garbled-secret\n")


def _make_unreadable(path: Path) -> None:
    # The mount runs as root, which reads any mode: a directory in the file's place cannot be read.
    path.unlink()
    path.mkdir()


def _remove(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize(
    ("break_file", "cause"),
    [
        (_garble, "cannot read AWS credentials from {path}: MissingSectionHeaderError"),
        (_make_unreadable, "cannot read AWS credentials from {path}: IsADirectoryError"),
        (_remove, "no AWS credentials found (looked in: environment, shared-credentials-file)"),
    ],
)
def test_broken_credentials_file_fails_each_call_with_one_log_line(  # noqa: PLR0917 (one table row)
    s3_server: EmbeddedS3Server,
    s3: Any,
    bucket: str,
    tmp_path: Path,
    break_file: Callable[[Path], None],
    cause: str,
) -> None:
    names = [f"object-{n}" for n in range(5)]
    for name in names:
        s3.put_object(Bucket=bucket, Key=name, Body=b"data")
    credentials = tmp_path / "credentials"
    write_credentials(credentials, Credentials(s3_server.access_key_id, s3_server.secret_access_key))
    env = {
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_PROFILE": "team",
        "HOME": str(tmp_path),
    }
    failures: list[int | None] = []
    with mounted(s3_server, bucket, "--metadata-ttl", "0", env=env, keys_in_env=False) as fs:
        assert (fs.path / names[0]).read_bytes() == b"data"
        break_file(credentials)
        for name in names:
            for call in (os.stat, lambda p: Path(p).read_bytes(), lambda p: os.listdir(os.path.dirname(p))):
                with pytest.raises(OSError) as excinfo:
                    call(str(fs.path / name))
                failures.append(excinfo.value.errno)
    assert failures == [errno.EACCES] * len(failures)
    lines = [line for line in fs.final_log.splitlines() if "no usable AWS credentials" in line]
    assert len(lines) == 1, fs.final_log
    assert cause.format(path=credentials) in lines[0]
    assert "Traceback" not in fs.final_log
    assert "garbled-secret" not in fs.final_log
