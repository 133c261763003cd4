"""sharing_key: exactly the fields of docs/architecture.md#sharing decide who shares a Mountpoint Pod."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest

from s3csi.errors import InvalidArgument
from s3csi.volume.context import AuthenticationSource
from s3csi.volume.policy import AccessMode, EffectiveMount, PolicyInput, effective_mount
from s3csi.volume.sharing import SHARING_KEY_LENGTH, credentials_identity_of, sharing_key

FSGROUP_EXAMPLE_OPTIONS = ("uid=1001", "gid=1001", "allow-other")


def mount_for(
    fs_group: str | None = "1001", fs_user: str | None = None, readonly: bool = False
) -> EffectiveMount:
    return effective_mount(
        PolicyInput(
            mount_flags=FSGROUP_EXAMPLE_OPTIONS,
            volume_mount_group=fs_group,
            fs_user_annotation=fs_user,
            volume_fs_user=None,
            readonly=readonly,
            access_mode=AccessMode.MULTI_NODE_MULTI_WRITER,
        )
    )


BASE: dict[str, Any] = {
    "node_id": "node-a",
    "volume_id": "s3-csi-fsgroup-example",
    "pv_name": "s3-pv",
    "mount": mount_for(),
    "authentication_source": AuthenticationSource.DRIVER,
}


def key(**changes: Any) -> str:
    return sharing_key(**{**BASE, **changes})


def test_key_is_a_short_filesystem_safe_digest() -> None:
    assert re.fullmatch(f"[0-9a-f]{{{SHARING_KEY_LENGTH}}}", key())


def test_key_is_stable_across_releases() -> None:
    # Node plugin restarts rebuild their view from comm dirs named by this key: it must never drift.
    # The canonical document, spelled out: any change to its shape is a deliberate "version" bump.
    canonical = (
        '{"args":["--allow-other","--dir-mode=770","--file-mode=660","--gid=1001","--uid=1001"],'
        '"authenticationSource":"driver","fsGroup":1001,"fsUser":null,"identity":{},"node":"node-a",'
        '"pv":"s3-pv","readOnly":false,"version":1,"volume":"s3-csi-fsgroup-example"}'
    )
    assert key() == hashlib.sha256(canonical.encode()).hexdigest()[:32] == "440e6219d8c609d3448c5f53da89ff66"


def test_replicas_with_the_same_fsgroup_share() -> None:
    # The dynamic fsGroup example: two Deployment replicas, fsGroup 1001 each.
    assert key(mount=mount_for(fs_group="1001")) == key(mount=mount_for(fs_group="1001"))


def test_pods_with_other_fsgroups_get_their_own_mountpoint_pod() -> None:
    assert key(mount=mount_for(fs_group="1001")) != key(mount=mount_for(fs_group="2002"))
    assert key(mount=mount_for(fs_group="1001")) != key(mount=mount_for(fs_group=None))


SPLITTING = [
    pytest.param({"node_id": "node-b"}, id="node"),
    pytest.param({"volume_id": "other-volume"}, id="volume-id"),
    pytest.param({"pv_name": "other-pv"}, id="pv-name"),
    pytest.param({"pv_name": None}, id="inline-volume-without-pv"),
    pytest.param({"mount": mount_for(readonly=True)}, id="read-only"),
    pytest.param({"mount": mount_for(fs_user="1005")}, id="fs-user"),
    pytest.param({"mount": mount_for(fs_group="2002")}, id="fs-group"),
    pytest.param(
        {"authentication_source": AuthenticationSource.SECRET, "credentials_identity": "x"}, id="auth-source"
    ),
]


@pytest.mark.parametrize("changes", SPLITTING)
def test_each_field_of_the_key_splits_workloads(changes: dict[str, Any]) -> None:
    assert key(**changes) != key()


def test_options_split_workloads() -> None:
    other = effective_mount(
        PolicyInput(
            mount_flags=(*FSGROUP_EXAMPLE_OPTIONS, "allow-delete"),
            volume_mount_group="1001",
            fs_user_annotation=None,
            volume_fs_user=None,
            readonly=False,
            access_mode=AccessMode.MULTI_NODE_MULTI_WRITER,
        )
    )
    assert key(mount=other) != key()


POD = {
    "authentication_source": AuthenticationSource.POD,
    "pod_namespace": "ns-a",
    "service_account_name": "sa",
    "role_arn": "arn:aws:iam::111122223333:role/reader",
}


def test_pod_credentials_split_by_namespace_service_account_and_role() -> None:
    assert key(**POD) == key(**POD)
    assert key(**{**POD, "pod_namespace": "ns-b"}) != key(**POD)
    assert key(**{**POD, "service_account_name": "other"}) != key(**POD)
    # The service account's role annotation changed while pods ran: the next pods act as another role.
    assert key(**{**POD, "role_arn": "arn:aws:iam::111122223333:role/writer"}) != key(**POD)


def test_secret_credentials_split_by_access_key_identity() -> None:
    secret = {"authentication_source": AuthenticationSource.SECRET}
    first = key(**secret, credentials_identity=credentials_identity_of("AKIAFIRST"))
    assert first == key(**secret, credentials_identity=credentials_identity_of("AKIAFIRST"))
    assert first != key(**secret, credentials_identity=credentials_identity_of("AKIASECOND"))


@pytest.mark.parametrize(
    "ignored",
    [
        pytest.param(
            {"pod_namespace": "ns-b", "service_account_name": "sa", "role_arn": "arn:aws:iam::1:role/r"},
            id="driver-ignores-pod-identity",
        ),
        pytest.param({"credentials_identity": "abc"}, id="driver-ignores-credentials"),
    ],
)
def test_identity_the_source_does_not_use_never_splits(ignored: dict[str, Any]) -> None:
    assert key(**ignored) == key()


def test_pod_source_ignores_credentials_identity() -> None:
    assert key(**POD, credentials_identity="abc") == key(**POD)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        pytest.param(
            {"authentication_source": AuthenticationSource.POD}, "namespace", id="pod-without-identity"
        ),
        pytest.param(
            {"authentication_source": AuthenticationSource.POD, "pod_namespace": "ns"},
            "service account",
            id="pod-without-service-account",
        ),
        pytest.param(
            {
                "authentication_source": AuthenticationSource.POD,
                "pod_namespace": "ns",
                "service_account_name": "sa",
            },
            "role",
            id="pod-without-role",
        ),
        pytest.param(
            {"authentication_source": AuthenticationSource.SECRET}, "access key id", id="secret-without"
        ),
        pytest.param({"node_id": ""}, "node id", id="empty-node"),
        pytest.param({"volume_id": ""}, "volume id", id="empty-volume"),
    ],
)
def test_missing_identity_is_invalid_argument(changes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        key(**changes)
    assert fragment in str(error.value)


def test_credentials_identity_hides_the_access_key_id() -> None:
    identity = credentials_identity_of("AKIAIOSFODNN7EXAMPLE")
    assert "AKIA" not in identity and re.fullmatch("[0-9a-f]{64}", identity)
    with pytest.raises(InvalidArgument):
        credentials_identity_of("")
