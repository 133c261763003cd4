"""``s3csi doctor``'s inputs: PV and Secret manifests become the NodePublishVolume kubelet sends."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from s3csi.csi.node import publish_spec
from s3csi.doctor.inputs import (
    DEFAULT_KUBELET_DIR,
    PodInputs,
    SecretRef,
    key_values,
    publish_request,
    secret_data,
    volume_from_pv,
)
from s3csi.doctor.pods import KubeletVolume, parse_vol_data, pod_volumes
from s3csi.errors import InvalidArgument
from s3csi.volume.context import DEFAULT_DRIVER_NAME
from s3csi.volume.policy import AccessMode


def pv(**spec: Any) -> dict[str, Any]:
    csi = {"driver": DEFAULT_DRIVER_NAME, "volumeHandle": "vol-1", "volumeAttributes": {"bucketName": "data"}}
    csi.update(spec.pop("csi", {}))
    return {"kind": "PersistentVolume", "metadata": {"name": "pv-data"}, "spec": {"csi": csi, **spec}}


def test_a_pv_is_published_as_kubelet_would() -> None:
    manifest = pv(
        accessModes=["ReadOnlyMany", "ReadWriteMany"],
        mountOptions=["allow-delete", "uid=1001"],
        csi={"nodePublishSecretRef": {"name": "keys", "namespace": "team"}},
    )
    volume = volume_from_pv(manifest, DEFAULT_DRIVER_NAME)
    assert volume.secret_ref == SecretRef("team", "keys")
    spec = publish_spec(publish_request(volume, secrets={}, pod=PodInputs()), DEFAULT_KUBELET_DIR)
    assert spec.volume_id == "vol-1"
    assert spec.pv_name == "pv-data"
    assert spec.context.bucket_name == "data"
    # kubelet sends the first access mode: ReadOnlyMany, so the mount is read-only and loses --allow-delete.
    assert spec.mount.read_only
    assert spec.mount.args == ("--allow-root", "--read-only", "--uid=1001")


def test_read_only_and_fs_group_reach_the_policy() -> None:
    volume = volume_from_pv(pv(csi={"readOnly": True}), DEFAULT_DRIVER_NAME)
    request = publish_request(volume, secrets={}, pod=PodInputs())
    assert request.readonly
    assert request.volume_capability.access_mode.mode == AccessMode.SINGLE_NODE_WRITER.value


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({"kind": "PersistentVolumeClaim"}, "not a PersistentVolume manifest"),
        ([], "not a PersistentVolume manifest"),
        ({"kind": "PersistentVolume", "spec": {}}, "spec.csi is missing"),
        (pv(csi={"driver": "ebs.csi.aws.com"}), "spec.csi.driver 'ebs.csi.aws.com' is not"),
        (pv(csi={"volumeHandle": ""}), "spec.csi.volumeHandle is required"),
        (pv(mountOptions="allow-delete"), "spec.mountOptions must be a list of strings"),
        (pv(accessModes=["ReadWriteSometimes"]), "spec.accessModes must list one of"),
        (pv(csi={"readOnly": "yes"}), "spec.csi.readOnly must be true or false"),
        (pv(csi={"volumeAttributes": {"bucketName": "data", "fsUser": 1001}}), "fsUser must be a string"),
    ],
)
def test_bad_pv(manifest: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        volume_from_pv(manifest, DEFAULT_DRIVER_NAME)


def test_secret_manifest() -> None:
    encoded = base64.b64encode(b"AKIDEXAMPLE").decode()
    manifest = {
        "kind": "Secret",
        "data": {"access_key_id": encoded},
        "stringData": {"secret_access_key": "not-shown"},
    }
    assert secret_data(manifest) == {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "not-shown"}


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ({"kind": "ConfigMap"}, "not a Secret manifest"),
        ({"kind": "Secret", "data": {"secret_access_key": "%%%"}}, "data.secret_access_key is not base64"),
    ],
)
def test_bad_secret_never_shows_the_value(manifest: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message) as raised:
        secret_data(manifest)
    assert "%%%" not in str(raised.value)


def test_key_values() -> None:
    assert key_values(["bucketName=data", "prefix=a=b/"], "--volume-attribute") == {
        "bucketName": "data",
        "prefix": "a=b/",
    }
    with pytest.raises(InvalidArgument, match="--volume-attribute 'bucketName' must be KEY=VALUE"):
        key_values(["bucketName"], "--volume-attribute")
    with pytest.raises(InvalidArgument, match="--volume-attribute prefix is given twice"):
        key_values(["prefix=a", "prefix=b"], "--volume-attribute")


def test_vol_data_as_kubelet_writes_it() -> None:
    text = json.dumps(
        {
            "specVolumeID": "pv-data",
            "volumeHandle": "vol-1",
            "driverName": DEFAULT_DRIVER_NAME,
            "nodeName": "node-1",
            "attachmentID": "csi-0123",
            "volumeLifecycleMode": "Persistent",
        }
    )
    assert parse_vol_data(text, "pv-data") == KubeletVolume(
        "pv-data", "pv-data", "vol-1", DEFAULT_DRIVER_NAME, False
    )
    inline = json.dumps({"specVolumeID": "scratch", "driverName": "d", "volumeLifecycleMode": "Ephemeral"})
    assert parse_vol_data(inline, "scratch").ephemeral


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "pv-data/vol_data.json is not JSON"),
        ("[]", "is not a JSON object of strings"),
        ('{"specVolumeID": 1}', "is not a JSON object of strings"),
        ('{"driverName": "d"}', "has no specVolumeID"),
    ],
)
def test_bad_vol_data(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_vol_data(text, "pv-data")


@pytest.mark.parametrize("uid", ["../../etc", "a/b", "", "-x"])
def test_a_pod_uid_never_leaves_the_pods_directory(uid: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="is not a pod UID"):
        pod_volumes(str(tmp_path), uid, DEFAULT_DRIVER_NAME)


def test_a_pod_without_a_directory_or_volumes(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="no pod directory"):
        pod_volumes(str(tmp_path), "abc-123", DEFAULT_DRIVER_NAME)
    (tmp_path / "pods" / "abc-123").mkdir(parents=True)
    with pytest.raises(
        InvalidArgument, match=f"pod abc-123 has no volume of the driver {DEFAULT_DRIVER_NAME}"
    ):
        pod_volumes(str(tmp_path), "abc-123", DEFAULT_DRIVER_NAME)
