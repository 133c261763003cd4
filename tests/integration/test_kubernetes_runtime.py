"""The node plugin's Kubernetes runtime (docs/kubernetes.md, "The node plugin's Kubernetes runtime"), end to
end on one simulated node: the fake API server, the test kubelet (tests/kubelet_fake.py) running Mountpoint
Pods as uid 1000 processes from their pod spec, ``s3csi driver --runtime kubernetes`` over its real CSI
socket, real FUSE mounts and the embedded S3 server. Most tests play the controller's part with the pure
builders it uses (the Mountpoint Pod of podspec.py, the attachment of attachment.py, keyed by the sharing
key the node plugin computes), so that each can arrange exactly the state it needs; the static and the
dynamic examples run ``s3csi controller`` itself."""

from __future__ import annotations

import asyncio
import functools
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from s3csi.csi.proto import csi_pb2
from s3csi.demo.s3server import EmbeddedS3Server
from s3csi.kernel.mount import find_mount, mountinfo
from tests import controller_support
from tests.boto_support import boto3_client
from tests.conftest import run_as
from tests.integration.csi_support import rpc, start_driver
from tests.kube_fake import FakeKubeApi
from tests.kubelet_fake import publish_request
from tests.kubernetes_support import MOUNTERS, NODE, PV, TEAM, WAIT_S, Cluster, provision, running_cluster
from tests.polling import wait_until, wait_until_async
from tests.recovery_support import await_recovery, await_written_after, kill_mounter, start_workload

RECOVERY_FILES = ["a.txt", "b.txt", "c.txt"]


@pytest.fixture
def cluster(kube_api: FakeKubeApi, s3_server: EmbeddedS3Server) -> Iterator[Cluster]:
    with running_cluster(kube_api, s3_server) as the_cluster:
        yield the_cluster


def running_mounter(cluster: Cluster, name: str) -> int:
    """The pid of the Mountpoint Pod's container, once the kubelet runs it."""
    uid = cluster.mountpoint_pod_uid(name)
    container = wait_until(lambda: cluster.kubelet.containers.get(uid))
    assert container, f"the kubelet did not start Mountpoint Pod {name}"
    return container.process.pid


def test_a_publish_through_a_mountpoint_pod_reads_and_writes_s3(
    cluster: Cluster, bucket: str, s3: Any
) -> None:
    s3.put_object(Bucket=bucket, Key="hello.txt", Body=b"hello from s3")
    cluster.start_driver()
    workload = cluster.workload("app-1", fs_group=2000)
    request = cluster.request(workload, bucket)
    _, name = cluster.assign(request, workload)

    assert cluster.publish(request) == (grpc.StatusCode.OK, "")

    target = Path(request.target_path)
    assert (target / "hello.txt").read_bytes() == b"hello from s3"
    (target / "new.txt").write_bytes(b"written through the target")
    assert s3.get_object(Bucket=bucket, Key="new.txt")["Body"].read() == b"written through the target"
    assert os.stat(target / "hello.txt").st_gid == 2000  # the workload's fsGroup
    # The Mountpoint Pod ran as its spec says, and sealed itself: /proc of a non-dumpable process is root's.
    pid = running_mounter(cluster, name)
    status = Path(f"/proc/{pid}/status").read_text()
    assert "\nUid:\t1000\t1000\t1000\t1000\n" in status and "\nCapEff:\t0000000000000000\n" in status
    assert "\nNoNewPrivs:\t1\n" in status
    assert os.stat(f"/proc/{pid}/environ").st_uid == 0
    # Its comm dir is the emptyDir kubelet made (root:1000, 2777); the credentials went there, not the key.
    comm = (
        cluster.kubelet_dir
        / "pods"
        / cluster.mountpoint_pod_uid(name)
        / "volumes/kubernetes.io~empty-dir/comm"
    )
    info = os.stat(comm)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, 1000, 0o2777)
    assert [p.name for p in (comm / "credentials").iterdir()]
    assert not (comm / "mount.sock").exists()  # served: the mounter stopped listening

    assert cluster.unpublish(request) == (grpc.StatusCode.OK, "")
    assert not target.exists() and cluster.mounts() == []
    assert list((comm / "credentials").iterdir()) == []
    # restartPolicy Always: the mounter exits once unmounted and kubelet starts it again, listening.
    assert wait_until((comm / "mount.sock").exists), cluster.kubelet.container_log(
        cluster.mountpoint_pod_uid(name)
    )


