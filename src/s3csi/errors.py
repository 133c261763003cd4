"""The one error hierarchy of s3csi.

    S3csiError                  a failure with a message a cluster operator understands
     ├── InvalidArgument        the request or the configuration is wrong; retrying will not help
     ├── NotFound               the named volume, bucket, object or path does not exist
     ├── AlreadyExists          the name exists with other parameters
     ├── FailedPrecondition     the system is not in a state where the call can succeed
     ├── PermissionDenied       the credentials in use may not do this
     ├── ResourceExhausted      a limit was reached
     ├── Unavailable            a dependency (S3 endpoint, Mountpoint Pod) cannot be reached; retry later
     ├── Aborted                a conflicting operation on the same object is in progress
     └── Internal               a bug or an unexpected state; the traceback is logged

Each layer translates the errors of the library below it into these once (``raise … from exc``);
the CSI layer maps them to gRPC status codes in one place, the CLI to one line on stderr.
"""

from __future__ import annotations


class S3csiError(Exception):
    """Base class. ``str(error)`` is the operator-facing message: never put a secret value in it."""


class InvalidArgument(S3csiError):
    pass


class NotFound(S3csiError):
    pass


class AlreadyExists(S3csiError):
    pass


class FailedPrecondition(S3csiError):
    pass


class PermissionDenied(S3csiError):
    pass


class ResourceExhausted(S3csiError):
    pass


class Unavailable(S3csiError):
    pass


class Aborted(S3csiError):
    pass


class Internal(S3csiError):
    pass
