"""A request whose credentials cannot be had fails like any other S3 call: an S3Error of the class its
cause maps to (EACCES or EIO in a mount), raised before anything is sent."""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import pytest

from s3csi import errors as categories
from s3csi.s3 import errors
from s3csi.s3.client import S3Client
from s3csi.s3.credentials import CredentialChain, Credentials, SharedCredentialsFile
from s3csi.s3.settings import S3Settings

# Port 9 (discard) on the loopback: nothing listens, and nothing is sent anyway.
SETTINGS = S3Settings(endpoint_url="http://127.0.0.1:9", force_path_style=True, max_attempts=3)


class FailingSource:
    def __init__(self, failure: Exception) -> None:
        self.failure = failure
        self.calls = 0

    async def get(self) -> Credentials:
        self.calls += 1
        raise self.failure


@pytest.mark.parametrize(
    ("failure", "cls", "errno_value"),
    [
        (
            categories.InvalidArgument("cannot read AWS credentials from /c: ParsingError"),
            errors.CredentialsInvalid,
            errno.EACCES,
        ),
        (categories.PermissionDenied("no AWS credentials found"), errors.CredentialsDenied, errno.EACCES),
        (
            categories.Unavailable("STS at http://sts did not answer within 5s"),
            errors.CredentialsUnavailable,
            errno.EIO,
        ),
    ],
)
def test_credential_failure_is_the_requests_error(
    failure: Exception, cls: type[errors.S3Error], errno_value: int
) -> None:
    source = FailingSource(failure)

    async def scenario() -> errors.S3Error:
        async with S3Client(SETTINGS, source) as s3:
            with pytest.raises(cls) as excinfo:
                await s3.head_object("bucket", "key")
            return excinfo.value

    error = asyncio.run(scenario())
    assert error.errno == errno_value
    assert str(error).startswith(f"HeadObject s3://bucket/key: {cls.__name__}: ")
    assert error.__cause__ is failure
    assert source.calls == 1  # not retried: the source's own failure is final for this request


def test_garbled_credentials_file_names_the_file_never_its_content(tmp_path: Path) -> None:
    path = tmp_path / "credentials"
    path.write_text("aws_secret_access_key = hunter2-secret\n")  # no [section] header
    files = SharedCredentialsFile(str(path), str(tmp_path / "config"), "default")

    async def scenario() -> errors.S3Error:
        async with S3Client(SETTINGS, CredentialChain([files])) as s3:
            with pytest.raises(errors.CredentialsInvalid) as excinfo:
                await s3.get_object("bucket", "key")
            return excinfo.value

    error = asyncio.run(scenario())
    assert error.errno == errno.EACCES
    assert str(path) in str(error) and "hunter2" not in str(error)