def test_two_workloads_of_one_key_share_one_mountpoint_pod(cluster: Cluster, bucket: str) -> None:
    cluster.start_driver()
    first, second = cluster.workload("app-1", fs_group=2000), cluster.workload("app-2", fs_group=2000)
    requests = [cluster.request(w, bucket) for w in (first, second)]
    (key_1, name_1), (key_2, name_2) = (
        cluster.assign(r, w) for r, w in zip(requests, (first, second), strict=True)
    )
    assert (key_1, name_1) == (key_2, name_2)

    for request in requests:
        assert cluster.publish(request) == (grpc.StatusCode.OK, "")
    table = mountinfo()
    devices = {find_mount(r.target_path, table).device for r in requests}  # type: ignore[union-attr]
    assert len(devices) == 1
    assert len(cluster.api.items("Pod", MOUNTERS)) == 1 and len(cluster.kubelet.containers) == 1

    assert cluster.unpublish(requests[0]) == (grpc.StatusCode.OK, "")
    assert os.listdir(requests[1].target_path) == []  # the other workload still reads the bucket
    assert cluster.unpublish(requests[1]) == (grpc.StatusCode.OK, "")
    assert cluster.mounts() == []


def test_a_restarted_node_plugin_adopts_its_mounts(cluster: Cluster, bucket: str, s3: Any) -> None:
    s3.put_object(Bucket=bucket, Key="kept.txt", Body=b"kept")
    cluster.start_driver()
    first = cluster.workload("app-1", fs_group=2000)
    request = cluster.request(first, bucket)
    _, name = cluster.assign(request, first)
    assert cluster.publish(request) == (grpc.StatusCode.OK, "")
    pid = running_mounter(cluster, name)

    cluster.driver.process.kill()
    cluster.driver.process.wait(30)
    cluster.start_driver()

    assert (Path(request.target_path) / "kept.txt").read_bytes() == b"kept"
    assert "Mountpoint Pod in use" in cluster.driver.log()
    second = cluster.workload("app-2", fs_group=2000)
    joining = cluster.request(second, bucket)
    assert cluster.assign(joining, second)[1] == name
    assert cluster.publish(joining) == (grpc.StatusCode.OK, "")
    assert running_mounter(cluster, name) == pid  # the same FUSE session serves both
    assert cluster.unpublish(request) == (grpc.StatusCode.OK, "")
    assert cluster.unpublish(joining) == (grpc.StatusCode.OK, "")
    assert cluster.mounts() == []


def test_a_mounter_restarted_by_kubelet_gets_its_session_back(cluster: Cluster, bucket: str, s3: Any) -> None:
    """The mounter dies; kubelet restarts its container (restartCount 1). The node plugin sees in its pod
    watch that the run which took the session ended, waits for the new run to listen, and mounts a new
    session on top of the dead one at the source: a workload in its own mount namespace (HostToContainer)
    reads again, without a republish and without a restart (docs/architecture.md, "Mountpoint Pod crash
    recovery")."""
    for name in RECOVERY_FILES:
        s3.put_object(Bucket=bucket, Key=name, Body=b"kept")
    cluster.start_driver()
    first = cluster.workload("app-1", fs_group=2000)
    request = cluster.request(first, bucket)
    _, name = cluster.assign(request, first)
    assert cluster.publish(request) == (grpc.StatusCode.OK, "")
    uid = cluster.mountpoint_pod_uid(name)
    workload = start_workload(request.target_path, cluster.base / "workload", RECOVERY_FILES)
    try:
        killed_at = kill_mounter(running_mounter(cluster, name))
        seconds = await_recovery(workload, killed_at)
        print(f"\nKubernetes runtime: reads resumed {seconds * 1000:.0f} ms after kill -9 of the mounter")
        written = await_written_after(workload, killed_at)
        assert written["error"] is None, written
    finally:
        workload.stop()
    [status] = cluster.api.get("Pod", MOUNTERS, name)["status"]["containerStatuses"]
    assert status["restartCount"] == 1 and "running" in status["state"], cluster.kubelet.container_log(uid)
    assert "remounting its FUSE session under 1 targets" in cluster.driver.log()
    assert s3.get_object(Bucket=bucket, Key=written["name"])["Body"].read() == written["name"].encode()
    # The same session serves a new workload of the key.
    second = cluster.workload("app-2", fs_group=2000)
    joining = cluster.request(second, bucket)
    assert cluster.assign(joining, second)[1] == name
    assert cluster.publish(joining) == (grpc.StatusCode.OK, "")
    assert (Path(joining.target_path) / "a.txt").read_bytes() == b"kept"
    assert (Path(request.target_path) / "a.txt").read_bytes() == b"kept"
    assert cluster.unpublish(request) == (grpc.StatusCode.OK, "")
    assert cluster.unpublish(joining) == (grpc.StatusCode.OK, "")
    assert cluster.mounts() == []


