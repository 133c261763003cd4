"""``s3csi controller`` against the fake API server (tests/kube_fake): real HTTPS, real kubernetes-asyncio,
every object it writes validated against the official schemas and the CRD. Each test waits on the fake's
state with a deadline (tests/polling.py), never on a timing."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client import generate_latest

from s3csi.controller.main import Controller
from s3csi.kube.api import Api
from s3csi.metrics.controller import ControllerMetrics
from s3csi.metrics.endpoint import MetricsAddress, new_registry
from s3csi.podmounter.podspec import DEFAULT_NAMESPACE
from s3csi.volume.context import DRIVER_VERSION_KEY, PERSISTENT_VOLUME_NAME_ANNOTATION, SHARING_KEY_LABEL
from tests.controller_support import (
    LEASE_NAME,
    attachments,
    controller,
    mountpoint_pods,
    pods_per_key,
    prepare,
    served,
    settings,
    settled,
    volume,
    workload,
)
from tests.kube_fake import FakeKubeApi
from tests.kube_fake.objects import service_account
from tests.metrics_support import get_async, parse, scrape_async, value
from tests.polling import wait_until_async

T = TypeVar("T")


@pytest.fixture
def api(kube_api: FakeKubeApi) -> FakeKubeApi:
    prepare(kube_api)
    return kube_api


def run(scenario: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(scenario())  # type: ignore[arg-type]


def uid(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["uid"])


def test_static_and_dynamic_volumes_get_one_mountpoint_pod_each(api: FakeKubeApi) -> None:
    volume(api, "static-data")
    _pv, dynamic_claim = volume(api, "dynamic-data", dynamic=True, bucket="bucket-2")
    a = api.add(workload("a", "static-data"))
    b = api.add(workload("b", dynamic_claim))

    async def scenario() -> bool:
        async with controller(settings(api)):
            return await wait_until_async(
                lambda: (
                    settled(api, {uid(a), uid(b)})
                    and all(obj.get("status") for obj in attachments(api).values())
                )
            )

    assert run(scenario), (served(api), pods_per_key(api), attachments(api))
    assert served(api)[uid(a)][1] != served(api)[uid(b)][1]
    for pod in mountpoint_pods(api):
        assert pod["spec"]["affinity"]["nodeAffinity"]  # the builder's pod, as created
        assert pod["metadata"]["labels"][DRIVER_VERSION_KEY] == "1.0.0"
    for obj in attachments(api).values():
        assert obj["status"] == {"mountpointPods": 1, "workloadPods": 1}


def test_a_volumes_mountpoint_pod_attributes_size_its_mountpoint_pod(api: FakeKubeApi) -> None:
    # mountpointContainerResources* on the PV override the controller's defaults for that volume's
    # Mountpoint Pod only; a memory request the default limit cannot hold is refused with an Event naming
    # the attributes.
    big = {
        "mountpointContainerResourcesRequestsCpu": "1",
        "mountpointContainerResourcesRequestsMemory": "1Gi",
        "mountpointContainerResourcesLimitsCpu": "2",
        "mountpointContainerResourcesLimitsMemory": "2Gi",
    }
    volume(api, "big", attributes=big)
    volume(api, "plain", bucket="bucket-2")
    volume(
        api, "too-big", bucket="bucket-3", attributes={"mountpointContainerResourcesRequestsMemory": "1Gi"}
    )
    a = api.add(workload("a", "big"))
    b = api.add(workload("b", "plain"))
    refused = api.add(workload("refused", "too-big"))

    async def scenario() -> bool:
        async with controller(settings(api)):
            return await wait_until_async(
                lambda: settled(api, {uid(a), uid(b)}) and len(api.items("Event", "team-a")) == 1
            )

    assert run(scenario), (served(api), api.items("Event", "team-a"))
    by_pv = {
        pod["metadata"]["annotations"][PERSISTENT_VOLUME_NAME_ANNOTATION]: pod["spec"]["containers"][0][
            "resources"
        ]
        for pod in mountpoint_pods(api)
    }
    assert by_pv == {
        "big": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
        "plain": {"requests": {"cpu": "200m", "memory": "160Mi"}, "limits": {"memory": "512Mi"}},
    }
    [event] = api.items("Event", "team-a")
    assert event["involvedObject"]["uid"] == uid(refused)
    assert "memory request 1Gi exceeds its limit 512Mi" in event["message"]
    assert "mountpointContainerResourcesRequestsMemory" in event["message"]


def test_a_volumes_cache_attributes_give_its_mountpoint_pod_a_cache_volume(api: FakeKubeApi) -> None:
    # A memory-backed cache counts in the pod's memory: its size is added to the request and the limit.
    memory = {"cache": "emptyDir", "cacheEmptyDirMedium": "Memory", "cacheEmptyDirSizeLimit": "1Gi"}
    ephemeral = {"cache": "ephemeral", "cacheEphemeralStorageResourceRequest": "20Gi"}
    volume(api, "in-memory", attributes=memory)
    volume(api, "on-pvc", bucket="bucket-2", attributes=ephemeral)
    a = api.add(workload("a", "in-memory"))
    b = api.add(workload("b", "on-pvc"))

    async def scenario() -> bool:
        async with controller(settings(api)):
            return await wait_until_async(lambda: settled(api, {uid(a), uid(b)}))

    assert run(scenario), served(api)
    by_pv = {
        pod["metadata"]["annotations"][PERSISTENT_VOLUME_NAME_ANNOTATION]: pod["spec"]
        for pod in mountpoint_pods(api)
    }
    assert {"name": "cache", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}} in by_pv["in-memory"][
        "volumes"
    ]
    assert by_pv["in-memory"]["containers"][0]["resources"] == {
        "requests": {"cpu": "200m", "memory": "1184Mi"},
        "limits": {"memory": "1536Mi"},
    }
    [claim] = [
        v["ephemeral"]["volumeClaimTemplate"]["spec"] for v in by_pv["on-pvc"]["volumes"] if "ephemeral" in v
    ]
    assert claim["resources"] == {"requests": {"storage": "20Gi"}}
    for spec in by_pv.values():
        assert {"name": "cache", "mountPath": "/cache"} in spec["containers"][0]["volumeMounts"]


def role(name: str) -> dict[str, str]:
    return {"eks.amazonaws.com/role-arn": f"arn:aws:iam::111122223333:role/{name}"}


def test_sharing_matrix(api: FakeKubeApi) -> None:
    """Same fsGroup shares; another fsGroup, an fsUser, read-only or another credentials identity (the
    service account and its role, for pod credentials) gets its own Mountpoint Pod."""
    volume(api, "data")
    volume(api, "by-pod", bucket="bucket-2", attributes={"authenticationSource": "pod"})
    api.add(service_account("team-a", "reader", role("reader")))
    api.add(service_account("team-a", "writer", role("writer")))
    pods = {
        "base": workload("base", "data", fs_group=2000),
        "same": workload("same", "data", fs_group=2000),
        "other-group": workload("other-group", "data", fs_group=3000),
        "fs-user": workload("fs-user", "data", fs_group=2000, fs_user="1001"),
        "read-only": workload("read-only", "data", fs_group=2000, read_only=True),
        "reader": workload("reader", "by-pod", service_account="reader"),
        "reader-2": workload("reader-2", "by-pod", service_account="reader"),
        "writer": workload("writer", "by-pod", service_account="writer"),
    }
    uids = {name: uid(api.add(pod)) for name, pod in pods.items()}

    async def scenario() -> bool:
        async with controller(settings(api)):
            if not await wait_until_async(lambda: settled(api, set(uids.values()))):
                return False
            # The reader account's role annotation changes while its pods run: they keep their Mountpoint
            # Pod; the next pod of that account assumes the new role, so it gets a Mountpoint Pod of its own.
            api.add(service_account("team-a", "reader", role("reader-v2")))
            uids["reader-3"] = uid(api.add(workload("reader-3", "by-pod", service_account="reader")))
            return await wait_until_async(lambda: settled(api, set(uids.values())))

    assert run(scenario), (served(api), pods_per_key(api))
    pod_of = {name: served(api)[pod_uid][1] for name, pod_uid in uids.items()}
    assert pod_of["same"] == pod_of["base"] and pod_of["reader-2"] == pod_of["reader"]
    distinct = ["base", "other-group", "fs-user", "read-only", "reader", "writer", "reader-3"]
    assert len({pod_of[name] for name in distinct}) == len(distinct)
    assert len(mountpoint_pods(api)) == len(distinct)
    roles = {obj["spec"].get("workloadRoleARN") for obj in attachments(api).values()}
    assert roles == {
        None,
        *(role(name)["eks.amazonaws.com/role-arn"] for name in ("reader", "writer", "reader-v2")),
    }


def hundred_pods(api: FakeKubeApi) -> set[str]:
    """100 workload pods on 3 nodes using 10 fsGroups of one volume: 30 (node, key) pairs."""
    volume(api, "shared")
    return {
        uid(api.add(workload(f"w-{i}", "shared", node=f"node-{i % 3}", fs_group=1000 + i % 10)))
        for i in range(100)
    }


def one_pod_per_node_and_key(api: FakeKubeApi) -> bool:
    per_key = pods_per_key(api)
    nodes_and_keys = {
        (
            pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
                "nodeSelectorTerms"
            ][0]["matchFields"][0]["values"][0],
            pod["metadata"]["labels"][SHARING_KEY_LABEL],
        )
        for pod in mountpoint_pods(api)
    }
    return (
        len(per_key) == 30
        and all(len(names) == 1 for names in per_key.values())
        and len(nodes_and_keys) == 30
    )


def test_a_hundred_pods_ten_keys_three_nodes_one_mountpoint_pod_per_node_and_key(api: FakeKubeApi) -> None:
    uids = hundred_pods(api)

    async def scenario() -> bool:
        async with controller(settings(api)):
            return await wait_until_async(lambda: settled(api, uids))

    assert run(scenario), pods_per_key(api)
    assert one_pod_per_node_and_key(api)
    assert len(mountpoint_pods(api)) == 30 and len(attachments(api)) == 30


def test_the_leader_killed_mid_reconcile_the_other_replica_finishes_the_same_way(api: FakeKubeApi) -> None:
    uids = hundred_pods(api)

    async def scenario() -> list[str]:
        async with controller(settings(api, "replica-a")) as leader:
            assert await wait_until_async(lambda: api.items("Lease", "kube-system"))
            async with controller(settings(api, "replica-b")):
                # Killed while it is still creating pods and writing entries (it holds the Lease).
                assert await wait_until_async(lambda: len(mountpoint_pods(api)) > 0, interval=0.01)
                leader.cancel()
                await asyncio.gather(leader, return_exceptions=True)  # it stops: no write after this
                assert await wait_until_async(
                    lambda: (
                        api.get("Lease", "kube-system", LEASE_NAME)["spec"]["holderIdentity"] == "replica-b"
                    )
                ), api.get("Lease", "kube-system", LEASE_NAME)
                done = await wait_until_async(lambda: settled(api, uids))
                unsettled = {key: pods for key, pods in pods_per_key(api).items() if len(pods) != 1}
                assert done, (unsettled, len(uids - set(served(api))), len(mountpoint_pods(api)))
                return [p["metadata"]["name"] for p in mountpoint_pods(api)]

    names = run(scenario)
    assert one_pod_per_node_and_key(api) and len(names) == 30


def test_a_restarted_controller_makes_no_duplicates(api: FakeKubeApi) -> None:
    uids = hundred_pods(api)

    async def scenario() -> bool:
        async with controller(settings(api)):
            assert await wait_until_async(lambda: settled(api, uids))
        before = (sorted(p["metadata"]["name"] for p in mountpoint_pods(api)), served(api))
        async with controller(settings(api)):  # the same replica again: it holds the Lease at once
            # A pass of the new process is seen by a workload of an existing key being served.
            late = uid(api.add(workload("late", "shared", node="node-0", fs_group=1000)))
            assert await wait_until_async(lambda: late in served(api))
        after = (sorted(p["metadata"]["name"] for p in mountpoint_pods(api)), served(api))
        assert after[0] == before[0]
        assert {k: v for k, v in after[1].items() if k != late} == before[1]
        return True

    assert run(scenario)


def test_a_deleted_workload_leaves_after_its_containers_then_its_pod_retires(
    api: FakeKubeApi, tmp_path: Path
) -> None:
    volume(api, "data")
    leaving = api.add(workload("leaving", "data", fs_group=1))
    pods = api.resource("Pod")
    endpoint = str(tmp_path / "metrics.sock")
    metrics = ControllerMetrics(new_registry())

    async def scenario() -> None:
        async with controller(settings(api, grace_s=0.5), metrics, MetricsAddress(path=endpoint)):
            assert await wait_until_async(lambda: settled(api, {uid(leaving)}))
            first = await scrape_async(endpoint)
            assert value(first, "s3csi_controller_leader") == 1
            assert value(first, "s3csi_controller_mountpoint_pods_created_total") == 1
            assert await get_async(endpoint, "/healthz") == (200, "ok")
            [mountpoint] = [p["metadata"]["name"] for p in mountpoint_pods(api)]
            api.store.delete(pods, "team-a", "leaving")  # graceful: its container still runs
            assert api.get("Pod", "team-a", "leaving")["metadata"]["deletionTimestamp"]
            marker = uid(api.add(workload("marker", "data", fs_group=2)))  # a pass after the deletion
            assert await wait_until_async(lambda: marker in served(api))
            assert uid(leaving) in served(api)  # terminating with the volume mounted: kept
            api.remove("Pod", "team-a", "leaving")  # kubelet done: the pod is gone
            assert await wait_until_async(lambda: uid(leaving) not in served(api))
            assert await wait_until_async(
                lambda: mountpoint not in [p["metadata"]["name"] for p in mountpoint_pods(api)]
            )
            assert await wait_until_async(lambda: len(attachments(api)) == 1)
            last = await scrape_async(endpoint)
            # Two keys (fsGroup 1, then 2): two Mountpoint Pods made, the first retired; no API call failed.
            assert value(last, "s3csi_controller_mountpoint_pods_created_total") == 2
            assert value(last, "s3csi_controller_mountpoint_pods_retired_total") == 1
            assert value(last, "s3csi_controller_reconciles_total", result="error") == 0
            passes = value(last, "s3csi_controller_reconciles_total", result="ok")
            assert passes >= 3 and value(last, "s3csi_controller_reconcile_duration_seconds_count") == passes
            # Its life on the Mountpoint Pod, for kubectl describe: for whom it was made, why it went.
            assert await wait_until_async(lambda: len(lifecycle(api, mountpoint)) == 2)
            return str(mountpoint)

    mountpoint = run(scenario)
    by_reason = {event["reason"]: event for event in lifecycle(api, mountpoint)}
    created, retired = by_reason["MountpointPodCreated"], by_reason["MountpointPodRetired"]
    assert created["type"] == retired["type"] == "Normal"
    assert "for pods team-a/leaving" in created["message"] and "on node " in created["message"], created
    assert "served no workload pod for the grace period (0.5 s)" in retired["message"], retired
    assert "driver version" not in retired["message"]


def lifecycle(api: FakeKubeApi, mountpoint_pod: str) -> list[dict[str, Any]]:
    """The Events on a Mountpoint Pod."""
    events = api.items("Event", DEFAULT_NAMESPACE)
    return [event for event in events if event["involvedObject"]["name"] == mountpoint_pod]


def test_a_mountpoint_pod_that_cannot_be_created_is_told_on_its_waiting_pod_once(
    kube_api: FakeKubeApi,
) -> None:
    """No namespace for Mountpoint Pods (it was not installed): every pass fails to create the pod, and each
    waiting workload pod has one Warning Event naming the API's answer, counted at each pass."""
    volume(kube_api, "data")
    first = kube_api.add(workload("first", "data"))

    def counts() -> dict[str, int]:
        return {e["involvedObject"]["uid"]: e["count"] for e in kube_api.items("Event", "team-a")}

    async def scenario() -> None:
        async with controller(settings(kube_api)):
            assert await wait_until_async(lambda: counts() == {uid(first): 1}), counts()
            second = kube_api.add(workload("second", "data"))  # a pass that fails again, for both
            # (2, or more if a resync pass came first: never a second Event)
            assert await wait_until_async(
                lambda: set(counts()) == {uid(first), uid(second)} and counts()[uid(first)] >= 2
            ), counts()

    run(scenario)
    for event in kube_api.items("Event", "team-a"):
        assert (event["reason"], event["type"]) == ("MountpointPodCreateFailed", "Warning"), event
        assert f'namespaces "{DEFAULT_NAMESPACE}" not found' in event["message"], event


