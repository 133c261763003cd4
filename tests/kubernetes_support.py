"""One simulated Kubernetes node for the node plugin's Kubernetes runtime (docs/kubernetes.md): the fake API
server, the test kubelet (tests/kubelet_fake.py) running Mountpoint Pods as uid 1000 processes from their pod
spec, and ``s3csi driver --runtime kubernetes`` processes over their real CSI sockets, against the embedded S3
server. Shared by tests/integration/test_kubernetes_runtime.py and ``python -m bench.k8s_publish``."""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from kubernetes_asyncio.client import ApiClient, CoreV1Api, CustomObjectsApi
from kubernetes_asyncio.client.exceptions import ApiException

from s3csi.csi.node import publish_spec
from s3csi.csi.proto import csi_pb2
from s3csi.demo.s3server import EmbeddedS3Server
from s3csi.kernel.mount import mountinfo
from s3csi.kube.client import api_configuration
from s3csi.podmounter import attachment as attachments
from s3csi.podmounter.attachment import GROUP, PLURAL, VERSION, SharingInputs
from s3csi.podmounter.podspec import MountpointPodSettings, mountpoint_namespace, mountpoint_pod
from tests.integration.csi_support import DriverProcess, capability, code_of, rpc, run, start_driver
from tests.kube_fake import FakeKubeApi
from tests.kube_fake.objects import pod
from tests.kubelet_fake import FakeKubelet, publish_request

NODE = "node-1"  # csi_support.start_driver's --node-id
MOUNTERS = "s3csi-mounters"
TEAM = "team-a"
PV = "team-a-data"
WAIT_S = "4"  # --mountpoint-pod-timeout of the tests that wait in vain


@dataclass
class Cluster:
    api: FakeKubeApi
    kubelet: FakeKubelet
    base: Path
    s3_server: EmbeddedS3Server
    drivers: list[DriverProcess] = field(default_factory=list)

    @property
    def kubelet_dir(self) -> Path:
        return self.kubelet.kubelet_dir

    @property
    def driver(self) -> DriverProcess:
        return self.drivers[-1]

    def start_driver(self, *args: str) -> DriverProcess:
        driver = start_driver(
            self.base,
            self.s3_server.client_env(),
            "--mode=node",
            "--runtime=kubernetes",
            f"--state-dir={self.base / 'state'}",
            f"--kubelet-dir={self.kubelet_dir}",
            f"--s3-endpoint-url={self.s3_server.endpoint_url}",
            f"--s3-region={self.s3_server.region}",
            *self.api.driver_args(),
            *args,
        )
        self.drivers.append(driver)
        return driver

    def workload(self, name: str, fs_group: int | None = None) -> dict[str, Any]:
        obj = pod(TEAM, name, uid=str(uuid.uuid4()), node=NODE)
        if fs_group is not None:
            obj["spec"]["securityContext"] = {"fsGroup": fs_group}
        return self.api.add(obj)

    def request(self, workload: dict[str, Any], bucket: str) -> csi_pb2.NodePublishVolumeRequest:
        fs_group = workload["spec"].get("securityContext", {}).get("fsGroup")
        return publish_request(
            self.kubelet,
            workload,
            pv=PV,
            volume_id=bucket,
            attributes={"bucketName": bucket},
            fs_group=fs_group,
        )

    def assign(self, request: csi_pb2.NodePublishVolumeRequest, workload: dict[str, Any]) -> tuple[str, str]:
        """What s3csi controller does for a workload: the key's Mountpoint Pod (made once) and the
        attachment listing the workload under it. The sharing key and the Mountpoint Pod's name."""
        spec = publish_spec(request, str(self.kubelet_dir))
        inputs = SharingInputs(
            node_name=NODE,
            persistent_volume_name=spec.pv_name,
            volume_id=spec.volume_id,
            mount=spec.mount,
            authentication_source=spec.context.authentication_source,
        )
        key = inputs.sharing_key()
        return key, asyncio.run(self._assign(inputs, key, workload["metadata"]["uid"]))

    async def _assign(self, inputs: SharingInputs, key: str, workload_uid: str) -> str:
        async with ApiClient(api_configuration(self.api.settings())) as client:
            custom = CustomObjectsApi(client)
            try:
                current = await custom.get_cluster_custom_object(GROUP, VERSION, PLURAL, key)
            except ApiException as exc:
                assert exc.status == 404
                current = None
            if current and current["spec"]["mountpointPods"]:
                name = next(iter(current["spec"]["mountpointPods"]))
            else:
                created = await CoreV1Api(client).create_namespaced_pod(
                    MOUNTERS,
                    mountpoint_pod(
                        MountpointPodSettings(image="s3csi:test"),
                        node_name=NODE,
                        key=key,
                        volume_id=inputs.volume_id,
                        persistent_volume_name=inputs.persistent_volume_name,
                    ),
                )
                name = created.metadata.name
            moment = datetime.now(UTC)
            if current is None:
                new = attachments.with_workload(attachments.attachment(inputs), name, workload_uid, moment)
                await custom.create_cluster_custom_object(GROUP, VERSION, PLURAL, new)
            else:
                new = attachments.with_workload(current, name, workload_uid, moment)
                await custom.replace_cluster_custom_object(GROUP, VERSION, PLURAL, key, new)
            return name

    def publish(self, request: csi_pb2.NodePublishVolumeRequest) -> tuple[grpc.StatusCode, str]:
        return code_of(lambda: rpc(self.driver.socket_path, "Node", "NodePublishVolume", request))

    def unpublish(self, request: csi_pb2.NodePublishVolumeRequest) -> tuple[grpc.StatusCode, str]:
        unpublish = csi_pb2.NodeUnpublishVolumeRequest(
            volume_id=request.volume_id, target_path=request.target_path
        )
        return code_of(lambda: rpc(self.driver.socket_path, "Node", "NodeUnpublishVolume", unpublish))

    def mountpoint_pod_uid(self, name: str) -> str:
        uid: str = self.api.get("Pod", MOUNTERS, name)["metadata"]["uid"]
        return uid

    def mounts(self) -> list[str]:
        """The FUSE sources and targets on this node (not the emptyDirs' tmpfs, which are kubelet's)."""
        return [
            m.mount_point
            for m in mountinfo()
            if m.mount_point.startswith(f"{self.base}/") and m.fstype != "tmpfs"
        ]


