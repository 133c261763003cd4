"""The MountpointPodAttachment CRD manifest: valid for every Kubernetes version s3csi supports, structural,
and its validation rules refuse what they say (evaluated with cel-python, tests/crd_support.py)."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest
from packaging.version import Version

from s3csi.podmounter import attachment as attachment_module
from tests.crd_support import load_crd, validation_errors, version_schema

SUPPORTED_VERSIONS = [
    version
    for version in sorted({v for v in kubernetes_validate.utils.all_versions()}, key=Version)
    if Version(version) >= Version("1.31")
]
"""Kubernetes 1.31 is the first with CRD field selectors (selectableFields) enabled by default."""

CRD = load_crd()
SCHEMA = version_schema(CRD)
KEY = "0123456789abcdef0123456789abcdef"
UID_A = "6f1c2b9e-1d2a-4c3b-9a8d-0e1f2a3b4c5d"
UID_B = "7a2d3c0f-2e3b-4d4c-8b9e-1f2a3b4c5d6e"


def test_supported_versions_reach_the_newest_kubernetes_validate_knows() -> None:
    assert SUPPORTED_VERSIONS[0] == "1.31.0"
    assert SUPPORTED_VERSIONS[-1] == kubernetes_validate.latest_version()


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_the_crd_is_a_valid_customresourcedefinition(version: str) -> None:
    kubernetes_validate.validate(CRD, version, strict=True)


def test_kubernetes_1_29_would_refuse_the_crd() -> None:
    # Why 1.31 is the floor: selectableFields does not exist before 1.30 (and is off by default in 1.30).
    with pytest.raises(kubernetes_validate.ValidationError, match="selectableFields"):
        kubernetes_validate.validate(CRD, "1.29", strict=True)


def test_names_scope_and_subresources() -> None:
    spec = CRD["spec"]
    assert CRD["metadata"]["name"] == f"{attachment_module.PLURAL}.{attachment_module.GROUP}"
    assert spec["group"] == attachment_module.GROUP
    assert spec["scope"] == "Cluster"
    assert spec["names"]["kind"] == attachment_module.KIND
    assert spec["names"]["plural"] == attachment_module.PLURAL
    (version,) = spec["versions"]
    assert version["name"] == attachment_module.VERSION
    assert version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    assert [field["jsonPath"] for field in version["selectableFields"]] == [
        ".spec.nodeName",
        ".spec.persistentVolumeName",
        ".spec.volumeID",
    ]


def _nodes(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, schema)]
    for name, sub in schema.get("properties", {}).items():
        found += _nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("additionalProperties"), dict):
        found += _nodes(schema["additionalProperties"], f"{path}.*")
    if "items" in schema:
        found += _nodes(schema["items"], f"{path}[]")
    return found


def test_the_schema_is_structural_and_bounded() -> None:
    # A structural schema gives every node a type; every string, list and map under spec is bounded, so the
    # API server's CEL cost estimate is finite and an object cannot grow without limit.
    for path, node in _nodes(SCHEMA):
        assert "type" in node, path
        if not path.startswith(".spec"):
            continue
        if node["type"] == "string" and "enum" not in node:
            assert "maxLength" in node, path
        if node["type"] == "array":
            assert "maxItems" in node, path
        if node["type"] == "object" and "additionalProperties" in node:
            assert "maxProperties" in node, path


def _attachment(**spec_changes: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "nodeName": "node-1.example.com",
        "persistentVolumeName": "pvc-0b0a4c8e-8d8f-4b7e-9d2f-1c3c9a9b7c11",
        "volumeID": "s3csi-bucket-1",
        "mountOptions": ["--allow-other", "--dir-mode=770", "--file-mode=660", "--gid=2000", "--uid=0"],
        "readOnly": False,
        "authenticationSource": "driver",
        "fsGroup": 2000,
        "mountpointPods": {"mp-x7k2q": [{"workloadPodUID": UID_A, "attachedAt": "2026-12-05T01:02:03Z"}]},
    }
    spec.update(spec_changes)
    spec = {key: value for key, value in spec.items() if value is not None}
    return {
        "apiVersion": "s3csi.io/v1",
        "kind": "MountpointPodAttachment",
        "metadata": {"name": KEY},
        "spec": spec,
    }


ROLE = "arn:aws:iam::111122223333:role/reader"
POD = {
    "authenticationSource": "pod",
    "workloadNamespace": "team-a",
    "workloadServiceAccountName": "reader",
    "workloadRoleARN": ROLE,
}
SECRET = {"authenticationSource": "secret", "credentialsIdentity": "ab" * 32}


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({}, id="driver"),
        pytest.param(POD, id="pod"),
        pytest.param(SECRET, id="secret"),
        pytest.param({"fsGroup": None, "fsUser": 0, "readOnly": True}, id="fs-user-read-only"),
        pytest.param({"mountpointPods": {}}, id="nobody-served-yet"),
        pytest.param({"mountpointPods": {"mp-a": [], "mp-b": []}}, id="idle-mountpoint-pods"),
        pytest.param({"status": None}, id="no-status"),
    ],
)
def test_valid_attachments(changes: dict[str, Any]) -> None:
    assert validation_errors(_attachment(**changes)) == []


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        pytest.param({"nodeName": "Node_1"}, "does not match", id="node-name-not-dns"),
        pytest.param({"nodeName": "n" * 254}, "is too long", id="node-name-too-long"),
        pytest.param({"persistentVolumeName": None}, "'persistentVolumeName' is a required", id="no-pv"),
        pytest.param({"volumeID": ""}, "should be non-empty", id="empty-volume-id"),
        pytest.param({"mountOptions": ["allow-other"]}, "does not match", id="option-without-dashes"),
        pytest.param({"mountOptions": ["--x"] * 65}, "is too long", id="too-many-options"),
        pytest.param({"fsGroup": -1}, "less than the minimum", id="negative-fs-group"),
        pytest.param({"fsUser": 2**31}, "greater than the maximum", id="fs-user-too-big"),
        pytest.param({"authenticationSource": "node"}, "is not one of", id="unknown-source"),
        pytest.param({"readOnly": "false"}, "is not of type 'boolean'", id="read-only-string"),
        pytest.param(
            {"authenticationSource": "pod", "workloadNamespace": "team-a", "workloadRoleARN": ROLE},
            "set exactly when authenticationSource is pod",
            id="pod-without-service-account",
        ),
        pytest.param(
            {**POD, "workloadRoleARN": None},
            "set exactly when authenticationSource is pod",
            id="pod-without-role",
        ),
        pytest.param({**POD, "workloadRoleARN": "reader"}, "does not match", id="role-not-an-arn"),
        pytest.param(
            {"workloadRoleARN": ROLE}, "set exactly when authenticationSource is pod", id="driver-with-role"
        ),
        pytest.param(
            {"workloadNamespace": "team-a", "workloadServiceAccountName": "reader"},
            "set exactly when authenticationSource is pod",
            id="driver-with-pod-identity",
        ),
        pytest.param(
            {"authenticationSource": "secret"}, "credentialsIdentity is set exactly", id="secret-no-id"
        ),
        pytest.param({**SECRET, "credentialsIdentity": "AKIAEXAMPLE"}, "does not match", id="raw-access-key"),
        pytest.param(
            {"credentialsIdentity": "ab" * 32}, "credentialsIdentity is set exactly", id="driver-id"
        ),
        pytest.param({**POD, "workloadNamespace": "Team_A"}, "does not match", id="namespace-not-dns"),
        pytest.param(
            {
                "mountpointPods": {
                    "mp-a": [{"workloadPodUID": "not-a-uid", "attachedAt": "2026-12-05T01:02:03Z"}]
                }
            },
            "does not match",
            id="bad-uid",
        ),
        pytest.param(
            {"mountpointPods": {"mp-a": [{"workloadPodUID": UID_A, "attachedAt": "yesterday"}]}},
            "is not a 'date-time'",
            id="bad-time",
        ),
        pytest.param(
            {"mountpointPods": {"mp-a": [{"workloadPodUID": UID_A}]}},
            "'attachedAt' is a required",
            id="no-time",
        ),
        pytest.param(
            {
                "mountpointPods": {
                    "mp-a": [
                        {"workloadPodUID": UID_A, "attachedAt": "2026-12-05T01:02:03Z"},
                        {"workloadPodUID": UID_A, "attachedAt": "2026-12-05T01:02:04Z"},
                    ]
                }
            },
            "duplicate entries",
            id="workload-listed-twice",
        ),
        pytest.param(
            {"mountpointPods": {f"mp-{i}": [] for i in range(9)}}, "has too many properties", id="9-mps"
        ),
    ],
)
def test_invalid_attachments(changes: dict[str, Any], error: str) -> None:
    errors = validation_errors(_attachment(**changes))
    assert any(error in line for line in errors), errors


def test_the_name_must_be_a_sharing_key() -> None:
    obj = _attachment()
    obj["metadata"]["name"] = "node-1-volume"
    assert validation_errors(obj) == [
        ": the name of an attachment is its sharing key, 32 lowercase hex characters"
    ]


def test_an_update_may_change_only_the_mountpoint_pods() -> None:
    old = _attachment(**POD)
    new = copy.deepcopy(old)
    new["spec"]["mountpointPods"]["mp-x7k2q"].append(
        {"workloadPodUID": UID_B, "attachedAt": "2026-12-05T02:00:00Z"}
    )
    new["spec"]["mountpointPods"]["mp-y8l3r"] = []
    assert validation_errors(new, old) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"nodeName": "node-2"},
        {"persistentVolumeName": "pv-2"},
        {"volumeID": "other"},
        {"mountOptions": ["--read-only"]},
        {"readOnly": True},
        {"fsGroup": 3000},
        {"fsGroup": None},
        {"fsUser": 1000},
        {"workloadNamespace": "team-b"},
        {"workloadServiceAccountName": "writer"},
        {"workloadRoleARN": "arn:aws:iam::111122223333:role/writer"},
    ],
    ids="-".join,
)
def test_the_sharing_key_fields_are_immutable(changes: dict[str, Any]) -> None:
    old = _attachment(**POD)
    new = _attachment(**{**POD, **changes})
    assert validation_errors(new) == []  # valid as a new object …
    immutable = (
        "the sharing-key fields are immutable: the object's name is their key; only mountpointPods changes"
    )
    assert validation_errors(new, old) == [f".spec: {immutable}"]  # … but not as a change of the old one


def test_the_source_and_credentials_identity_are_immutable() -> None:
    old = _attachment(**SECRET)
    for new in (_attachment(**{**SECRET, "credentialsIdentity": "cd" * 32}), _attachment()):
        assert any("immutable" in line for line in validation_errors(new, old))


def test_printer_columns_point_at_fields_of_the_schema() -> None:
    (version,) = CRD["spec"]["versions"]
    paths = {path for path, _ in _nodes(SCHEMA)}
    for column in version["additionalPrinterColumns"]:
        if column["jsonPath"] != ".metadata.creationTimestamp":
            assert column["jsonPath"] in paths, column
