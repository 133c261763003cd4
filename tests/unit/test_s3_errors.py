"""S3 failures → error classes, s3csi categories and errno; messages without secrets."""

from __future__ import annotations

import errno

import pytest

from s3csi import errors as categories
from s3csi.s3 import errors
from s3csi.s3.errors import make_error


@pytest.mark.parametrize(
    ("code", "status", "key", "cls", "category", "errno_value"),
    [
        ("NoSuchKey", 404, "k", errors.NoSuchKey, categories.NotFound, errno.ENOENT),
        ("NotFound", 404, "k", errors.NoSuchKey, categories.NotFound, errno.ENOENT),
        ("NotFound", 404, None, errors.NoSuchBucket, categories.NotFound, errno.ENOENT),
        ("NoSuchBucket", 404, "k", errors.NoSuchBucket, categories.NotFound, errno.ENOENT),
        ("NoSuchUpload", 404, "k", errors.NoSuchUpload, categories.NotFound, errno.ENOENT),
        ("AccessDenied", 403, "k", errors.AccessDenied, categories.PermissionDenied, errno.EACCES),
        ("Forbidden", 403, "k", errors.AccessDenied, categories.PermissionDenied, errno.EACCES),
        ("InvalidAccessKeyId", 403, None, errors.AccessDenied, categories.PermissionDenied, errno.EACCES),
        ("SignatureDoesNotMatch", 403, "k", errors.AccessDenied, categories.PermissionDenied, errno.EACCES),
        ("ExpiredToken", 400, "k", errors.AccessDenied, categories.PermissionDenied, errno.EACCES),
        ("BucketNotEmpty", 409, None, errors.BucketNotEmpty, categories.FailedPrecondition, errno.ENOTEMPTY),
        (
            "BucketAlreadyExists",
            409,
            None,
            errors.BucketAlreadyExists,
            categories.AlreadyExists,
            errno.EEXIST,
        ),
        ("InvalidBucketName", 400, None, errors.InvalidBucketName, categories.InvalidArgument, errno.EINVAL),
        ("EntityTooSmall", 400, "k", errors.InvalidRequest, categories.InvalidArgument, errno.EINVAL),
        ("SlowDown", 503, "k", errors.S3Unavailable, categories.Unavailable, errno.EIO),
        ("InternalError", 500, "k", errors.S3Unavailable, categories.Unavailable, errno.EIO),
        ("HTTP502", 502, "k", errors.S3Unavailable, categories.Unavailable, errno.EIO),
        ("SlowDown", 429, "k", errors.S3Unavailable, categories.Unavailable, errno.EIO),
        ("ConnectionError", None, "k", errors.S3Unavailable, categories.Unavailable, errno.EIO),
        ("Timeout", None, "k", errors.S3Unavailable, categories.Unavailable, errno.EIO),
        ("MalformedResponse", None, "k", errors.S3Error, categories.S3csiError, errno.EIO),
        ("PreconditionFailed", 412, "k", errors.S3Error, categories.S3csiError, errno.EIO),
    ],
)
def test_error_table(  # noqa: PLR0917  (one table row)
    code: str,
    status: int | None,
    key: str | None,
    cls: type[errors.S3Error],
    category: type[categories.S3csiError],
    errno_value: int,
) -> None:
    error = make_error("GetObject", code=code, message="m", status=status, bucket="b", key=key)
    assert type(error) is cls
    assert isinstance(error, category)
    assert error.errno == errno_value
    assert (error.code, error.status, error.bucket, error.key) == (code, status, "b", key)


def test_message_names_operation_object_code_and_region() -> None:
    error = make_error(
        "HeadBucket",
        code="PermanentRedirect",
        message="  The bucket\nis elsewhere ",
        status=301,
        bucket="b",
        key=None,
        region_hint="eu-west-1",
    )
    assert str(error) == (
        "HeadBucket s3://b: PermanentRedirect (HTTP 301): The bucket is elsewhere"
        " (the bucket is in region eu-west-1)"
    )


def test_long_messages_are_trimmed() -> None:
    error = make_error("GetObject", code="X", message="y" * 5000, status=400, bucket="b", key="k")
    assert len(str(error)) < errors.MAX_MESSAGE_CHARS + 100


def test_exhausted_is_unavailable_and_says_how_often() -> None:
    cause = make_error(
        "GetObject", code="SlowDown", message="Reduce your rate", status=503, bucket="b", key="k"
    )
    error = errors.exhausted(cause, 6)
    assert isinstance(error, errors.S3Unavailable)
    assert isinstance(error, categories.Unavailable)
    assert "gave up after 6 attempts" in str(error)
    assert (error.code, error.status, error.errno) == ("SlowDown", 503, errno.EIO)


@pytest.mark.parametrize(
    ("failure", "cls", "category", "errno_value"),
    [
        (
            categories.InvalidArgument("cannot read AWS credentials from /creds: MissingSectionHeaderError"),
            errors.CredentialsInvalid,
            categories.InvalidArgument,
            errno.EACCES,
        ),
        (
            categories.PermissionDenied("no AWS credentials found (looked in: environment)"),
            errors.CredentialsDenied,
            categories.PermissionDenied,
            errno.EACCES,
        ),
        (
            categories.NotFound("no such role"),
            errors.CredentialsDenied,
            categories.PermissionDenied,
            errno.EACCES,
        ),
        (
            categories.Unavailable("cannot reach STS at http://sts: ClientConnectorError"),
            errors.CredentialsUnavailable,
            categories.Unavailable,
            errno.EIO,
        ),
        (categories.Internal("odd"), errors.CredentialsUnavailable, categories.Unavailable, errno.EIO),
    ],
)
def test_credential_failures_map_through_the_hierarchy(
    failure: categories.S3csiError, cls: type[errors.S3Error], category: type[Exception], errno_value: int
) -> None:
    error = errors.credentials_error("GetObject", failure, bucket="b", key="k")
    assert type(error) is cls
    assert isinstance(error, category)
    assert error.errno == errno_value
    assert str(error) == f"GetObject s3://b/k: {cls.__name__}: no usable AWS credentials: {failure}"
    # The same cause whichever request hit it: the file system logs it once, not once per call.
    assert error.cause == errors.credentials_error("HeadObject", failure, bucket="b", key="other").cause


@pytest.mark.parametrize(
    ("cls", "errno_value"),
    [
        (errors.AccessDenied, errno.EACCES),
        (errors.NoSuchUpload, errno.ENOENT),
        (errors.S3Unavailable, errno.EIO),
        (errors.CredentialsInvalid, errno.EACCES),
        (errors.S3Error, errno.EIO),
    ],
)
def test_errno_comes_from_the_class_not_the_code(cls: type[errors.S3Error], errno_value: int) -> None:
    # A class raised with a code that would map elsewhere (or to nothing) keeps its own errno.
    assert cls("x", code="SomeCodeOfItsOwn", status=500).errno == errno_value


def test_subclass_of_a_mapped_class_inherits_its_errno() -> None:
    class NarrowerDenial(errors.AccessDenied):
        pass

    assert NarrowerDenial("x", code="Whatever").errno == errno.EACCES
