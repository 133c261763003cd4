"""`python -m bench.k8s_publish`: time from a workload pod's creation in the API to NodePublishVolume OK
with the Kubernetes runtime, end to end on one simulated node.

The parts are those of the end-to-end test (tests/kubernetes_support.py): the fake API server over HTTPS,
``s3csi controller`` (in this process, as the test runs it), the test kubelet running each Mountpoint Pod as
a uid 1000 ``s3csi mounter`` process, ``s3csi driver --runtime kubernetes`` over its CSI socket, real FUSE
and the embedded moto S3 server. The clock starts when the workload pod (a static PV's claim, an
fsGroup) is stored in the API, and NodePublishVolume is sent at that moment, as a kubelet that sees the pod
at once would; the node plugin then waits for the controller's attachment and the Mountpoint Pod Running.
Two cases:

- new: a fsGroup no Mountpoint Pod serves yet, so the controller creates one and the kubelet starts it;
- join: a second pod with the same fsGroup, which the controller lists under the running Mountpoint Pod.

Meanwhile the API is polled every 5 ms to split each case into its steps: until the attachment lists the
workload (the controller's watch and write), until the Mountpoint Pod is Running (the kubelet's start of
the mounter), and the rest (the node plugin's watch of both, the hand-over of the FUSE session and the bind).
After each repetition the workloads are unpublished and deleted, and the Mountpoint Pod retired (0.2 s
grace), so every "new" starts from nothing. Medians of ``--repetitions`` (5). Needs root.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from s3csi.csi.proto import csi_pb2
from s3csi.demo.s3server import EmbeddedS3Server
from tests import controller_support
from tests.boto_support import boto3_client
from tests.integration.csi_support import rpc
from tests.kube_fake import FakeKubeApi
from tests.kubelet_fake import publish_request
from tests.kubernetes_support import MOUNTERS, NODE, TEAM, Cluster, running_cluster

POLL_S = 0.005
TIMEOUT_S = 120.0
FIRST_FS_GROUP = 3000


@dataclass(frozen=True)
class Sample:
    """Seconds from the workload pod's creation to each step."""

    attached: float
    running: float
    published: float


def mountpoint_pod_running(api: FakeKubeApi, name: str) -> bool:
    return any(
        p["metadata"]["name"] == name and p.get("status", {}).get("phase") == "Running"
        for p in api.items("Pod", MOUNTERS)
    )


async def publish_new_workload(
    cluster: Cluster, name: str, *, pv: str, claim: str, bucket: str, fs_group: int
) -> tuple[Sample, csi_pb2.NodePublishVolumeRequest]:
    workload = controller_support.workload(name, claim, namespace=TEAM, node=NODE, fs_group=fs_group)
    uid = workload["metadata"]["uid"]
    request = publish_request(
        cluster.kubelet,
        workload,
        pv=pv,
        volume_id=bucket,
        attributes={"bucketName": bucket},
        fs_group=fs_group,
    )
    # The clock starts once the fake has stored the pod: its validation (tens of ms in Python) is the fake's
    # cost, not a cluster's.
    await asyncio.to_thread(cluster.api.add, workload)
    started = time.monotonic()
    call = asyncio.create_task(
        rpc(cluster.driver.socket_path, "Node", "NodePublishVolume", request, deadline_s=TIMEOUT_S)
    )
    attached: float | None = None
    running: float | None = None
    while not call.done():
        now = time.monotonic() - started
        serving = controller_support.served(cluster.api).get(uid)
        if serving is not None:
            attached = now if attached is None else attached
            if running is None and mountpoint_pod_running(cluster.api, serving[1]):
                running = now
        await asyncio.sleep(POLL_S)
    try:
        await call
    except grpc.aio.AioRpcError as error:
        raise SystemExit(
            f"bench.k8s_publish: NodePublishVolume of {name}: {error.code().name}: {error.details()}"
        ) from None
    published = time.monotonic() - started
    # A step the poll did not see happened before the call returned (a join finds the pod Running).
    return Sample(attached or published, running or attached or published, published), request


