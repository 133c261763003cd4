"""The label tables of the mounter's metrics: errno names and S3 error classes, and the volume id of a mount
made by hand."""

from __future__ import annotations

import errno

import pytest

from s3csi.fs.metrics import ERROR_CLASSES, OTHER_ERRNO, default_volume_id, errno_name, error_class


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (errno.ENOENT, "ENOENT"),
        (errno.EACCES, "EACCES"),
        (errno.EPERM, "EPERM"),
        (errno.EIO, "EIO"),
        (errno.ENOTSUP, "ENOTSUP"),  # one value with two names on Linux: Python names it ENOTSUP
        (errno.ETIMEDOUT, "ETIMEDOUT"),
        (100_000, OTHER_ERRNO),
    ],
)
def test_errno_name(code: int, name: str) -> None:
    assert errno_name(code) == name


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("SlowDown", 503, "throttled"),
        ("Throttling", 400, "throttled"),
        ("TooManyRequests", 429, "throttled"),
        ("Timeout", None, "timeout"),
        ("RequestTimeout", 400, "timeout"),
        ("ConnectionError", None, "network"),
        ("ConnectionLost", None, "network"),
        ("TLSError", None, "network"),
        ("InternalError", 500, "server"),
        ("InternalError", 200, "server"),  # in the body of a 200 (CompleteMultipartUpload)
        ("ServiceUnavailable", 503, "server"),
        ("NotImplemented", 501, "server"),
        ("MalformedResponse", None, "server"),
        ("NoSuchKey", 404, "client"),
        ("AccessDenied", 403, "client"),
        ("PreconditionFailed", 412, "client"),
        ("InvalidAccessKeyId", 403, "client"),
        ("CredentialsUnavailable", None, "client"),  # nothing was sent
    ],
)
def test_error_class(code: str, status: int | None, kind: str) -> None:
    assert error_class(code, status) == kind
    assert kind in ERROR_CLASSES


@pytest.mark.parametrize(
    ("bucket", "prefix", "volume_id"),
    [("b", "", "b"), ("b", "team/", "b/team"), ("b", "a/b/", "b/a/b")],
)
def test_default_volume_id(bucket: str, prefix: str, volume_id: str) -> None:
    assert default_volume_id(bucket, prefix) == volume_id