def _restarted(cluster: Cluster, uid: str, killed: int, restarts: int) -> bool:
    container = cluster.kubelet.containers.get(uid)
    return container is not None and container.process.pid != killed and container.restarts == restarts


def _remounts_are(cluster: Cluster, count: int) -> bool:
    return cluster.driver.log().count("FUSE session remounted") == count


def test_a_crash_loop_is_recorded_as_an_event_on_the_workload_pod(
    cluster: Cluster, bucket: str, s3: Any
) -> None:
    """A mounter that dies again soon after its session was remounted is in a crash loop: the remount waits
    (the back-off) and the workload pod gets a Warning Event saying so (kubectl describe pod), once."""
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"kept")
    cluster.start_driver()
    workload = cluster.workload("app-1", fs_group=2000)
    request = cluster.request(workload, bucket)
    _, name = cluster.assign(request, workload)
    assert cluster.publish(request) == (grpc.StatusCode.OK, "")
    uid = cluster.mountpoint_pod_uid(name)
    for restarts in (1, 2):
        killed = running_mounter(cluster, name)
        kill_mounter(killed)
        assert wait_until(functools.partial(_restarted, cluster, uid, killed, restarts), within=60), (
            cluster.kubelet.container_log(uid)
        )
        assert wait_until(functools.partial(_remounts_are, cluster, restarts), within=60), (
            cluster.driver.log()
        )
    [event] = wait_until(lambda: cluster.api.items("Event", workload["metadata"]["namespace"]), within=30)
    assert event["reason"] == "MountpointPodCrashLoop" and event["type"] == "Warning", event
    assert event["involvedObject"]["uid"] == workload["metadata"]["uid"]
    assert "is in a crash loop (2 crashes in a row" in event["message"], event["message"]
    assert "Mountpoint Pod crash loop" in cluster.driver.log()
    assert (Path(request.target_path) / "a.txt").read_bytes() == b"kept"
    assert cluster.unpublish(request) == (grpc.StatusCode.OK, "")
    assert cluster.mounts() == []


def test_a_publish_without_an_attachment_fails_naming_it(cluster: Cluster, bucket: str) -> None:
    cluster.start_driver(f"--mountpoint-pod-timeout={WAIT_S}")
    workload = cluster.workload("app-1")
    request = cluster.request(workload, bucket)

    code, message = cluster.publish(request)

    assert code == grpc.StatusCode.UNAVAILABLE
    assert "no MountpointPodAttachment" in message and f"after {WAIT_S} s" in message, message
    assert cluster.mounts() == [] and not Path(request.target_path).exists()


def test_a_pending_mountpoint_pod_is_named_with_its_reason(cluster: Cluster, bucket: str) -> None:
    cluster.kubelet.pull_error = "pull access denied for s3csi, repository does not exist"
    cluster.start_driver(f"--mountpoint-pod-timeout={WAIT_S}")
    workload = cluster.workload("app-1")
    request = cluster.request(workload, bucket)
    _, name = cluster.assign(request, workload)

    code, message = cluster.publish(request)

    assert code == grpc.StatusCode.UNAVAILABLE
    assert f"Mountpoint Pod {MOUNTERS}/{name} is Pending because its container mounter waiting" in message
    assert "ErrImagePull: pull access denied for s3csi" in message, message
    assert cluster.mounts() == []
    # The workload pod's team reads the same in kubectl describe pod.
    [event] = workload_events(cluster, workload)
    assert (event["reason"], event["type"]) == ("MountpointPodNotReady", "Warning"), event
    assert "ErrImagePull: pull access denied for s3csi" in event["message"], event


