"""Credentials the standard AWS way, through a real mount on a moto server that enforces IAM: a shared
credentials file that changes is used from the next request, without a remount."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

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
