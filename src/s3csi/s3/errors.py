"""S3 failures, translated once from HTTP statuses, S3 error bodies and transport exceptions.

    S3Error (S3csiError)                         code, status, bucket, key; .errno for the file system
     ├── NoSuchKey, NoSuchBucket, NoSuchUpload   (also NotFound)            → ENOENT
     ├── AccessDenied                            (also PermissionDenied)    → EACCES
     ├── BucketNotEmpty                          (also FailedPrecondition)  → ENOTEMPTY
     ├── BucketAlreadyExists                     (also AlreadyExists)       → EEXIST
     ├── InvalidBucketName, InvalidRequest       (also InvalidArgument)     → EINVAL
     ├── S3Unavailable                           (also Unavailable)         → EIO
     │                                           retries exhausted, endpoint down, timeouts
     ├── CredentialsInvalid                      (also InvalidArgument)     → EACCES
     │                                           e.g. a garbled or unreadable credentials file
     ├── CredentialsDenied                       (also PermissionDenied)    → EACCES
     │                                           none found, or the source refused (STS AccessDenied)
     └── CredentialsUnavailable                  (also Unavailable)         → EIO
                                                 the source cannot be reached (STS, instance metadata)

The three ``Credentials*`` classes are failures to *sign* the request (its credentials could not be
had), raised by the client before anything is sent; their ``cause`` is the credential source's own
message, the same for every request, so the file system logs them once per interval, not per call.

The message names the operation, the object and S3's code and message. It never holds a header, a
credential or a signature: S3 echoes those in some error bodies (SignatureDoesNotMatch carries the
string to sign), so only ``Code``, ``Message`` and ``Region`` are ever read from a body.
"""

from __future__ import annotations

import errno as errno_codes

from s3csi.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    S3csiError,
    Unavailable,
)

# S3's own message is kept, trimmed: it is for humans, and a store may put anything in it.
MAX_MESSAGE_CHARS = 200

# Codes the client itself gives to failures below HTTP: no connection could be made (the request
# never left), the connection broke during the exchange, no answer in time.
CONNECTION_ERROR = "ConnectionError"
CONNECTION_LOST = "ConnectionLost"
TIMEOUT = "Timeout"
# Codes for which the server certainly did not act on the request (throttling): safe to retry even
# a request that is not idempotent.
THROTTLING_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded"})
# Codes that are transient whatever their status.
TRANSIENT_CODES = THROTTLING_CODES | frozenset(
    {"RequestTimeout", "InternalError", "ServiceUnavailable", CONNECTION_ERROR, CONNECTION_LOST, TIMEOUT}
)