def workload_events(cluster: Cluster, workload: dict[str, Any]) -> list[dict[str, Any]]:
    uid = workload["metadata"]["uid"]
    return [e for e in cluster.api.items("Event", TEAM) if e["involvedObject"]["uid"] == uid]


def test_an_unschedulable_mountpoint_pod_is_explained_while_the_publish_waits_and_when_it_fails(
    cluster: Cluster, bucket: str
) -> None:
    """The scheduler finds no node for the Mountpoint Pod: after a few seconds of waiting the workload pod
    gets a Warning Event naming the scheduler's reason, and the failed publish another."""
    cluster.kubelet.stop()  # nobody binds or runs it
    cluster.start_driver("--mountpoint-pod-timeout=6")  # longer than the wait before the first Event
    workload = cluster.workload("app-1")
    request = cluster.request(workload, bucket)
    _, name = cluster.assign(request, workload)
    unschedulable = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/1 nodes are available: 1 Insufficient memory.",
        "lastTransitionTime": "2026-12-05T00:00:00Z",
    }
    cluster.api.add(
        {
            **cluster.api.get("Pod", MOUNTERS, name),
            "status": {"phase": "Pending", "conditions": [unschedulable]},
        }
    )

    code, message = cluster.publish(request)

    assert code == grpc.StatusCode.UNAVAILABLE
    scheduler = "Unschedulable: 0/1 nodes are available: 1 Insufficient memory."
    assert f"Mountpoint Pod {MOUNTERS}/{name} is Pending because it is not scheduled ({scheduler})" in message
    by_reason = {e["reason"]: e for e in workload_events(cluster, workload)}
    assert sorted(by_reason) == ["MountpointPodNotReady", "WaitingForMountpointPod"], by_reason
    waiting = by_reason["WaitingForMountpointPod"]
    assert waiting["type"] == "Warning" and waiting["source"]["component"] == "s3csi-node", waiting
    assert waiting["message"].startswith(f"volume {bucket} has waited "), (
        waiting
    )  # 5 s, or a busy machine's 6
    assert " s for its Mountpoint Pod: " in waiting["message"], waiting
    assert scheduler in waiting["message"] and scheduler in by_reason["MountpointPodNotReady"]["message"]


def test_a_failed_publish_records_one_event_per_cause_on_the_workload_pod(
    cluster: Cluster, bucket: str
) -> None:
    """A missing bucket and a refused mount option, each named on the workload pod; kubelet's retry of the
    same failure counts on the same Event rather than adding one."""
    cluster.start_driver()
    workload = cluster.workload("app-1")
    missing = cluster.request(workload, "no-such-bucket-events")
    cluster.assign(missing, workload)
    for _ in range(2):
        code, message = cluster.publish(missing)
        assert code == grpc.StatusCode.NOT_FOUND and "NoSuchBucket" in message, (code, message)
    [event] = workload_events(cluster, workload)
    assert (event["reason"], event["type"], event["count"]) == ("S3BucketNotFound", "Warning", 2), event
    assert "bucket no-such-bucket-events does not exist" in event["message"], event
    assert event["involvedObject"]["name"] == "app-1" and event["reportingInstance"] == NODE

    refused = publish_request(
        cluster.kubelet,
        workload,
        pv=PV,
        volume_id=bucket,
        attributes={"bucketName": bucket},
        mount_flags=("--no-such-option",),
    )
    code, message = cluster.publish(refused)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, (code, message)
    [option] = [e for e in workload_events(cluster, workload) if e["reason"] == "MountOptionRefused"]
    assert "--no-such-option" in option["message"] and option["type"] == "Warning", option
    assert len(workload_events(cluster, workload)) == 2
    assert cluster.mounts() == []


