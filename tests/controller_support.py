"""Arranging workloads for ``s3csi controller`` against the fake API server (tests/kube_fake), and running
controller replicas in the test's event loop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from s3csi.controller.cli import serve
from s3csi.controller.settings import ControllerSettings, LeaseSettings
from s3csi.csi.settings import DEFAULT_DRIVER_NAME
from s3csi.metrics.controller import ControllerMetrics
from s3csi.metrics.endpoint import MetricsAddress
from s3csi.podmounter.podspec import DEFAULT_NAMESPACE, MountpointPodSettings, mountpoint_namespace
from s3csi.volume.context import SHARING_KEY_LABEL
from tests.kube_fake import FakeKubeApi

IMAGE = "registry.example/s3csi:test"
LEASE_NAME = "s3csi-controller"
DYNAMIC_ANNOTATION = "volume.kubernetes.io/storage-provisioner"


def settings(
    api: FakeKubeApi, identity: str = "replica-a", *, grace_s: float = 0.3, driver_version: str = "1.0.0"
) -> ControllerSettings:
    """Short timings: the tests wait on the fake's state, never on these."""
    return ControllerSettings(
        kube=api.settings(),
        mountpoint_pods=MountpointPodSettings(image=IMAGE, driver_version=driver_version),
        lease=LeaseSettings(
            identity=identity, lease_duration_s=2.0, renew_deadline_s=1.5, retry_period_s=0.2
        ),
        idle_grace_s=grace_s,
        resync_s=2.0,
        watch_timeout_s=30,
    )


@asynccontextmanager
async def controller(
    the_settings: ControllerSettings,
    metrics: ControllerMetrics | None = None,
    address: MetricsAddress | None = None,
) -> AsyncIterator[asyncio.Task[None]]:
    """One replica competing for the Lease while the block runs (its task, to kill it early); its
    ``metrics`` and ``/healthz`` served at ``address`` when given."""
    task = asyncio.create_task(serve(the_settings, metrics, address))
    try:
        yield task
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def prepare(api: FakeKubeApi) -> None:
    api.add(mountpoint_namespace())


def volume(
    api: FakeKubeApi,
    name: str,
    *,
    namespace: str = "team-a",
    bucket: str = "bucket-1",
    attributes: dict[str, str] | None = None,
    mount_options: list[str] | None = None,
    access_mode: str = "ReadWriteMany",
    dynamic: bool = False,
    secret: tuple[str, str] | None = None,
    driver: str = DEFAULT_DRIVER_NAME,
) -> tuple[str, str]:
    """A PV of ``driver`` and a claim bound to it (both named ``name``): static as an operator writes it,
    or dynamic as the external-provisioner and the PV controller leave it. Returns (PV name, claim name)."""
    claim_uid = str(uuid.uuid4())
    csi: dict[str, Any] = {
        "driver": driver,
        "volumeHandle": bucket if not dynamic else f"{bucket}/pvc-{claim_uid}",
        "volumeAttributes": {"bucketName": bucket, **(attributes or {})},
    }
    if secret:
        csi["nodePublishSecretRef"] = {"namespace": secret[0], "name": secret[1]}
    pv_name = f"pvc-{claim_uid}" if dynamic else name
    pv_metadata: dict[str, Any] = {"name": pv_name}
    if dynamic:
        pv_metadata["annotations"] = {"pv.kubernetes.io/provisioned-by": driver}
    pv: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": pv_metadata,
        "spec": {
            "capacity": {"storage": "1Ti"},
            "accessModes": [access_mode],
            "persistentVolumeReclaimPolicy": "Delete" if dynamic else "Retain",
            "storageClassName": "s3" if dynamic else "",
            "csi": csi,
            "claimRef": {
                "kind": "PersistentVolumeClaim",
                "namespace": namespace,
                "name": name,
                "uid": claim_uid,
            },
        },
        "status": {"phase": "Bound"},
    }
    if mount_options:
        pv["spec"]["mountOptions"] = mount_options
    api.add(pv)
    claim_metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": claim_uid}
    if dynamic:
        claim_metadata["annotations"] = {DYNAMIC_ANNOTATION: driver}
    api.add(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": claim_metadata,
            "spec": {
                "accessModes": [access_mode],
                "resources": {"requests": {"storage": "1Ti"}},
                "storageClassName": "s3" if dynamic else "",
                "volumeName": pv_name,
            },
            "status": {"phase": "Bound", "accessModes": [access_mode], "capacity": {"storage": "1Ti"}},
        }
    )
    return pv_name, name


def workload(
    name: str,
    claim: str,
    *,
    namespace: str = "team-a",
    node: str = "node-1",
    fs_group: int | None = None,
    fs_user: str | None = None,
    read_only: bool = False,
    service_account: str | None = None,
) -> dict[str, Any]:
    """A workload pod scheduled to ``node`` with ``claim`` mounted, running."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": str(uuid.uuid4())}
    if fs_user is not None:
        metadata["annotations"] = {"s3csi.io/fs-user": fs_user}
    spec: dict[str, Any] = {
        "nodeName": node,
        "containers": [
            {"name": "app", "image": "busybox", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
        ],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}}],
    }
    if fs_group is not None:
        spec["securityContext"] = {"fsGroup": fs_group}
    if service_account:
        spec["serviceAccountName"] = service_account
    running = {
        "name": "app",
        "ready": True,
        "restartCount": 0,
        "image": "busybox",
        "imageID": "",
        "state": {"running": {"startedAt": "2026-12-05T00:00:00Z"}},
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": spec,
        "status": {"phase": "Running", "containerStatuses": [running]},
    }


def mountpoint_pods(api: FakeKubeApi) -> list[dict[str, Any]]:
    return api.items("Pod", DEFAULT_NAMESPACE)


def attachments(api: FakeKubeApi) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in api.items("MountpointPodAttachment")}


def served(api: FakeKubeApi) -> dict[str, tuple[str, str]]:
    """Workload pod uid → (attachment name, Mountpoint Pod name), as the node plugin would find them."""
    found = {}
    for name, obj in attachments(api).items():
        for pod, entries in obj["spec"]["mountpointPods"].items():
            for entry in entries:
                found[entry["workloadPodUID"]] = (name, pod)
    return found


def pods_per_key(api: FakeKubeApi) -> dict[str, list[str]]:
    """Sharing key → the Mountpoint Pods labelled with it (not being deleted)."""
    found: dict[str, list[str]] = {}
    for pod in mountpoint_pods(api):
        if not pod["metadata"].get("deletionTimestamp"):
            found.setdefault(pod["metadata"]["labels"][SHARING_KEY_LABEL], []).append(pod["metadata"]["name"])
    return found


def settled(api: FakeKubeApi, expected_uids: set[str]) -> bool:
    """Every expected workload served by a live Mountpoint Pod of its key, nobody else served, one pod per
    key."""
    serving = served(api)
    if set(serving) != expected_uids:
        return False
    per_key = pods_per_key(api)
    if any(len(names) != 1 for names in per_key.values()):
        return False
    return all(per_key.get(key) == [pod] for key, pod in serving.values())
