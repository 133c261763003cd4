"""The Events NodePublishVolume records on the workload pod (pure): why its volume waits for a Mountpoint
Pod, and why a publish failed, as a stable reason per cause (docs/observability.md#events). The team whose
pod it is reads them in ``kubectl describe pod``; kubelet's own FailedMount Event carries only the gRPC
message.

Messages are built from the driver's own error texts, which name the operation, the bucket and S3's code
and never a credential (s3/errors.py); nothing here adds one."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from s3csi.errors import InvalidArgument, S3csiError
from s3csi.kube.events import EventType
from s3csi.podmounter.runtime import MountpointPodUnavailable, Waiting

WAITING_REASON = "WaitingForMountpointPod"
# Seconds a publish waits for its Mountpoint Pod before the workload pod is told why, and between looks
# after that (a new cause is a new Event; the same cause counts up on its Event).
WAITING_EVENT_AFTER_S = 5.0
WAITING_EVENT_EVERY_S = 15.0

MOUNT_OPTION_REFUSED = "MountOptionRefused"
CREDENTIALS_REFUSED = "S3CredentialsRefused"
BUCKET_NOT_FOUND = "S3BucketNotFound"
ENDPOINT_UNREACHABLE = "S3EndpointUnreachable"
MOUNTPOINT_POD_NOT_READY = "MountpointPodNotReady"
MOUNT_FAILED = "MountFailed"

# S3's codes for a request whose credentials it does not accept: an unknown access key, a secret key that
# does not match it, a bad or expired session token; and for credentials it accepts whose identity may
# not do what was asked (which 403 without a body also means).
_CREDENTIALS_CODES = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "InvalidClientTokenId",
    "AccessDenied",
    "AllAccessDisabled",
)
_BUCKET_CODES = ("NoSuchBucket",)
# The S3 client's codes for failures below HTTP (s3/errors.py): no connection, a broken one, no answer.
_ENDPOINT_CODES = ("ConnectionError", "ConnectionLost", "Timeout")
_WORD = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True)
class PublishEvent:
    reason: str
    type: EventType
    message: str


def waiting_event(waiting: Waiting, *, volume_id: str, waited_s: float) -> PublishEvent:
    """The Event of a publish still waiting for its Mountpoint Pod: Warning when the wait looks stuck."""
    return PublishEvent(
        reason=WAITING_REASON,
        type="Warning" if waiting.stuck else "Normal",
        message=f"volume {volume_id} has waited {waited_s:.0f} s for its Mountpoint Pod: {waiting.problem}",
    )


def _s3_code(error: S3csiError, text: str, codes: Sequence[str]) -> str | None:
    """The first of ``codes`` the error carries: its own ``code`` (an S3Error), else a word of its text (an
    error the Mountpoint Pod sent back over mount.sock, which keeps the text, not the class)."""
    own = getattr(error, "code", None)
    if isinstance(own, str):
        return own if own in codes else None
    words = set(_WORD.findall(text))
    return next((code for code in codes if code in words), None)


def failure_event(error: S3csiError, *, volume_id: str, bucket: str | None) -> PublishEvent:
    """The Warning Event of a failed publish: the cause's reason, and a message that names it first."""
    text = str(error)
    shown_bucket = bucket or "of the volume"
    if isinstance(error, InvalidArgument) and "mount option " in text:
        return PublishEvent(
            MOUNT_OPTION_REFUSED,
            "Warning",
            f"volume {volume_id}: a mount option is refused: {text} (fix the PV's mountOptions)",
        )
    code = _s3_code(error, text, _CREDENTIALS_CODES)
    if code is not None or "(HTTP 403)" in text:
        code = code or "HTTP 403"
        return PublishEvent(
            CREDENTIALS_REFUSED,
            "Warning",
            f"volume {volume_id}: S3 refused the credentials for bucket {shown_bucket} ({code}): check the "
            f"keys of the volume's authenticationSource and what their identity may do: {text}",
        )
    code = _s3_code(error, text, _BUCKET_CODES)
    if code is not None:
        return PublishEvent(
            BUCKET_NOT_FOUND,
            "Warning",
            f"volume {volume_id}: bucket {shown_bucket} does not exist at the S3 endpoint ({code}): check "
            f"the volume's bucketName and the driver's endpoint and region: {text}",
        )
    code = _s3_code(error, text, _ENDPOINT_CODES)
    if code is not None:
        return PublishEvent(
            ENDPOINT_UNREACHABLE,
            "Warning",
            f"volume {volume_id}: the S3 endpoint cannot be reached ({code}): {text}",
        )
    if isinstance(error, MountpointPodUnavailable):
        return PublishEvent(MOUNTPOINT_POD_NOT_READY, "Warning", f"volume {volume_id}: {text}")
    return PublishEvent(MOUNT_FAILED, "Warning", f"volume {volume_id} cannot be mounted: {text}")