def test_the_kubernetes_runtime_needs_the_api(tmp_path: Path) -> None:
    process = subprocess.run(
        [
            *(sys.executable, "-m", "s3csi", "driver", f"--endpoint=unix://{tmp_path}/csi.sock"),
            *(f"--node-id={NODE}", "--mode=node", "--runtime=kubernetes", "--kube-api=off"),
            f"--state-dir={tmp_path}/state",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert process.returncode != 0
    assert (
        process.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "--runtime kubernetes needs the Kubernetes API: run in a cluster or give --kube-api-url "
            "(not --kube-api off)"
        )
    ), process.stderr


def test_the_controller_and_the_node_plugin_serve_a_static_pv_with_the_pods_fs_group(
    cluster: Cluster, bucket: str, s3: Any
) -> None:
    """End to end: s3csi controller (in this process), the test kubelet, s3csi driver --runtime kubernetes.
    A static PV and a pod with fsGroup 2000: the pod's files show group 2000."""
    s3.put_object(Bucket=bucket, Key="report.csv", Body=b"a,b\n")
    pv, claim = controller_support.volume(cluster.api, "static-data", namespace=TEAM, bucket=bucket)
    workload = cluster.api.add(
        controller_support.workload("app", claim, namespace=TEAM, node=NODE, fs_group=2000)
    )
    cluster.start_driver()
    request = publish_request(
        cluster.kubelet, workload, pv=pv, volume_id=bucket, attributes={"bucketName": bucket}, fs_group=2000
    )

    async def scenario() -> tuple[grpc.StatusCode, str]:
        async with controller_support.controller(controller_support.settings(cluster.api)):
            try:
                await rpc(cluster.driver.socket_path, "Node", "NodePublishVolume", request, deadline_s=120)
            except grpc.aio.AioRpcError as error:
                return error.code(), error.details() or ""
            return grpc.StatusCode.OK, ""

    assert asyncio.run(scenario()) == (grpc.StatusCode.OK, ""), cluster.driver.log()[-2000:]
    target = Path(request.target_path)
    info = os.stat(target / "report.csv")
    assert info.st_gid == 2000 and stat.S_IMODE(info.st_mode) == 0o660
    assert (target / "report.csv").read_bytes() == b"a,b\n"
    [mountpoint] = cluster.api.items("Pod", MOUNTERS)
    assert mountpoint["status"]["phase"] == "Running"
    assert cluster.unpublish(request) == (grpc.StatusCode.OK, "")
    assert cluster.mounts() == []


# deploy/examples/dynamic-fsgroup.yaml's class, with the driver's own credentials. Only external-provisioner
# reads it (provision() plays that part); the controller goes from claim to PV, so the fake API needs no copy.
DYNAMIC_CLASS: dict[str, Any] = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {"name": "s3-sc"},
    "provisioner": "s3.csi.s3csi.io",
    "reclaimPolicy": "Delete",
    "volumeBindingMode": "Immediate",
    "mountOptions": ["allow-delete"],
    "parameters": {"provisioningMode": "bucket-per-volume"},
}


