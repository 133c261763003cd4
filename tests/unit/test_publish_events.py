"""The Events of NodePublishVolume on the workload pod (podmounter/publish_events.py), the Mountpoint Pod
states that make a wait stuck (mountpoint_status.pod_stuck), and the Event objects (kube/events.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from s3csi.errors import FailedPrecondition, InvalidArgument, S3csiError, Unavailable
from s3csi.kube.events import involved_pod, object_event, repeat_patch
from s3csi.podmounter import protocol
from s3csi.podmounter.mountpoint_status import pod_stuck
from s3csi.podmounter.publish_events import (
    BUCKET_NOT_FOUND,
    CREDENTIALS_REFUSED,
    ENDPOINT_UNREACHABLE,
    MOUNT_FAILED,
    MOUNT_OPTION_REFUSED,
    MOUNTPOINT_POD_NOT_READY,
    WAITING_REASON,
    failure_event,
    waiting_event,
)
from s3csi.podmounter.runtime import MountpointPodUnavailable, Waiting
from s3csi.s3.errors import make_error

BUCKET = "team-a-data"


def from_mounter(error: S3csiError) -> S3csiError:
    """The error as the node plugin gets it back over mount.sock: the class by name and the text."""
    reply = protocol.error_reply(error)
    return protocol.REASONS[reply["reason"]](f"Mountpoint Pod refused the mount: {reply['message']}")


def s3(code: str, status: int | None, message: str = "", bucket: str = BUCKET) -> S3csiError:
    return make_error("HeadBucket", code=code, message=message, status=status, bucket=bucket, key=None)


FAILURES: list[tuple[str, S3csiError, str, list[str]]] = [
    (
        "unknown access key",
        from_mounter(s3("InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist")),
        CREDENTIALS_REFUSED,
        ["S3 refused the credentials", BUCKET, "InvalidAccessKeyId"],
    ),
    (
        "wrong secret key",
        from_mounter(s3("SignatureDoesNotMatch", 403, "The request signature we calculated does not match")),
        CREDENTIALS_REFUSED,
        ["S3 refused the credentials", "SignatureDoesNotMatch"],
    ),
    (
        "identity without access",
        from_mounter(s3("AccessDenied", 403, "Access Denied")),
        CREDENTIALS_REFUSED,
        ["AccessDenied", BUCKET],
    ),
    (
        "a 403 without a code S3 named",
        FailedPrecondition(f"HeadBucket bucket {BUCKET}: Forbidden (HTTP 403)"),
        CREDENTIALS_REFUSED,
        ["HTTP 403"],
    ),
    (
        "missing bucket",
        from_mounter(s3("NoSuchBucket", 404, "The specified bucket does not exist")),
        BUCKET_NOT_FOUND,
        [f"bucket {BUCKET} does not exist", "NoSuchBucket"],
    ),
    (
        "missing bucket, as the S3 client raises it",
        s3("NoSuchBucket", 404),
        BUCKET_NOT_FOUND,
        ["NoSuchBucket"],
    ),
    (
        "a bucket whose name reads like a code is still only missing",
        from_mounter(s3("NoSuchBucket", 404, bucket="accessdenied-logs")),
        BUCKET_NOT_FOUND,
        ["NoSuchBucket"],
    ),
    (
        "endpoint down",
        from_mounter(s3("ConnectionError", None, "Cannot connect to host 127.0.0.1:9")),
        ENDPOINT_UNREACHABLE,
        ["cannot be reached", "ConnectionError"],
    ),
    (
        "no answer",
        from_mounter(s3("Timeout", None)),
        ENDPOINT_UNREACHABLE,
        ["Timeout"],
    ),
    (
        "a mount option the policy refuses",
        InvalidArgument("mount option '--foo': unknown option --foo"),
        MOUNT_OPTION_REFUSED,
        ["mount option '--foo'", "mountOptions"],
    ),
    (
        "another invalid argument is not an option",
        InvalidArgument("volume attribute fsUser 'x' must be a numeric id"),
        MOUNT_FAILED,
        ["fsUser"],
    ),
    (
        "the Mountpoint Pod never got ready",
        MountpointPodUnavailable("Mountpoint Pod not ready for pod u after 90 s: it is Pending because …"),
        MOUNTPOINT_POD_NOT_READY,
        ["not ready", "Pending because"],
    ),
    (
        "anything else",
        Unavailable("the file system at /x did not answer within 30s"),
        MOUNT_FAILED,
        ["cannot be mounted", "did not answer"],
    ),
]


@pytest.mark.parametrize(
    ("error", "reason", "named"), [row[1:] for row in FAILURES], ids=[r[0] for r in FAILURES]
)
def test_a_failed_publish_is_named_by_its_cause(error: S3csiError, reason: str, named: list[str]) -> None:
    event = failure_event(error, volume_id="vol-1", bucket=BUCKET)
    assert (event.reason, event.type) == (reason, "Warning")
    assert event.message.startswith("volume vol-1")
    for part in named:
        assert part in event.message, (part, event.message)


def mountpoint_pod(**status: Any) -> dict[str, Any]:
    metadata = status.pop("metadata", {})
    return {"metadata": {"name": "mp", **metadata}, "spec": {}, "status": status}


def waiting(reason: str) -> dict[str, Any]:
    return {"name": "mounter", "state": {"waiting": {"reason": reason}}}


UNSCHEDULABLE = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes"}

STUCK: list[tuple[str, dict[str, Any], bool]] = [
    ("unschedulable", mountpoint_pod(phase="Pending", conditions=[UNSCHEDULABLE]), True),
    (
        "image cannot be pulled",
        mountpoint_pod(phase="Pending", containerStatuses=[waiting("ErrImagePull")]),
        True,
    ),
    ("pull back-off", mountpoint_pod(phase="Pending", containerStatuses=[waiting("ImagePullBackOff")]), True),
    ("crash loop", mountpoint_pod(phase="Running", containerStatuses=[waiting("CrashLoopBackOff")]), True),
    ("ended", mountpoint_pod(phase="Failed"), True),
    (
        "being created",
        mountpoint_pod(phase="Pending", containerStatuses=[waiting("ContainerCreating")]),
        False,
    ),
    ("not scheduled yet", mountpoint_pod(phase="Pending"), False),
    (
        "being deleted",
        mountpoint_pod(phase="Failed", metadata={"deletionTimestamp": "2026-12-05T00:00:00Z"}),
        False,
    ),
]


@pytest.mark.parametrize(("pod", "stuck"), [row[1:] for row in STUCK], ids=[r[0] for r in STUCK])
def test_a_wait_is_stuck_only_when_someone_must_act(pod: dict[str, Any], stuck: bool) -> None:
    assert pod_stuck(pod) is stuck


@pytest.mark.parametrize(("stuck", "type"), [(True, "Warning"), (False, "Normal")])
def test_a_waiting_publish_names_the_cause(stuck: bool, type: str) -> None:
    event = waiting_event(
        Waiting("Mountpoint Pod s3csi-mounters/mp is Pending", stuck), volume_id="v", waited_s=5.2
    )
    assert (event.reason, event.type) == (WAITING_REASON, type)
    assert (
        event.message
        == "volume v has waited 5 s for its Mountpoint Pod: Mountpoint Pod s3csi-mounters/mp is Pending"
    )


NOW = datetime(2026, 12, 5, 7, 0, 0, tzinfo=UTC)
POD = {"metadata": {"namespace": "team-a", "name": "app", "uid": "u-1"}}


def test_an_event_is_named_by_its_object_reason_and_cause() -> None:
    common: dict[str, Any] = {"component": "c", "instance": "i", "now": NOW}
    pod = involved_pod(POD)
    first = object_event(pod, reason="R", message="m", once_per="cause", type="Normal", **common)
    assert first["metadata"]["namespace"] == "team-a" and first["metadata"]["name"].startswith("app.")
    assert first["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "app",
        "namespace": "team-a",
        "uid": "u-1",
    }
    assert (first["type"], first["count"], first["firstTimestamp"]) == ("Normal", 1, "2026-12-05T07:00:00Z")
    again = object_event(pod, reason="R", message="m, later", once_per="cause", **common)
    assert again["metadata"]["name"] == first["metadata"]["name"]  # the same Event: counted, not repeated
    other = object_event(first["involvedObject"], reason="R", message="m", once_per="another", **common)
    assert other["metadata"]["name"] != first["metadata"]["name"]
    assert repeat_patch(again, 3, NOW) == {
        "count": 4,
        "lastTimestamp": "2026-12-05T07:00:00Z",
        "message": "m, later",
    }