def test_the_queue_depth_counts_changes_until_the_next_pass(api: FakeKubeApi) -> None:
    metrics = ControllerMetrics()

    def now(name: str, **labels: str) -> float:
        return value(parse(generate_latest(metrics.registry).decode()), name, **labels)

    async def scenario() -> list[float]:
        client = Api(settings(api).kube)
        try:
            work = Controller(settings(api), client, metrics=metrics)
            seen = [now("s3csi_controller_queue_depth")]
            for informer in (work.pods, work.claims):  # two watch events arrive
                assert informer.on_change is not None
                informer.on_change()
            seen.append(now("s3csi_controller_queue_depth"))
            await work.reconcile_once()  # an empty world: no API call
            seen.append(now("s3csi_controller_queue_depth"))
            seen.append(now("s3csi_controller_reconciles_total", result="ok"))
            return seen
        finally:
            await client.close()

    assert run(scenario) == [0, 2, 0, 1]


def test_a_new_driver_version_gets_its_own_mountpoint_pod_and_the_old_one_retires(api: FakeKubeApi) -> None:
    volume(api, "data")
    old = api.add(workload("old", "data"))

    async def scenario() -> str:
        async with controller(settings(api, driver_version="1.0.0")):
            assert await wait_until_async(lambda: settled(api, {uid(old)}))
        [old_pod] = [p["metadata"]["name"] for p in mountpoint_pods(api)]
        async with controller(settings(api, driver_version="1.1.0", grace_s=0.2)):
            new = uid(api.add(workload("new", "data")))
            assert await wait_until_async(lambda: new in served(api))
            assert served(api)[uid(old)][1] == old_pod and served(api)[new][1] != old_pod
            new_pod = served(api)[new][1]
            assert (
                api.get("Pod", DEFAULT_NAMESPACE, new_pod)["metadata"]["labels"][DRIVER_VERSION_KEY]
                == "1.1.0"
            )
            api.remove("Pod", "team-a", "old")
            assert await wait_until_async(
                lambda: [p["metadata"]["name"] for p in mountpoint_pods(api)] == [new_pod]
            )
            assert await wait_until_async(lambda: len(lifecycle(api, old_pod)) == 2)
        return str(old_pod)

    old_pod = run(scenario)
    [retired] = [event for event in lifecycle(api, old_pod) if event["reason"] == "MountpointPodRetired"]
    assert "runs another driver version than this controller's (1.1.0)" in retired["message"], retired