def test_the_controller_and_the_node_plugin_serve_a_provisioned_volume_then_retire_its_mountpoint_pod(
    cluster: Cluster, s3: Any
) -> None:
    """End to end, the dynamic example: a claim of a StorageClass provisioned through the driver's controller
    service, a pod running as 1001 with fsGroup 1001; its files show group 1001 and modes 770/660, what it
    writes reaches S3. Once it is gone, its entry goes and the Mountpoint Pod retires."""
    provisioner = start_driver(
        cluster.base,
        cluster.s3_server.client_env(),
        "--mode=controller",
        f"--s3-endpoint-url={cluster.s3_server.endpoint_url}",
        socket_name="controller.sock",
    )
    cluster.drivers.append(provisioner)
    pv, created = provision(cluster.api, provisioner, DYNAMIC_CLASS, "s3-dynamic-pvc")
    bucket = created.volume.volume_context["bucketName"]
    s3.put_object(Bucket=bucket, Key="reports/q1.csv", Body=b"q,1\n")
    workload = cluster.api.add(
        controller_support.workload(
            "s3-dynamic-app", "s3-dynamic-pvc", namespace=TEAM, node=NODE, fs_group=1001
        )
    )
    cluster.start_driver()
    request = publish_request(
        cluster.kubelet,
        workload,
        pv=pv,
        volume_id=created.volume.volume_id,
        attributes=dict(created.volume.volume_context),
        fs_group=1001,
        mount_flags=tuple(DYNAMIC_CLASS["mountOptions"]),
    )
    target = Path(request.target_path)

    async def scenario() -> tuple[grpc.StatusCode, str]:
        async with controller_support.controller(controller_support.settings(cluster.api, grace_s=0.3)):
            try:
                await rpc(cluster.driver.socket_path, "Node", "NodePublishVolume", request, deadline_s=120)
            except grpc.aio.AioRpcError as error:
                return error.code(), error.details() or ""
            [mountpoint] = cluster.api.items("Pod", MOUNTERS)
            assert mountpoint["status"]["phase"] == "Running"
            assert [uid for uid, _ in controller_support.served(cluster.api).items()] == [
                workload["metadata"]["uid"]
            ]
            as_workload = ("sh", "-c", f"echo hello > {target}/hello.txt && cat {target}/reports/q1.csv")
            written = await asyncio.to_thread(run_as, 1001, 1001, as_workload, groups=[1001])
            assert (written.returncode, written.stdout) == (0, b"q,1\n"), written.stderr
            assert s3.get_object(Bucket=bucket, Key="hello.txt")["Body"].read() == b"hello\n"
            modes = {
                name: (os.stat(target / name).st_gid, stat.S_IMODE(os.stat(target / name).st_mode))
                for name in ("hello.txt", "reports", "reports/q1.csv")
            }
            assert modes == {
                "hello.txt": (1001, 0o660),
                "reports": (1001, 0o770),
                "reports/q1.csv": (1001, 0o660),
            }

            # The pod is deleted: kubelet unpublishes its volume, then the pod object goes.
            await rpc(
                cluster.driver.socket_path,
                "Node",
                "NodeUnpublishVolume",
                csi_pb2.NodeUnpublishVolumeRequest(
                    volume_id=request.volume_id, target_path=request.target_path
                ),
            )
            await asyncio.to_thread(cluster.api.remove, "Pod", TEAM, "s3-dynamic-app")

            def retired() -> bool:
                return not (
                    controller_support.served(cluster.api)
                    or cluster.api.items("Pod", MOUNTERS)
                    or controller_support.attachments(cluster.api)
                    or cluster.kubelet.containers
                )

            assert await wait_until_async(retired), (
                cluster.api.items("Pod", MOUNTERS),
                cluster.kubelet.containers,
            )
            return grpc.StatusCode.OK, ""

    assert asyncio.run(scenario()) == (grpc.StatusCode.OK, ""), cluster.driver.log()[-2000:]
    assert cluster.mounts() == [] and not target.exists()


def test_a_node_plugin_the_api_refuses_exits_naming_the_rbac_rule(cluster: Cluster) -> None:
    cluster.api.forbidden.add("mountpointpodattachments")
    driver = start_driver(
        cluster.base,
        cluster.s3_server.client_env(),
        "--mode=node",
        "--runtime=kubernetes",
        f"--state-dir={cluster.base / 'state'}",
        f"--kubelet-dir={cluster.kubelet_dir}",
        *cluster.api.driver_args(),
        wait=False,
    )
    cluster.drivers.append(driver)

    assert driver.process.wait(60) != 0
    last = driver.log().strip().splitlines()[-1]
    assert "list/watch mountpointpodattachments: forbidden (HTTP 403" in last, driver.log()
    assert "needs RBAC verbs list and watch on mountpointpodattachments (deploy/node-rbac.yaml)" in last
    assert cluster.api.token not in driver.log()


def test_keys_s3_does_not_know_are_named_on_the_workload_pod(kube_api: FakeKubeApi) -> None:
    """Against S3 that checks signatures (moto with IAM on): the driver's keys are unknown to it, and the
    workload pod's Event says the credentials were refused — without a credential in it."""
    with EmbeddedS3Server.start(enforce_iam=True) as server, running_cluster(kube_api, server) as cluster:
        server.allow_unauthenticated_calls(None)
        boto3_client("s3", server).create_bucket(Bucket="events-keys")
        server.allow_unauthenticated_calls(0)  # from now on every call is checked
        cluster.start_driver()  # the server's default keys, which its IAM does not know
        workload = cluster.workload("app-1")
        request = cluster.request(workload, "events-keys")
        cluster.assign(request, workload)

        code, message = cluster.publish(request)

        assert code == grpc.StatusCode.PERMISSION_DENIED and "InvalidAccessKeyId" in message, (code, message)
        [event] = workload_events(cluster, workload)
        assert (event["reason"], event["type"]) == ("S3CredentialsRefused", "Warning"), event
        assert "S3 refused the credentials for bucket events-keys (InvalidAccessKeyId)" in event["message"]
        assert server.secret_access_key not in event["message"]
        assert cluster.mounts() == []