class S3Error(S3csiError):
    """A failed S3 call. ``code`` is S3's error code, or ``ConnectionError``/``Timeout`` below HTTP."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status: int | None = None,
        bucket: str | None = None,
        key: str | None = None,
        cause: str | None = None,
        bucket_region: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.bucket = bucket
        self.key = key
        # The region S3's answer says the bucket is in (x-amz-bucket-region, or <Region> in the body).
        self.bucket_region = bucket_region
        # What went wrong, without which call hit it: reports with the same cause are one failure
        # (see s3csi.log_limit). By default the message, which names the call and the object.
        self.cause = cause or message

    @property
    def errno(self) -> int:
        """From the class of the error itself: a class can be raised with any code."""
        return errno_of_class(type(self))


class NoSuchKey(S3Error, NotFound):
    pass


class NoSuchBucket(S3Error, NotFound):
    pass


class NoSuchUpload(S3Error, NotFound):
    pass


class AccessDenied(S3Error, PermissionDenied):
    pass


class BucketNotEmpty(S3Error, FailedPrecondition):
    pass


class BucketAlreadyExists(S3Error, AlreadyExists):
    pass


class InvalidBucketName(S3Error, InvalidArgument):
    pass


class InvalidRequest(S3Error, InvalidArgument):
    pass


class S3Unavailable(S3Error, Unavailable):
    pass


class CredentialsInvalid(S3Error, InvalidArgument):
    pass


class CredentialsDenied(S3Error, PermissionDenied):
    pass


class CredentialsUnavailable(S3Error, Unavailable):
    pass


_CLASS_BY_CODE: dict[str, type[S3Error]] = {
    "NoSuchKey": NoSuchKey,
    "NoSuchBucket": NoSuchBucket,
    "NoSuchUpload": NoSuchUpload,
    "AccessDenied": AccessDenied,
    "AllAccessDisabled": AccessDenied,
    "InvalidAccessKeyId": AccessDenied,
    "SignatureDoesNotMatch": AccessDenied,
    "InvalidToken": AccessDenied,
    "ExpiredToken": AccessDenied,
    "AccountProblem": AccessDenied,
    "BucketNotEmpty": BucketNotEmpty,
    "BucketAlreadyExists": BucketAlreadyExists,
    "InvalidBucketName": InvalidBucketName,
    "InvalidRequest": InvalidRequest,
    "InvalidArgument": InvalidRequest,
    "EntityTooSmall": InvalidRequest,
    "EntityTooLarge": InvalidRequest,
    "InvalidPart": InvalidRequest,
    "InvalidPartOrder": InvalidRequest,
    "KeyTooLongError": InvalidRequest,
}

_ERRNO_BY_CLASS: dict[type[S3Error], int] = {
    NoSuchKey: errno_codes.ENOENT,
    NoSuchBucket: errno_codes.ENOENT,
    NoSuchUpload: errno_codes.ENOENT,
    AccessDenied: errno_codes.EACCES,
    BucketNotEmpty: errno_codes.ENOTEMPTY,
    BucketAlreadyExists: errno_codes.EEXIST,
    InvalidBucketName: errno_codes.EINVAL,
    InvalidRequest: errno_codes.EINVAL,
    CredentialsInvalid: errno_codes.EACCES,
    CredentialsDenied: errno_codes.EACCES,
}

# The credential source's failure → the error of the request it could not sign; first match wins.
# Unavailable, and anything else, is CredentialsUnavailable (EIO): worth trying again later.
_CREDENTIALS_CLASS_BY_FAILURE: tuple[tuple[type[S3csiError], type[S3Error]], ...] = (
    (InvalidArgument, CredentialsInvalid),
    (PermissionDenied, CredentialsDenied),
    (NotFound, CredentialsDenied),
)


def error_class(code: str, status: int | None, *, key: str | None = None) -> type[S3Error]:
    """The class for an S3 code, falling back on the status when the code is unknown or absent
    (HEAD responses have no body)."""
    if code in _CLASS_BY_CODE:
        return _CLASS_BY_CODE[code]
    if status == 404:
        return NoSuchKey if key else NoSuchBucket
    if status == 403:
        return AccessDenied
    if is_transient_failure(code, status):
        return S3Unavailable
    return S3Error


def is_transient_failure(code: str, status: int | None) -> bool:
    """Throttling, 5xx, request timeouts and connection errors: worth trying again later."""
    return code in TRANSIENT_CODES or (status is not None and (status == 429 or status >= 500))


def errno_of_class(cls: type[S3Error]) -> int:
    """The errno of the nearest class in ``cls``'s ancestry that has one; EIO for the rest."""
    for ancestor in cls.__mro__:
        if ancestor in _ERRNO_BY_CLASS:
            return _ERRNO_BY_CLASS[ancestor]
    return errno_codes.EIO


def code_for_status(status: int) -> str:
    """A code for a response without an error body (HEAD, or a proxy's HTML page)."""
    return {
        301: "PermanentRedirect",
        304: "NotModified",
        400: "BadRequest",
        403: "AccessDenied",
        404: "NotFound",
        409: "Conflict",
        412: "PreconditionFailed",
        416: "InvalidRange",
        429: "SlowDown",
        500: "InternalError",
        503: "ServiceUnavailable",
    }.get(status, f"HTTP{status}")


def make_error(
    operation: str,
    *,
    code: str,
    message: str,
    status: int | None,
    bucket: str | None,
    key: str | None,
    region_hint: str | None = None,
) -> S3Error:
    """Build the error for one failed call, with an operator-facing message."""
    where = _where(bucket, key)
    text = " ".join(message.split())[:MAX_MESSAGE_CHARS]
    detail = f"{code} (HTTP {status})" if status is not None else code
    line = f"{operation} {where}: {detail}" + (f": {text}" if text else "")
    if region_hint:
        line += f" (the bucket is in region {region_hint})"
    cls = error_class(code, status, key=key)
    return cls(line, code=code, status=status, bucket=bucket, key=key, bucket_region=region_hint)


def credentials_error(operation: str, failure: S3csiError, *, bucket: str | None, key: str | None) -> S3Error:
    """The error of a request that could not be signed because its credentials could not be had.
    ``failure`` is the credential source's error, whose message names where it looked, never a value."""
    cls: type[S3Error] = next(
        (c for base, c in _CREDENTIALS_CLASS_BY_FAILURE if isinstance(failure, base)), CredentialsUnavailable
    )
    cause = f"no usable AWS credentials: {failure}"
    return cls(
        f"{operation} {_where(bucket, key)}: {cls.__name__}: {cause}",
        code=cls.__name__,
        bucket=bucket,
        key=key,
        cause=cause,
    )


def _where(bucket: str | None, key: str | None) -> str:
    return f"s3://{bucket}/{key}" if key is not None else f"s3://{bucket}" if bucket else "S3"


def exhausted(error: S3Error, attempts: int) -> S3Unavailable:
    """The error for a transient failure that lasted through every attempt it was allowed."""
    return S3Unavailable(
        f"{error} (gave up after {attempts} attempt{'s' if attempts > 1 else ''})",
        code=error.code,
        status=error.status,
        bucket=error.bucket,
        key=error.key,
    )