def test_a_pod_that_cannot_be_served_gets_one_event_naming_the_cause(api: FakeKubeApi) -> None:
    volume(api, "bad", mount_options=["--no-such-option"])
    volume(api, "good")
    _pv, unbound = volume(api, "later", dynamic=True)
    claim = api.get("PersistentVolumeClaim", "team-a", unbound)
    claim["spec"].pop("volumeName")
    claim["status"] = {"phase": "Pending"}
    api.add(claim)
    refused = api.add(workload("refused", "bad"))
    waiting = api.add(workload("waiting", unbound))

    def events() -> list[dict[str, Any]]:
        return api.items("Event", "team-a")

    async def scenario() -> None:
        async with controller(settings(api)):
            assert await wait_until_async(lambda: len(events()) == 2), events()
            marker = uid(api.add(workload("marker", "good")))  # later passes report nothing again
            assert await wait_until_async(lambda: marker in served(api))

    run(scenario)
    by_pod = {event["involvedObject"]["uid"]: event for event in events()}
    assert set(by_pod) == {uid(refused), uid(waiting)}
    assert by_pod[uid(refused)]["reason"] == "VolumeNotServed" and by_pod[uid(refused)]["type"] == "Warning"
    assert "no-such-option" in by_pod[uid(refused)]["message"]
    assert "not bound to a PersistentVolume" in by_pod[uid(waiting)]["message"]
    assert uid(refused) not in served(api)


