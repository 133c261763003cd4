"""What the node plugin reads in a Mountpoint Pod's status, and the words it tells kubelet (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from s3csi.podmounter.mountpoint_status import container_running, pod_problem, restart_count


def pod(
    phase: str | None = "Running",
    state: dict[str, Any] | None = None,
    *,
    node: str | None = "node-1",
    deleting: bool = False,
    conditions: list[dict[str, Any]] | None = None,
    last: dict[str, Any] | None = None,
    **status: Any,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "mp-abcde"}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-05T01:02:03Z"
    container: dict[str, Any] = {"name": "mounter", "state": state or {}}
    if last:
        container["lastState"] = {"terminated": last}
    body: dict[str, Any] = {"containerStatuses": [container], **status}
    if phase is not None:
        body["phase"] = phase
    if conditions is not None:
        body["conditions"] = conditions
    return {"metadata": metadata, "spec": {"nodeName": node} if node else {}, "status": body}


RUNNING = {"running": {"startedAt": "2026-12-05T01:02:03Z"}}


@pytest.mark.parametrize(
    ("obj", "problem"),
    [
        (pod("Running", RUNNING), None),
        (pod("Running", RUNNING, deleting=True), "is being deleted"),
        (
            pod(None, None, node=None),
            "is Pending: not scheduled to a node yet",
        ),
        (
            pod(
                "Pending",
                None,
                node=None,
                conditions=[
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/3 nodes are available: 3 Insufficient memory.",
                    }
                ],
            ),
            "is Pending because it is not scheduled (Unschedulable: 0/3 nodes are available: 3 Insufficient "
            "memory.)",
        ),
        (
            pod(
                "Pending",
                {"waiting": {"reason": "ImagePullBackOff", "message": 'Back-off pulling "s3csi:1"'}},
            ),
            'is Pending because its container mounter waiting (ImagePullBackOff: Back-off pulling "s3csi:1")',
        ),
        (
            pod(
                "Running",
                {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}},
                last={"exitCode": 1, "reason": "Error", "message": "mounter: bad flag"},
            ),
            "is Running because its container mounter waiting (CrashLoopBackOff: back-off 10s), last "
            "terminated (Error, exit code 1: mounter: bad flag)",
        ),
        (
            pod(
                "Failed",
                {"terminated": {"exitCode": 137, "reason": "OOMKilled"}},
                reason="Evicted",
                message="The node was low on resource: memory.",
            ),
            "is Failed (Evicted: The node was low on resource: memory.), container mounter terminated "
            "(OOMKilled, exit code 137)",
        ),
        (pod("Pending", None), "is Pending: container mounter not started yet"),
        (
            pod("Pending", {"waiting": {}}),
            "is Pending because its container mounter waiting (no reason given)",
        ),
    ],
)
def test_pod_problem(obj: dict[str, Any], problem: str | None) -> None:
    assert pod_problem(obj) == problem


def test_a_long_message_is_cut() -> None:
    problem = pod_problem(pod("Pending", {"waiting": {"reason": "ErrImagePull", "message": "x" * 1000}}))
    assert problem is not None and len(problem) < 400 and problem.endswith("…)")


@pytest.mark.parametrize(
    ("obj", "running"),
    [
        (pod("Running", RUNNING), True),
        (pod("Running", RUNNING, deleting=True), True),  # its FUSE session is still served while it stops
        (pod("Running", {"waiting": {"reason": "CrashLoopBackOff"}}), False),
        (pod("Pending", None), False),
        (pod("Succeeded", {"terminated": {"exitCode": 0}}), False),
        ({"metadata": {"name": "mp-x"}, "spec": {}}, False),
    ],
)
def test_container_running(obj: dict[str, Any], running: bool) -> None:
    assert container_running(obj) is running


def test_restart_count() -> None:
    counted = pod("Running", RUNNING)
    counted["status"]["containerStatuses"][0]["restartCount"] = 3
    assert restart_count(counted) == 3
    assert restart_count(pod("Running", RUNNING)) is None  # a status that does not say
    assert restart_count({"metadata": {}, "spec": {}}) is None
