"""The pure parts of reading pod identity from the Kubernetes API: which annotations count, the uid
check, the service account's name, the translation of API answers, and publish_spec using them."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from kubernetes_asyncio.client import V1ObjectMeta, V1Pod, V1PodSpec, V1ServiceAccount

from s3csi.csi.node import publish_spec
from s3csi.csi.proto import csi_pb2
from s3csi.errors import (
    Aborted,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    S3csiError,
    Unavailable,
)
from s3csi.kube.client import api_error
from s3csi.kube.identity import (
    NO_IDENTITY,
    PodIdentityInputs,
    check_pod_uid,
    pod_identity_inputs,
    service_account_name,
)

ROLE = "arn:aws:iam::123456789012:role/team-a"
FS_USER = "s3csi.io/fs-user"
ROLE_ANNOTATION = "eks.amazonaws.com/role-arn"


def a_pod(annotations: dict[str, str] | None = None, uid: str = "u-1", account: str | None = None) -> V1Pod:
    metadata = V1ObjectMeta(name="web-0", namespace="team-a", uid=uid, annotations=annotations)
    spec = None if account is None else V1PodSpec(containers=[], service_account_name=account)
    return V1Pod(kind="Pod", metadata=metadata, spec=spec)


def an_account(annotations: dict[str, str] | None) -> V1ServiceAccount:
    metadata = V1ObjectMeta(name="sa", namespace="team-a", annotations=annotations)
    return V1ServiceAccount(kind="ServiceAccount", metadata=metadata)


@pytest.mark.parametrize(
    ("pod", "account", "expected"),
    [
        (a_pod(), None, (None, None)),
        (a_pod({}), an_account({}), (None, None)),
        (a_pod({FS_USER: "1005"}), None, ("1005", None)),
        (a_pod({FS_USER: "1005", "other": "x"}), an_account({ROLE_ANNOTATION: ROLE}), ("1005", ROLE)),
        (a_pod({ROLE_ANNOTATION: ROLE}), an_account(None), (None, None)),  # only the account's counts
        (a_pod({FS_USER: ""}), an_account({ROLE_ANNOTATION: ""}), ("", None)),  # "" is validated by policy
        (a_pod({FS_USER: "uid=1;rm"}), an_account({ROLE_ANNOTATION: "team-a"}), ("uid=1;rm", "team-a")),
    ],
)
def test_pod_identity_inputs(pod: V1Pod, account: V1ServiceAccount | None, expected: tuple[Any, Any]) -> None:
    assert pod_identity_inputs(pod, account) == expected


def test_only_the_pod_kubelet_mounts_for_lends_its_annotations() -> None:
    check_pod_uid(a_pod(uid="u-1"), "u-1")
    with pytest.raises(Aborted, match="recreated"):
        check_pod_uid(a_pod(uid="u-2"), "u-1")
    with pytest.raises(Aborted):
        check_pod_uid(V1Pod(kind="Pod"), "u-1")


@pytest.mark.parametrize(
    ("account", "requested", "expected"),
    [
        (None, None, "default"),
        (None, "default", "default"),
        ("reader", None, "reader"),
        ("reader", "reader", "reader"),
    ],
)
def test_service_account_name(account: str | None, requested: str | None, expected: str) -> None:
    assert service_account_name(a_pod(account=account), requested) == expected


def test_a_service_account_other_than_kubelets_is_refused() -> None:
    with pytest.raises(FailedPrecondition, match="'writer' in the request"):
        service_account_name(a_pod(account="reader"), "writer")


def status(message: str) -> bytes:
    return json.dumps({"kind": "Status", "message": message}).encode()


@pytest.mark.parametrize(
    ("code", "body", "error", "words"),
    [
        (404, status('pods "web-0" not found'), NotFound, ["not found"]),
        (401, b"", PermissionDenied, ["HTTP 401", "RBAC verb get on pods"]),
        (403, status("cannot get pods"), PermissionDenied, ["HTTP 403: cannot get pods", "node-rbac.yaml"]),
        (429, b"not json", Unavailable, ["HTTP 429", "retry"]),
        (500, status("etcd"), Unavailable, ["HTTP 500: etcd"]),
        (503, status("x" * 500), Unavailable, ["x" * 200]),
        (400, status("bad"), Internal, ["unexpected HTTP 400: bad"]),
    ],
)
def test_api_error(code: int, body: bytes, error: type[S3csiError], words: list[str]) -> None:
    found = api_error(code, body, "pods", "pods team-a/web-0")
    assert type(found) is error
    for word in words:
        assert word in str(found)
    assert "x" * 201 not in str(found)


def request(attributes: dict[str, str]) -> csi_pb2.NodePublishVolumeRequest:
    mode = csi_pb2.VolumeCapability.AccessMode
    return csi_pb2.NodePublishVolumeRequest(
        volume_id="v",
        target_path="/var/lib/kubelet/pods/u-1/volumes/kubernetes.io~csi/pv/mount",
        volume_capability=csi_pb2.VolumeCapability(
            mount=csi_pb2.VolumeCapability.MountVolume(),
            access_mode=mode(mode=mode.MULTI_NODE_MULTI_WRITER),
        ),
        volume_context={"bucketName": "bucket", **attributes},
    )


@pytest.mark.parametrize(
    ("attributes", "identity", "uid", "args"),
    [
        ({}, NO_IDENTITY, None, {"--allow-root"}),
        ({}, PodIdentityInputs("1005", None), 1005, {"--uid=1005", "--dir-mode=700", "--file-mode=600"}),
        ({"fsUser": "1003"}, NO_IDENTITY, 1003, {"--uid=1003"}),
        ({"fsUser": "1003"}, PodIdentityInputs("1005", None), 1005, {"--uid=1005"}),  # the pod's wins
    ],
)
def test_publish_spec_applies_the_pods_fs_user(
    attributes: dict[str, str], identity: PodIdentityInputs, uid: int | None, args: set[str]
) -> None:
    spec = publish_spec(request(attributes), "/var/lib/kubelet", identity)
    assert spec.mount.uid == uid
    assert args <= set(spec.mount.args)


@pytest.mark.parametrize("value", ["", "-1", "2147483648", "uid=1;rm", "1005 "])
def test_an_invalid_fs_user_annotation_is_refused_naming_it(value: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape("pod annotation s3csi.io/fs-user")):
        publish_spec(request({}), "/var/lib/kubelet", PodIdentityInputs(value, None))


def test_publish_spec_carries_the_service_accounts_role() -> None:
    spec = publish_spec(request({}), "/var/lib/kubelet", PodIdentityInputs(None, ROLE))
    assert spec.service_account_role_arn == ROLE
    assert publish_spec(request({}), "/var/lib/kubelet").service_account_role_arn is None