async def unpublish(cluster: Cluster, request: csi_pb2.NodePublishVolumeRequest) -> None:
    await rpc(
        cluster.driver.socket_path,
        "Node",
        "NodeUnpublishVolume",
        csi_pb2.NodeUnpublishVolumeRequest(volume_id=request.volume_id, target_path=request.target_path),
    )


async def wait_retired(api: FakeKubeApi) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while controller_support.mountpoint_pods(api) or controller_support.attachments(api):
        if time.monotonic() > deadline:
            raise SystemExit(
                f"bench.k8s_publish: the Mountpoint Pods were not retired within {TIMEOUT_S:g} s"
            )
        await asyncio.sleep(0.05)


async def measure(cluster: Cluster, bucket: str, repetitions: int) -> tuple[list[Sample], list[Sample]]:
    pv, claim = controller_support.volume(cluster.api, "bench-data", namespace=TEAM, bucket=bucket)
    new: list[Sample] = []
    join: list[Sample] = []
    the_settings = controller_support.settings(cluster.api, grace_s=0.2)
    async with controller_support.controller(the_settings):
        for repetition in range(repetitions):
            fs_group = FIRST_FS_GROUP + repetition
            names = [f"new-{repetition}", f"join-{repetition}"]
            sample, first = await publish_new_workload(
                cluster, names[0], pv=pv, claim=claim, bucket=bucket, fs_group=fs_group
            )
            new.append(sample)
            sample, second = await publish_new_workload(
                cluster, names[1], pv=pv, claim=claim, bucket=bucket, fs_group=fs_group
            )
            join.append(sample)
            print(
                f"repetition {repetition + 1}/{repetitions}: new {new[-1].published * 1000:.0f} ms, "
                f"join {join[-1].published * 1000:.0f} ms",
                file=sys.stderr,
            )
            for request in (first, second):
                await unpublish(cluster, request)
            for name in names:
                await asyncio.to_thread(cluster.api.remove, "Pod", TEAM, name)
            await wait_retired(cluster.api)
    return new, join


def median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:8.0f} ms"


def print_table(new: list[Sample], join: list[Sample]) -> None:
    print(f"\n{'':24}{'attachment':>12}{'Mountpoint Pod':>16}{'published':>12}{'min':>8}{'max':>8}")
    print(f"{'(from pod creation)':24}{'listed':>12}{'Running':>16}{'(total)':>12}")
    for label, samples in (("new Mountpoint Pod", new), ("join a running one", join)):
        totals = [s.published for s in samples]
        print(
            f"{label:<24}{median_ms([s.attached for s in samples]):>12}"
            f"{median_ms([s.running for s in samples]):>16}{median_ms(totals):>12}"
            f"{min(totals) * 1000:6.0f}{max(totals) * 1000:8.0f}"
        )
    print("\nmedians in ms; min and max of the total")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.k8s_publish", description=__doc__.split("\n")[0])
    parser.add_argument("--repetitions", type=int, default=5, help="of each case (default %(default)s)")
    args = parser.parse_args(argv)
    if args.repetitions < 1:
        parser.error(f"--repetitions must be at least 1, not {args.repetitions}")
    if os.geteuid() != 0:
        print("bench.k8s_publish: run as root (FUSE mounts, Mountpoint Pods as uid 1000)", file=sys.stderr)
        return 2
    with EmbeddedS3Server.start() as s3_server, tempfile.TemporaryDirectory(prefix="bench-k8s-") as tmp:
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        s3: Any = boto3_client("s3", s3_server)
        s3.create_bucket(Bucket=bucket)
        api = FakeKubeApi(Path(tmp) / "kube-api")
        try:
            with running_cluster(api, s3_server) as cluster:
                cluster.start_driver()
                new, join = asyncio.run(measure(cluster, bucket, args.repetitions))
        finally:
            api.stop()
    print(
        f"s3csi Kubernetes runtime, pod creation to NodePublishVolume OK: one node, {os.cpu_count()} CPUs, "
        f"embedded moto S3, median of {args.repetitions}"
    )
    print_table(new, join)
    return 0


if __name__ == "__main__":
    sys.exit(main())
