"""The controller's sharing key equals the node plugin's: for each pod, PV and secret, the controller's key
(s3csi.controller.inputs, from the API objects) is compared with the key the node plugin computes from the
NodePublishVolume request kubelet builds of the same objects (csi/node.py's parse and policy, then the
publisher's key). The kubelet side is written here from kubelet's own rules, independently of the
controller's reading of them."""

from __future__ import annotations

import base64
import json
import time
import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from s3csi.controller.inputs import Objects, Refused, SecretRef, Served, pod_volumes
from s3csi.credentials.plan import inputs_for, plan_credentials
from s3csi.csi.node import publish_spec
from s3csi.csi.proto import csi_pb2
from s3csi.csi.settings import DEFAULT_DRIVER_NAME
from s3csi.errors import S3csiError
from s3csi.kube.identity import PodIdentityInputs
from s3csi.podmounter.publisher import PodMounterPublisher

KUBELET_DIR = "/var/lib/kubelet"
NODE = "node-1"
ROLE = "arn:aws:iam::123456789012:role/reader"
# kubelet's asCSIAccessModeV1 for a driver without the SINGLE_NODE_MULTI_WRITER capability.
KUBELET_ACCESS_MODES = {
    "ReadWriteOnce": csi_pb2.VolumeCapability.AccessMode.SINGLE_NODE_WRITER,
    "ReadOnlyMany": csi_pb2.VolumeCapability.AccessMode.MULTI_NODE_READER_ONLY,
    "ReadWriteMany": csi_pb2.VolumeCapability.AccessMode.MULTI_NODE_MULTI_WRITER,
    "ReadWriteOncePod": csi_pb2.VolumeCapability.AccessMode.SINGLE_NODE_WRITER,
}


def make_pv(
    *,
    attributes: dict[str, str] | None = None,
    options: list[str] | None = None,
    modes: list[str] | None = None,
    csi_read_only: bool = False,
    secret: bool = False,
) -> dict[str, Any]:
    csi: dict[str, Any] = {
        "driver": DEFAULT_DRIVER_NAME,
        "volumeHandle": "bucket-1",
        "volumeAttributes": {"bucketName": "bucket-1", **(attributes or {})},
    }
    if csi_read_only:
        csi["readOnly"] = True
    if secret:
        csi["nodePublishSecretRef"] = {"namespace": "team-a", "name": "s3-keys"}
    spec: dict[str, Any] = {"accessModes": modes or ["ReadWriteMany"], "csi": csi}
    if options is not None:
        spec["mountOptions"] = options
    return {"metadata": {"name": "pv-1"}, "spec": spec}


def make_pod(
    *,
    fs_group: int | None = None,
    fs_user: str | None = None,
    read_only: bool = False,
    service_account: str | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "web-0", "namespace": "team-a", "uid": str(uuid.uuid4())}
    if fs_user is not None:
        metadata["annotations"] = {"s3csi.io/fs-user": fs_user}
    spec: dict[str, Any] = {
        "nodeName": NODE,
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data", "readOnly": read_only}}],
    }
    if fs_group is not None:
        spec["securityContext"] = {"fsGroup": fs_group}
    if service_account is not None:
        spec["serviceAccountName"] = service_account
    return {"metadata": metadata, "spec": spec}


SECRET_DATA = {"access_key_id": "AKIAEXAMPLE1", "secret_access_key": "s3cr3t/value"}