def test_a_compacted_watch_lists_again(api: FakeKubeApi) -> None:
    volume(api, "data")
    first = api.add(workload("first", "data"))

    async def scenario() -> bool:
        the_settings = dataclasses.replace(settings(api), watch_timeout_s=1)
        async with controller(the_settings):
            assert await wait_until_async(lambda: settled(api, {uid(first)}))
            api.store.compact()
            api.send_bookmarks()
            second = uid(api.add(workload("second", "data", fs_group=9)))
            return await wait_until_async(lambda: settled(api, {uid(first), second}))

    assert run(scenario)


def test_a_secret_that_cannot_be_read_postpones_the_pass_rather_than_refusing_the_pod(
    api: FakeKubeApi,
) -> None:
    data = {"access_key_id": "AKIAEXAMPLE1", "secret_access_key": "s3cr3t"}
    api.add(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s3-keys", "namespace": "team-a"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
    )
    volume(api, "keyed", attributes={"authenticationSource": "secret"}, secret=("team-a", "s3-keys"))
    keyed = uid(api.add(workload("keyed", "keyed")))
    api.forbidden.add("secrets")

    async def scenario() -> None:
        async with controller(settings(api)):
            assert await wait_until_async(
                lambda: (
                    sum("/secrets/" in request.path for request in api.seen) >= 2
                )  # read, failed, read again
            )
            assert not served(api) and not api.items("Event", "team-a") and not mountpoint_pods(api)
            api.forbidden.discard("secrets")
            assert await wait_until_async(lambda: settled(api, {keyed}))

    run(scenario)


def test_a_forbidden_watch_is_logged_once_and_retried_until_allowed(
    api: FakeKubeApi, caplog: pytest.LogCaptureFixture
) -> None:
    volume(api, "data")
    pod = uid(api.add(workload("a", "data")))
    api.forbidden.add("persistentvolumes")

    def pv_requests() -> int:
        return sum(request.path == "/api/v1/persistentvolumes" for request in api.seen)

    async def scenario() -> bool:
        async with controller(settings(api)):
            assert await wait_until_async(lambda: pv_requests() >= 3)  # refused, retried, refused again
            api.forbidden.discard("persistentvolumes")
            return await wait_until_async(lambda: settled(api, {pod}))

    with caplog.at_level(logging.WARNING, logger="s3csi.kube.informer"):
        assert run(scenario)
    failures = [
        r for r in caplog.records if "list/watch of /api/v1/persistentvolumes failed" in r.getMessage()
    ]
    assert len(failures) == 1 and "403" in failures[0].getMessage()
