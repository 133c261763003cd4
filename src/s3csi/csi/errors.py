"""The one mapping from s3csi's errors to gRPC status codes (CSI spec v1.12, "Error Scheme").

An exception that is not an :class:`~s3csi.errors.S3csiError` is a bug: it becomes INTERNAL (never
UNKNOWN), and the interceptor logs its traceback.
"""

from __future__ import annotations

import grpc

from s3csi import errors
from s3csi.s3.errors import S3Error


class Unimplemented(errors.S3csiError):
    """An RPC this driver does not implement (its capability is not advertised)."""


_CODES: tuple[tuple[type[errors.S3csiError], grpc.StatusCode], ...] = (
    # Order matters: S3 errors inherit from two classes (e.g. AccessDenied is also PermissionDenied)
    # and the first match wins.
    (Unimplemented, grpc.StatusCode.UNIMPLEMENTED),
    (errors.InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (errors.NotFound, grpc.StatusCode.NOT_FOUND),
    (errors.AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (errors.FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (errors.PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (errors.ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (errors.Unavailable, grpc.StatusCode.UNAVAILABLE),
    (errors.Aborted, grpc.StatusCode.ABORTED),
    (errors.Internal, grpc.StatusCode.INTERNAL),
)


def status_code(error: BaseException) -> grpc.StatusCode:
    """The gRPC code for ``error``: its class's, else INTERNAL."""
    if isinstance(error, S3Error) and type(error) is S3Error:
        # An S3 failure without a more precise class (e.g. an unexpected HTTP status): the store
        # answered, but not as it should have; the call may work later.
        return grpc.StatusCode.UNAVAILABLE
    for error_class, code in _CODES:
        if isinstance(error, error_class):
            return code
    return grpc.StatusCode.INTERNAL