def secret_object(data: dict[str, str]) -> dict[str, Any]:
    return {"data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


ACCOUNT_ROLE = "arn:aws:iam::111122223333:role/annotated"
ACCOUNT_ROLES = {("team-a", "annotated"): ACCOUNT_ROLE, ("team-a", "not-a-role"): "annotated"}
"""ServiceAccounts with an eks.amazonaws.com/role-arn annotation; every other one has none."""


def service_account_object(namespace: str, name: str, role: str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "resourceVersion": "1"}
    if role is not None:
        metadata["annotations"] = {"eks.amazonaws.com/role-arn": role}
    return {"metadata": metadata}


def objects(
    pv: dict[str, Any],
    secret: dict[str, Any] | None = None,
    roles: dict[tuple[str, str], str] = ACCOUNT_ROLES,
) -> Objects:
    claim = {"metadata": {"name": "data", "namespace": "team-a"}, "spec": {"volumeName": "pv-1"}}
    return Objects(
        claims={("team-a", "data"): claim},
        volumes={"pv-1": pv},
        secrets={SecretRef("team-a", "s3-keys"): secret} if secret is not None else {},
        service_accounts={key: service_account_object(*key, role) for key, role in roles.items()},
    )


def kubelet_request(pod: dict[str, Any], pv: dict[str, Any], secret_data: dict[str, str]) -> Any:
    """NodePublishVolumeRequest as kubelet's csi_mounter builds it for ``pod``'s use of ``pv``."""
    csi, metadata, spec = pv["spec"]["csi"], pod["metadata"], pod["spec"]
    fs_group = (spec.get("securityContext") or {}).get("fsGroup")
    context = dict(csi["volumeAttributes"])
    context.update(
        {
            "csi.storage.k8s.io/pod.name": metadata["name"],
            "csi.storage.k8s.io/pod.namespace": metadata["namespace"],
            "csi.storage.k8s.io/pod.uid": metadata["uid"],
            "csi.storage.k8s.io/serviceAccount.name": spec.get("serviceAccountName", "default"),
            "csi.storage.k8s.io/ephemeral": "false",
        }
    )
    if csi["volumeAttributes"].get("authenticationSource") == "pod":
        context["csi.storage.k8s.io/serviceAccount.tokens"] = json.dumps(
            {
                "sts.amazonaws.com": {
                    "token": "header.payload.sig",
                    "expirationTimestamp": "2099-01-01T00:00:00Z",
                }
            }
        )
    return csi_pb2.NodePublishVolumeRequest(
        volume_id=csi["volumeHandle"],
        target_path=f"{KUBELET_DIR}/pods/{metadata['uid']}/volumes/kubernetes.io~csi/{pv['metadata']['name']}/mount",
        volume_capability=csi_pb2.VolumeCapability(
            mount=csi_pb2.VolumeCapability.MountVolume(
                mount_flags=pv["spec"].get("mountOptions", []),
                volume_mount_group="" if fs_group is None else str(fs_group),
            ),
            access_mode=csi_pb2.VolumeCapability.AccessMode(
                mode=KUBELET_ACCESS_MODES[pv["spec"]["accessModes"][0]]
            ),
        ),
        readonly=spec["volumes"][0]["persistentVolumeClaim"]["readOnly"] or csi.get("readOnly", False),
        secrets=secret_data,
        volume_context=context,
    )


def node_key(
    pod: dict[str, Any],
    pv: dict[str, Any],
    secret_data: dict[str, str],
    roles: dict[tuple[str, str], str] = ACCOUNT_ROLES,
) -> str:
    """The node plugin's key: csi/node.py's publish_spec, the credentials plan, the publisher's key. The
    node plugin reads the pod's ServiceAccount annotation as kube/identity.py does."""
    account = (pod["metadata"]["namespace"], pod["spec"].get("serviceAccountName", "default"))
    identity = PodIdentityInputs(
        (pod["metadata"].get("annotations") or {}).get("s3csi.io/fs-user"), roles.get(account)
    )
    spec = publish_spec(kubelet_request(pod, pv, secret_data), KUBELET_DIR, identity)
    plan = plan_credentials(inputs_for(spec, driver_region="us-east-1"), now=time.time())
    publisher: Any = SimpleNamespace(settings=SimpleNamespace(node_id=NODE))
    key: str = PodMounterPublisher._sharing_key(publisher, spec, plan)
    return key


CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "driver credentials, no options": (make_pod(), make_pv()),
    "fsGroup and options": (
        make_pod(fs_group=2000),
        make_pv(options=["--allow-delete", "--region=eu-west-1"]),
    ),
    "options without dashes": (
        make_pod(fs_group=2000),
        make_pv(options=["allow-delete", "region=eu-west-1"]),
    ),
    "fsUser annotation": (make_pod(fs_user="1001"), make_pv()),
    "fsUser attribute": (make_pod(fs_group=3000), make_pv(attributes={"fsUser": "1002"})),
    "annotation over attribute": (make_pod(fs_user="1003"), make_pv(attributes={"fsUser": "1002"})),
    "claim readOnly": (make_pod(read_only=True, fs_group=2000), make_pv()),
    "PV csi readOnly": (make_pod(), make_pv(csi_read_only=True)),
    "ReadOnlyMany": (make_pod(), make_pv(modes=["ReadOnlyMany", "ReadWriteMany"])),
    "ReadWriteOnce": (make_pod(fs_group=10), make_pv(modes=["ReadWriteOnce"])),
    "ReadWriteOncePod": (make_pod(), make_pv(modes=["ReadWriteOncePod"])),
    "prefix": (make_pod(), make_pv(attributes={"prefix": "team-a/"})),
    "staged writes in a cache volume": (
        make_pod(fs_group=2000),
        make_pv(options=["staged-writes", "allow-overwrite"], attributes={"cache": "emptyDir"}),
    ),
    "pod credentials": (
        make_pod(service_account="reader", fs_group=5),
        make_pv(attributes={"authenticationSource": "pod", "roleArn": ROLE}),
    ),
    "pod credentials, default account": (
        make_pod(),
        make_pv(attributes={"authenticationSource": "pod", "roleArn": ROLE}),
    ),
    "pod credentials, role from the service account": (
        make_pod(service_account="annotated"),
        make_pv(attributes={"authenticationSource": "pod"}),
    ),
    "pod credentials, roleArn over the annotation": (
        make_pod(service_account="annotated"),
        make_pv(attributes={"authenticationSource": "pod", "roleArn": ROLE}),
    ),
    "secret credentials": (
        make_pod(fs_group=7),
        make_pv(attributes={"authenticationSource": "secret"}, secret=True),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_controllers_key_is_the_node_plugins(case: str) -> None:
    pod, pv = CASES[case]
    secret = pv["spec"]["csi"].get("nodePublishSecretRef")
    uses = pod_volumes(pod, objects(pv, secret_object(SECRET_DATA) if secret else None), DEFAULT_DRIVER_NAME)
    assert len(uses) == 1 and isinstance(uses[0], Served), uses
    assert uses[0].key == node_key(pod, pv, SECRET_DATA if secret else {})


def test_another_access_key_id_is_another_key() -> None:
    pod, pv = CASES["secret credentials"]
    other = {**SECRET_DATA, "access_key_id": "AKIAEXAMPLE2"}
    [mine] = pod_volumes(pod, objects(pv, secret_object(SECRET_DATA)), DEFAULT_DRIVER_NAME)
    [theirs] = pod_volumes(pod, objects(pv, secret_object(other)), DEFAULT_DRIVER_NAME)
    assert isinstance(mine, Served) and isinstance(theirs, Served)
    assert mine.key != theirs.key
    assert theirs.key == node_key(pod, pv, other)


def test_another_role_on_the_service_account_is_another_key() -> None:
    # The annotation changed while pods ran: the next pods assume the new role, in their own mount.
    pod, pv = CASES["pod credentials, role from the service account"]
    other = {("team-a", "annotated"): "arn:aws:iam::111122223333:role/other"}
    [mine] = pod_volumes(pod, objects(pv), DEFAULT_DRIVER_NAME)
    [theirs] = pod_volumes(pod, objects(pv, roles=other), DEFAULT_DRIVER_NAME)
    assert isinstance(mine, Served) and isinstance(theirs, Served)
    assert mine.inputs.workload_role_arn == ACCOUNT_ROLE
    assert mine.key != theirs.key == node_key(pod, pv, {}, other)


REFUSED = {
    "unknown mount option": (make_pod(), make_pv(options=["--no-such-option"])),
    "no bucket": (make_pod(), make_pv(attributes={"bucketName": ""})),
    "bad fsUser annotation": (make_pod(fs_user="root"), make_pv()),
    "single writer is not refused but kms without sse is": (
        make_pod(),
        make_pv(options=["--sse-kms-key-id=k"]),
    ),
    "bad secret": (make_pod(), make_pv(attributes={"authenticationSource": "secret"}, secret=True)),
    "pod credentials without a role": (make_pod(), make_pv(attributes={"authenticationSource": "pod"})),
    "staged writes without a cache volume": (
        make_pod(),
        make_pv(options=["staged-writes", "allow-overwrite"]),
    ),
    "pod credentials, annotation not a role": (
        make_pod(service_account="not-a-role"),
        make_pv(attributes={"authenticationSource": "pod"}),
    ),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_what_the_node_plugin_refuses_the_controller_refuses_with_its_message(case: str) -> None:
    pod, pv = REFUSED[case]
    bad_secret = {"access_key_id": "AKIAEXAMPLE1", "secret_access_key": "has space"}
    secret = secret_object(bad_secret) if pv["spec"]["csi"].get("nodePublishSecretRef") else None
    [use] = pod_volumes(pod, objects(pv, secret), DEFAULT_DRIVER_NAME)
    assert isinstance(use, Refused), use
    with pytest.raises(S3csiError) as raised:
        node_key(pod, pv, bad_secret if secret else {})
    message = str(raised.value).split(": ", 1)[-1] if case == "bad secret" else str(raised.value)
    assert message in use.cause
    assert "has space" not in use.cause


def test_a_missing_secret_and_an_unbound_claim_are_named() -> None:
    pod, pv = CASES["secret credentials"]
    [use] = pod_volumes(pod, objects(pv, None), DEFAULT_DRIVER_NAME)
    assert isinstance(use, Refused) and "node-publish secret team-a/s3-keys" in use.cause
    claim = {
        "metadata": {
            "name": "data",
            "namespace": "team-a",
            "annotations": {"volume.kubernetes.io/storage-provisioner": DEFAULT_DRIVER_NAME},
        },
        "spec": {},
    }
    [unbound] = pod_volumes(make_pod(), Objects({("team-a", "data"): claim}, {}, {}), DEFAULT_DRIVER_NAME)
    assert unbound == Refused(
        "data", "PersistentVolumeClaim team-a/data is not bound to a PersistentVolume yet"
    )


def test_other_drivers_volumes_are_left_alone() -> None:
    pv = make_pv()
    pv["spec"]["csi"]["driver"] = "ebs.csi.aws.com"
    assert pod_volumes(make_pod(), objects(pv), DEFAULT_DRIVER_NAME) == []
    claim = {"metadata": {"name": "data", "namespace": "team-a"}, "spec": {}}
    assert pod_volumes(make_pod(), Objects({("team-a", "data"): claim}, {}, {}), DEFAULT_DRIVER_NAME) == []
