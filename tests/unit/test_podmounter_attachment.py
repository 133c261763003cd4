"""MountpointPodAttachment builders (podmounter/attachment.py): every object they return passes the CRD's
validation (tests/crd_support.py), its name is the sharing key the node plugin computes from the same
workload, and the changes the controller makes are pure and idempotent."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from s3csi.errors import FailedPrecondition, InvalidArgument
from s3csi.podmounter.attachment import (
    MAX_MOUNTPOINT_PODS,
    MAX_WORKLOAD_PODS,
    MountpointPodAttachment,
    SharingInputs,
    attachment,
    attachment_status,
    idle_mountpoint_pods,
    is_pod_uid,
    kubernetes_time,
    mountpoint_pod_of,
    sharing_inputs_of,
    with_workload,
    without_mountpoint_pod,
    without_workload,
)
from s3csi.podmounter.names import attachment_name, label_digest, label_value
from s3csi.volume.context import AuthenticationSource
from s3csi.volume.policy import AccessMode, EffectiveMount, PolicyInput, effective_mount
from s3csi.volume.sharing import credentials_identity_of, sharing_key
from tests.crd_support import validation_errors

UID_A = "6f1c2b9e-1d2a-4c3b-9a8d-0e1f2a3b4c5d"
UID_B = "7a2d3c0f-2e3b-4d4c-8b9e-1f2a3b4c5d6e"
UID_C = "8b3e4d1a-3f4c-4e5d-9caf-2a3b4c5d6e7f"
T0 = datetime(2026, 12, 5, 1, 2, 3, tzinfo=UTC)


def mount(
    flags: tuple[str, ...] = (),
    fs_group: str | None = None,
    fs_user: str | None = None,
    read_only: bool = False,
    access_mode: AccessMode = AccessMode.MULTI_NODE_MULTI_WRITER,
) -> EffectiveMount:
    """The effective mount NodePublishVolume (and the controller) derive from the same inputs."""
    return effective_mount(PolicyInput(flags, fs_group, fs_user, None, read_only, access_mode))


def inputs(**changes: object) -> SharingInputs:
    base = SharingInputs(
        node_name="node-1.example.com",
        persistent_volume_name="pvc-0b0a4c8e-8d8f-4b7e-9d2f-1c3c9a9b7c11",
        volume_id="s3csi-bucket-1",
        mount=mount(("--allow-delete", "--region=eu-west-1"), fs_group="2000"),
        authentication_source=AuthenticationSource.DRIVER,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


POD = {
    "authentication_source": AuthenticationSource.POD,
    "workload_namespace": "team-a",
    "workload_service_account_name": "reader",
    "workload_role_arn": "arn:aws:iam::111122223333:role/reader",
}
SECRET = {
    "authentication_source": AuthenticationSource.SECRET,
    "credentials_identity": credentials_identity_of("AKIAIOSFODNN7EXAMPLE"),
}

CASES = [
    pytest.param(inputs(), id="driver-fs-group"),
    pytest.param(inputs(**POD), id="pod-credentials"),
    pytest.param(inputs(**SECRET), id="secret-credentials"),
    pytest.param(inputs(mount=mount(fs_user="1500")), id="fs-user-only"),
    pytest.param(inputs(mount=mount(fs_group="0", fs_user="0")), id="root-ids"),
    pytest.param(inputs(mount=mount(read_only=True)), id="read-only"),
    pytest.param(inputs(mount=mount(access_mode=AccessMode.MULTI_NODE_READER_ONLY)), id="reader-only-mode"),
    pytest.param(
        inputs(mount=mount(("--prefix=team/a/", "--uid=3000", "--gid=3000"))), id="ids-from-options"
    ),
    pytest.param(inputs(node_name="ip-10-0-1-23.eu-west-1.compute.internal"), id="long-node-name"),
    pytest.param(inputs(volume_id="bucket:prefix-volume:" + "x" * 900), id="long-volume-id"),
    # Identity the source does not use: ignored by the key, left out of the attachment.
    pytest.param(
        inputs(
            workload_namespace="team-a",
            workload_service_account_name="x",
            workload_role_arn="arn:aws:iam::1:role/r",
        ),
        id="driver-ignores-sa",
    ),
    pytest.param(inputs(**POD, credentials_identity="ab" * 32), id="pod-ignores-secret-id"),
]


@pytest.mark.parametrize("given", CASES)
def test_every_attachment_passes_the_crd_validation(given: SharingInputs) -> None:
    assert validation_errors(dict(attachment(given))) == []


@pytest.mark.parametrize("given", CASES)
def test_the_key_of_the_attachment_fields_is_the_key_that_names_it(given: SharingInputs) -> None:
    obj = attachment(given)
    # What the node plugin computes for a workload with these inputs (podmounter/publisher.py passes the pod's
    # namespace and service account whatever the source; the key uses only what the source needs) …
    node_plugin_key = sharing_key(
        node_id=given.node_name,
        volume_id=given.volume_id,
        pv_name=given.persistent_volume_name,
        mount=given.mount,
        authentication_source=given.authentication_source,
        pod_namespace=given.workload_namespace,
        service_account_name=given.workload_service_account_name,
        role_arn=given.workload_role_arn,
        credentials_identity=given.credentials_identity,
    )
    # … names the object, and the fields it records give that key back.
    assert obj["metadata"]["name"] == attachment_name(node_plugin_key) == node_plugin_key
    assert sharing_inputs_of(obj).sharing_key() == node_plugin_key
    assert sharing_inputs_of(obj).mount == given.mount


def test_each_key_field_changes_the_name() -> None:
    variants = [
        inputs(),
        inputs(node_name="node-2"),
        inputs(persistent_volume_name="pv-2"),
        inputs(volume_id="other-volume"),
        inputs(mount=mount(("--allow-delete", "--region=eu-west-1"), fs_group="2001")),
        inputs(mount=mount(("--allow-delete", "--region=eu-west-1"), fs_group="2000", fs_user="1000")),
        inputs(mount=mount(("--allow-delete", "--region=eu-west-1"), fs_group="2000", read_only=True)),
        inputs(mount=mount(("--region=eu-west-1",), fs_group="2000")),
        inputs(**POD),
        inputs(**{**POD, "workload_namespace": "team-b"}),
        inputs(**{**POD, "workload_service_account_name": "writer"}),
        inputs(**{**POD, "workload_role_arn": "arn:aws:iam::111122223333:role/writer"}),
        inputs(**SECRET),
        inputs(**{**SECRET, "credentials_identity": credentials_identity_of("AKIAOTHER")}),
    ]
    names = [attachment(variant)["metadata"]["name"] for variant in variants]
    assert len(set(names)) == len(names)


def test_the_attachment_records_only_the_identity_its_source_uses() -> None:
    assert set(attachment(inputs(workload_namespace="a", workload_service_account_name="b"))["spec"]) == {
        "nodeName",
        "persistentVolumeName",
        "volumeID",
        "mountOptions",
        "readOnly",
        "authenticationSource",
        "fsGroup",
        "mountpointPods",
    }
    pod_spec = attachment(inputs(**POD))["spec"]
    assert (
        pod_spec.get("workloadNamespace"),
        pod_spec.get("workloadServiceAccountName"),
        pod_spec.get("workloadRoleARN"),
    ) == ("team-a", "reader", POD["workload_role_arn"])
    assert "credentialsIdentity" not in pod_spec
    secret_spec = attachment(inputs(**SECRET))["spec"]
    assert secret_spec.get("credentialsIdentity") == SECRET["credentials_identity"]
    assert "AKIAIOSFODNN7EXAMPLE" not in repr(secret_spec)


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (inputs(node_name="Node_1"), "node name 'Node_1' is not a DNS-1123 subdomain"),
        (inputs(persistent_volume_name=""), "PersistentVolume name '' is not a DNS-1123 subdomain"),
        (inputs(volume_id=""), "a volume id must have 1 to 1024 characters"),
        (inputs(volume_id="v" * 1025), "a volume id must have 1 to 1024 characters"),
        (
            inputs(authentication_source=AuthenticationSource.POD),
            "needs the pod's namespace and service account",
        ),
        (inputs(**{**POD, "workload_namespace": "Team_A"}), "workload namespace 'Team_A' is not a DNS-1123"),
        (inputs(**{**POD, "workload_role_arn": None}), "needs the role the mount assumes"),
        (inputs(**{**POD, "workload_role_arn": "reader"}), "workload role 'reader' is not an IAM role ARN"),
        (
            inputs(authentication_source=AuthenticationSource.SECRET),
            "needs the node-publish secret's access key",
        ),
        (
            inputs(**{**SECRET, "credentials_identity": "AKIAIOSFODNN7EXAMPLE"}),
            "a credentials identity is a SHA-256",
        ),
    ],
)
def test_inputs_the_crd_would_refuse_are_refused_with_the_field(given: SharingInputs, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        attachment(given)


def test_mount_options_that_are_not_normalised_are_refused() -> None:
    obj = attachment(inputs())
    obj["spec"]["mountOptions"] = list(reversed(obj["spec"]["mountOptions"]))
    with pytest.raises(InvalidArgument, match="mountOptions are not normalised"):
        sharing_inputs_of(obj)


def _served(obj: MountpointPodAttachment) -> dict[str, list[str]]:
    return {name: [e["workloadPodUID"] for e in pods] for name, pods in obj["spec"]["mountpointPods"].items()}


def test_workloads_come_and_go() -> None:
    empty = attachment(inputs())
    before = copy.deepcopy(empty)
    one = with_workload(empty, "mp-x7k2q", UID_A, T0)
    assert empty == before  # inputs are never changed
    two = with_workload(one, "mp-x7k2q", UID_B, T0 + timedelta(seconds=5))
    three = with_workload(two, "mp-y8l3r", UID_C, T0)
    assert _served(three) == {"mp-x7k2q": [UID_A, UID_B], "mp-y8l3r": [UID_C]}
    assert three["spec"]["mountpointPods"]["mp-x7k2q"][1]["attachedAt"] == "2026-12-05T01:02:08Z"
    assert (mountpoint_pod_of(three, UID_B), mountpoint_pod_of(three, UID_C)) == ("mp-x7k2q", "mp-y8l3r")
    assert mountpoint_pod_of(three, "00000000-0000-0000-0000-000000000000") is None
    assert attachment_status(three) == {"mountpointPods": 2, "workloadPods": 3}

    left = without_workload(without_workload(three, UID_A), UID_C)
    assert _served(left) == {"mp-x7k2q": [UID_B], "mp-y8l3r": []}
    assert idle_mountpoint_pods(left) == ["mp-y8l3r"]
    retired = without_mountpoint_pod(left, "mp-y8l3r")
    assert _served(retired) == {"mp-x7k2q": [UID_B]}
    assert attachment_status(retired) == {"mountpointPods": 1, "workloadPods": 1}
    for obj in (one, two, three, left, retired):
        assert validation_errors(dict(obj)) == []
        assert validation_errors(dict(obj), old=dict(empty)) == []  # each is a valid update


def test_changes_are_idempotent() -> None:
    one = with_workload(attachment(inputs()), "mp-x7k2q", UID_A, T0)
    again = with_workload(one, "mp-x7k2q", UID_A, T0 + timedelta(hours=1))
    assert again == one  # the first attachedAt stays
    assert without_workload(one, UID_B) == one
    assert without_mountpoint_pod(one, "mp-gone") == one
    gone = without_workload(one, UID_A)
    assert without_workload(gone, UID_A) == gone


def test_server_fields_are_kept_for_the_update() -> None:
    stored = attachment(inputs())
    stored["metadata"]["resourceVersion"] = "4711"
    stored["metadata"]["uid"] = UID_C
    stored["status"] = {"mountpointPods": 0, "workloadPods": 0}
    changed = with_workload(stored, "mp-x7k2q", UID_A, T0)
    assert changed["metadata"]["resourceVersion"] == "4711"
    assert changed.get("status") == stored.get("status")


def test_a_workload_never_moves_to_another_mountpoint_pod() -> None:
    one = with_workload(attachment(inputs()), "mp-x7k2q", UID_A, T0)
    with pytest.raises(
        FailedPrecondition, match=f"workload pod {UID_A} is already served by Mountpoint Pod mp-x7k2q"
    ):
        with_workload(one, "mp-y8l3r", UID_A, T0)


def test_the_crd_bounds_are_refused_before_the_api_server_would() -> None:
    obj = attachment(inputs())
    for index in range(MAX_MOUNTPOINT_PODS):
        obj = with_workload(obj, f"mp-{index}", f"00000000-0000-4000-8000-{index:012d}", T0)
    assert validation_errors(dict(obj)) == []
    with pytest.raises(FailedPrecondition, match=f"already lists {MAX_MOUNTPOINT_PODS} Mountpoint Pods"):
        with_workload(obj, "mp-one-more", UID_A, T0)
    crowded = attachment(inputs())
    crowded["spec"]["mountpointPods"]["mp-a"] = [
        {"workloadPodUID": f"00000000-0000-4000-8000-{index:012d}", "attachedAt": "2026-12-05T01:02:03Z"}
        for index in range(MAX_WORKLOAD_PODS)
    ]
    assert validation_errors(dict(crowded)) == []
    with pytest.raises(FailedPrecondition, match=f"already serves {MAX_WORKLOAD_PODS} workload pods"):
        with_workload(crowded, "mp-a", UID_A, T0)


@pytest.mark.parametrize(
    ("mountpoint_pod", "uid", "moment", "message"),
    [
        ("MP_1", UID_A, T0, "Mountpoint Pod name 'MP_1' is not a DNS-1123 subdomain"),
        ("mp-1", "6F1C2B9E-1D2A-4C3B-9A8D-0E1F2A3B4C5D", T0, "is not a Kubernetes uid"),
        ("mp-1", "not-a-uid", T0, "workload pod uid 'not-a-uid' is not a Kubernetes uid"),
        ("mp-1", UID_A, datetime(2026, 12, 5), "needs a timezone-aware datetime"),
    ],
)
def test_malformed_entries_are_refused(mountpoint_pod: str, uid: str, moment: datetime, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        with_workload(attachment(inputs()), mountpoint_pod, uid, moment)


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        (T0, "2026-12-05T01:02:03Z"),
        (T0.replace(microsecond=999_999), "2026-12-05T01:02:03Z"),
        (datetime(2026, 12, 5, 3, 2, 3, tzinfo=timezone(timedelta(hours=2))), "2026-12-05T01:02:03Z"),
    ],
)
def test_kubernetes_time(moment: datetime, expected: str) -> None:
    assert kubernetes_time(moment) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("6f1c2b9e-1d2a-4c3b-9a8d-0e1f2a3b4c5d", True),
        ("6f1c2b9e1d2a4c3b9a8d0e1f2a3b4c5d", False),
        ("6f1c2b9e-1d2a-4c3b-9a8d-0e1f2a3b4c5", False),
        ("6f1c2b9e-1d2a-4c3b-9a8d-0e1f2a3b4c5g", False),
        ("", False),
    ],
)
def test_is_pod_uid(text: str, expected: bool) -> None:
    assert is_pod_uid(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.1.0", "0.1.0"),
        ("v1.2.3-rc.1", "v1.2.3-rc.1"),
        ("0.0.0+unknown", f"0.0.0_unknown-{label_digest('0.0.0+unknown')[:10]}"),
        ("0.0.0_unknown", "0.0.0_unknown"),  # and so never equal to the one above
        ("+", label_digest("+")[:10]),
        ("a" * 64, f"{'a' * 52}-{label_digest('a' * 64)[:10]}"),
    ],
)
def test_label_value(text: str, expected: str) -> None:
    assert label_value(text) == expected
    assert len(expected) <= 63


@pytest.mark.parametrize("key", ["", "0123456789ABCDEF0123456789ABCDEF", "0123", "g" * 32, "a" * 33])
def test_attachment_name_takes_only_a_sharing_key(key: str) -> None:
    with pytest.raises(InvalidArgument, match="is not a sharing key"):
        attachment_name(key)