def provision(
    api: FakeKubeApi,
    provisioner: DriverProcess,
    storage_class: dict[str, Any],
    claim: str,
    *,
    namespace: str = TEAM,
    storage: str = "1Gi",
) -> tuple[str, csi_pb2.CreateVolumeResponse]:
    """A claim of ``storage_class`` provisioned as Kubernetes does it: the claim (Pending), CreateVolume on
    the driver's controller service as external-provisioner sends it (name ``pvc-<claim uid>``, the class's
    parameters and mount options), the PV it then writes from the answer (volume id as volumeHandle, volume
    context as volumeAttributes, claimRef, provisioned-by), and the claim bound by the PV controller.
    Returns the PV's name and the CreateVolume answer."""
    claim_uid = str(uuid.uuid4())
    pv_name = f"pvc-{claim_uid}"
    driver = storage_class["provisioner"]
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": storage}},
        "storageClassName": storage_class["metadata"]["name"],
    }
    annotations = {"volume.kubernetes.io/storage-provisioner": driver}
    metadata = {"name": claim, "namespace": namespace, "uid": claim_uid, "annotations": annotations}
    pending = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": metadata, "spec": spec}
    api.add(pending)
    mount_options = storage_class.get("mountOptions", [])
    request = csi_pb2.CreateVolumeRequest(
        name=pv_name,
        capacity_range=csi_pb2.CapacityRange(required_bytes=1 << 30),
        volume_capabilities=[capability(mount_flags=tuple(mount_options))],
        parameters={
            k: v
            for k, v in storage_class.get("parameters", {}).items()
            if not k.startswith("csi.storage.k8s.io/")
        },
    )
    response: csi_pb2.CreateVolumeResponse = run(
        rpc(provisioner.socket_path, "Controller", "CreateVolume", request)
    )
    pv: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv_name, "annotations": {"pv.kubernetes.io/provisioned-by": driver}},
        "spec": {
            "capacity": {"storage": storage},
            "accessModes": ["ReadWriteMany"],
            "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy", "Delete"),
            "storageClassName": storage_class["metadata"]["name"],
            "mountOptions": mount_options,
            "csi": {
                "driver": driver,
                "volumeHandle": response.volume.volume_id,
                "volumeAttributes": dict(response.volume.volume_context),
            },
            "claimRef": {
                "kind": "PersistentVolumeClaim",
                "namespace": namespace,
                "name": claim,
                "uid": claim_uid,
            },
        },
        "status": {"phase": "Bound"},
    }
    api.add(pv)
    api.add(
        {
            **pending,
            "spec": {**spec, "volumeName": pv_name},
            "status": {"phase": "Bound", "accessModes": ["ReadWriteMany"], "capacity": {"storage": storage}},
        }
    )
    return pv_name, response


@contextmanager
def running_cluster(kube_api: FakeKubeApi, s3_server: EmbeddedS3Server) -> Iterator[Cluster]:
    """The node with its kubelet started; afterwards every driver stopped, every mount under it unmounted,
    its directory removed, and the kubelet's errors (a Mountpoint Pod it could not run) raised."""
    kube_api.add(mountpoint_namespace(MOUNTERS))
    kube_api.ensure_namespace(TEAM)
    base = Path(tempfile.mkdtemp(prefix="s3csi-k8s-"))
    base.chmod(0o755)  # workload uids reach the targets
    (base / "kubelet").mkdir(mode=0o755)
    kubelet = FakeKubelet(kube_api, NODE, base / "kubelet").start()
    the_cluster = Cluster(kube_api, kubelet, base, s3_server)
    try:
        yield the_cluster
    finally:
        for driver in the_cluster.drivers:
            driver.terminate()
        for mount_point in reversed(the_cluster.mounts()):
            subprocess.run(["umount", "-l", mount_point], check=False)
        kubelet.tear_down()
        subprocess.run(["rm", "-rf", "--one-file-system", str(base)], check=False)
    assert not kubelet.errors, kubelet.errors
