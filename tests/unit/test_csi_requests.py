"""Pure parts of the CSI surface: redaction, the error mapping, secrets, capabilities, target paths."""

from __future__ import annotations

import grpc
import pytest

from s3csi import errors
from s3csi.csi.errors import Unimplemented, status_code
from s3csi.csi.node import target_path
from s3csi.csi.proto import csi_pb2
from s3csi.csi.redaction import REDACTED, redact
from s3csi.csi.requests import secret_credentials, volume_capabilities
from s3csi.s3.errors import AccessDenied, NoSuchBucket, S3Error, S3Unavailable
from s3csi.volume.policy import AccessMode

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
TOKEN = (
    '{"sts.amazonaws.com":{"token":"eyJhbGciOi-secret-token","expirationTimestamp":"2026-11-27T06:00:00Z"}}'
)


def test_redaction_hides_every_secret_and_tokens_but_keeps_the_rest() -> None:
    request = csi_pb2.NodePublishVolumeRequest(
        volume_id="bucket:data",
        target_path="/var/lib/kubelet/pods/u/volumes/kubernetes.io~csi/pv/mount",
        secrets={"access_key_id": "AKID", "secret_access_key": SECRET},
        volume_context={"bucketName": "data", "csi.storage.k8s.io/serviceAccount.tokens": TOKEN},
        volume_capability=csi_pb2.VolumeCapability(
            mount=csi_pb2.VolumeCapability.MountVolume(mount_flags=["uid=1"])
        ),
    )
    redacted = redact(request)
    assert SECRET not in repr(redacted) and "secret-token" not in repr(redacted)
    assert redacted["secrets"] == {"access_key_id": REDACTED, "secret_access_key": REDACTED}
    assert redacted["volume_context"] == {
        "bucketName": "data",
        "csi.storage.k8s.io/serviceAccount.tokens": REDACTED,
    }
    assert redacted["volume_id"] == "bucket:data"
    assert redacted["volume_capability"]["mount"]["mount_flags"] == ["uid=1"]


@pytest.mark.parametrize(
    "request_",
    [
        csi_pb2.CreateVolumeRequest(name="n", secrets={"secret_access_key": SECRET}),
        csi_pb2.DeleteVolumeRequest(volume_id="v", secrets={"secret_access_key": SECRET}),
        csi_pb2.ValidateVolumeCapabilitiesRequest(volume_id="v", secrets={"k": SECRET}),
        csi_pb2.NodeStageVolumeRequest(volume_id="v", secrets={"k": SECRET}),
        csi_pb2.NodeExpandVolumeRequest(volume_id="v", secrets={"k": SECRET}),
        csi_pb2.CreateSnapshotRequest(name="s", secrets={"k": SECRET}),
    ],
)
def test_redaction_covers_every_secrets_field(request_: object) -> None:
    assert SECRET not in repr(redact(request_))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.InvalidArgument("x"), grpc.StatusCode.INVALID_ARGUMENT),
        (errors.NotFound("x"), grpc.StatusCode.NOT_FOUND),
        (errors.AlreadyExists("x"), grpc.StatusCode.ALREADY_EXISTS),
        (errors.FailedPrecondition("x"), grpc.StatusCode.FAILED_PRECONDITION),
        (errors.PermissionDenied("x"), grpc.StatusCode.PERMISSION_DENIED),
        (errors.ResourceExhausted("x"), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (errors.Unavailable("x"), grpc.StatusCode.UNAVAILABLE),
        (errors.Aborted("x"), grpc.StatusCode.ABORTED),
        (errors.Internal("x"), grpc.StatusCode.INTERNAL),
        (Unimplemented("x"), grpc.StatusCode.UNIMPLEMENTED),
        (AccessDenied("x", code="AccessDenied"), grpc.StatusCode.PERMISSION_DENIED),
        (NoSuchBucket("x", code="NoSuchBucket"), grpc.StatusCode.NOT_FOUND),
        (S3Unavailable("x", code="SlowDown"), grpc.StatusCode.UNAVAILABLE),
        (S3Error("x", code="PermanentRedirect"), grpc.StatusCode.UNAVAILABLE),
        (errors.S3csiError("x"), grpc.StatusCode.INTERNAL),
        (KeyError("x"), grpc.StatusCode.INTERNAL),
    ],
)
def test_error_mapping(error: BaseException, code: grpc.StatusCode) -> None:
    assert status_code(error) == code


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        ({"access_key_id": "AKID"}, "secret_access_key is required"),
        ({"secret_access_key": SECRET}, "access_key_id is required"),
        ({"access_key_id": "", "secret_access_key": SECRET}, "access_key_id is required"),
        ({"access_key_id": "AKID", "secret_access_key": SECRET, "password": SECRET}, "unknown key"),
        ({"access_key_id": "AKID", "secret_access_key": SECRET + "\n"}, "secret_access_key contains"),
        ({"access_key_id": " AKID", "secret_access_key": SECRET}, "access_key_id contains"),
    ],
)
def test_bad_secrets_name_the_key_never_the_value(secrets: dict[str, str], message: str) -> None:
    with pytest.raises(errors.InvalidArgument, match=message) as raised:
        secret_credentials(secrets)
    assert SECRET not in str(raised.value)


def test_good_secrets() -> None:
    assert secret_credentials({}) is None
    credentials = secret_credentials(
        {"access_key_id": "AKID", "secret_access_key": SECRET, "session_token": "t"}
    )
    assert credentials is not None
    assert (credentials.access_key_id, credentials.secret_access_key, credentials.session_token) == (
        "AKID",
        SECRET,
        "t",
    )
    assert SECRET not in repr(credentials)


def test_capabilities() -> None:
    mount = csi_pb2.VolumeCapability.MountVolume(mount_flags=["uid=1"], volume_mount_group="5")
    mode = csi_pb2.VolumeCapability.AccessMode(
        mode=csi_pb2.VolumeCapability.AccessMode.MULTI_NODE_READER_ONLY
    )
    (parsed,) = volume_capabilities([csi_pb2.VolumeCapability(mount=mount, access_mode=mode)])
    assert (parsed.access_mode, parsed.mount_flags, parsed.volume_mount_group) == (
        AccessMode.MULTI_NODE_READER_ONLY,
        ("uid=1",),
        "5",
    )
    unknown_mode = csi_pb2.VolumeCapability(mount=mount, access_mode={"mode": 42})
    with pytest.raises(errors.InvalidArgument, match="42"):
        volume_capabilities([unknown_mode])


KUBELET = "/var/lib/kubelet"


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        (f"{KUBELET}/pods/uid/volumes/kubernetes.io~csi/pv/mount", True),
        (f"{KUBELET}/plugins/kubernetes.io/csi/x/mount", True),
        (KUBELET, False),
        (f"{KUBELET}/", False),
        (f"{KUBELET}2/pods/x", False),
        (f"{KUBELET}/pods/../../../etc", False),
        (f"{KUBELET}//pods/x", False),
        (f"{KUBELET}/pods/./x", False),
        ("pods/x", False),
        (f"{KUBELET}/pods/x\0y", False),
        ("/etc/passwd", False),
    ],
)
def test_target_paths(path: str, ok: bool) -> None:
    if ok:
        assert target_path(path, KUBELET) == path
    else:
        with pytest.raises(errors.InvalidArgument, match="target_path"):
            target_path(path, KUBELET)
