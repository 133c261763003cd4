"""The controller's decisions (s3csi.controller.reconcile), table by table: world in, actions out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from s3csi.controller.reconcile import (
    CreateMountpointPod,
    DeleteAttachment,
    DeleteMountpointPod,
    MountpointPodState,
    Workload,
    World,
    WriteAttachment,
    decide,
    keeps_entry,
)
from s3csi.podmounter.attachment import SharingInputs, attachment, mountpoint_pod_of, with_workload
from s3csi.volume.context import AuthenticationSource
from s3csi.volume.policy import EffectiveMount

NOW = 1000.0
WALL = datetime(2026, 12, 5, 1, 0, 0, tzinfo=UTC)
UID_A = "6f1c2b9e-1d2a-4c3b-9a8d-0e1f2a3b4c5d"
UID_B = "7a2d3c0f-2e3b-4d4c-8b9e-1f2a3b4c5d6e"
INPUTS = SharingInputs(
    node_name="node-1",
    persistent_volume_name="pv-1",
    volume_id="bucket-1",
    mount=EffectiveMount(("--allow-root",), False, None, None, None, None, False),
    authentication_source=AuthenticationSource.DRIVER,
)
KEY = INPUTS.sharing_key()


def mp(name: str, *, current: bool = True, usable: bool = True, deleting: bool = False) -> MountpointPodState:
    return MountpointPodState(
        name, KEY, current, usable and not deleting, deleting, f"2026-12-05T00:00:0{name[-1]}Z"
    )


def world(
    workloads: list[str], live: list[str], pods: list[MountpointPodState], obj: Any = None, idle: Any = None
) -> World:
    return World(
        workloads=[Workload(uid, INPUTS, KEY) for uid in workloads],
        live_uids=frozenset(live),
        attachments={KEY: obj} if obj is not None else {},
        mountpoint_pods=pods,
        idle_since=idle or {},
    )


def serving(*pairs: tuple[str, str]) -> Any:
    obj = attachment(INPUTS)
    obj["metadata"]["resourceVersion"] = "5"
    for pod, uid in pairs:
        obj = with_workload(obj, pod, uid, WALL)
    return obj


def test_a_new_workload_first_gets_a_mountpoint_pod_then_its_entry() -> None:
    first = decide(world([UID_A], [UID_A], []), now=NOW, wall_time=WALL, grace_s=30)
    assert first.actions == [CreateMountpointPod(KEY, INPUTS, workloads=(UID_A,))]
    second = decide(world([UID_A], [UID_A], [mp("mp-1")]), now=NOW, wall_time=WALL, grace_s=30)
    [write] = second.actions
    assert isinstance(write, WriteAttachment) and write.create
    assert mountpoint_pod_of(write.obj, UID_A) == "mp-1"


def test_a_second_workload_joins_the_pod_and_nothing_changes_once_written() -> None:
    obj = serving(("mp-1", UID_A))
    [write] = decide(
        world([UID_A, UID_B], [UID_A, UID_B], [mp("mp-1")], obj), now=NOW, wall_time=WALL, grace_s=30
    ).actions
    assert isinstance(write, WriteAttachment) and not write.create
    assert mountpoint_pod_of(write.obj, UID_B) == "mp-1"
    assert write.obj["metadata"]["resourceVersion"] == "5"  # the update is conditional
    assert (
        decide(
            world([UID_A, UID_B], [UID_A, UID_B], [mp("mp-1")], write.obj),
            now=NOW,
            wall_time=WALL,
            grace_s=30,
        ).actions
        == []
    )


def test_a_pod_of_another_driver_version_keeps_its_workloads_but_gets_no_new_one() -> None:
    obj = serving(("mp-1", UID_A))
    pods = [mp("mp-1", current=False)]
    assert decide(
        world([UID_A, UID_B], [UID_A, UID_B], pods, obj), now=NOW, wall_time=WALL, grace_s=30
    ).actions == [CreateMountpointPod(KEY, INPUTS, workloads=(UID_B,))]
    [write] = decide(
        world([UID_A, UID_B], [UID_A, UID_B], [*pods, mp("mp-2")], obj), now=NOW, wall_time=WALL, grace_s=30
    ).actions
    assert isinstance(write, WriteAttachment)
    assert mountpoint_pod_of(write.obj, UID_A) == "mp-1" and mountpoint_pod_of(write.obj, UID_B) == "mp-2"
    # Once its last workload left, the old version's pod retires, and its Event says why it went idle.
    retired = decide(world([], [], pods, obj), now=NOW + 30, wall_time=WALL, grace_s=0).actions
    assert DeleteMountpointPod("mp-1", KEY, outdated=True) in retired


def test_a_gone_workloads_entry_goes_then_the_idle_pod_after_the_grace_then_the_attachment() -> None:
    obj = serving(("mp-1", UID_A))
    [write] = decide(world([], [], [mp("mp-1")], obj), now=NOW, wall_time=WALL, grace_s=30).actions
    assert isinstance(write, WriteAttachment) and write.obj["spec"]["mountpointPods"] == {"mp-1": []}
    waiting = decide(world([], [], [mp("mp-1")], write.obj), now=NOW, wall_time=WALL, grace_s=30)
    assert (
        waiting.actions == [] and waiting.idle_since == {"mp-1": NOW} and waiting.next_retirement == NOW + 30
    )
    retired = decide(
        world([], [], [mp("mp-1")], write.obj, waiting.idle_since), now=NOW + 30, wall_time=WALL, grace_s=30
    )
    assert retired.actions == [DeleteMountpointPod("mp-1", KEY), DeleteAttachment(KEY, "5")]


def test_a_workload_returning_within_the_grace_keeps_the_pod() -> None:
    idle = serving(("mp-1", UID_A))
    idle["spec"]["mountpointPods"]["mp-1"] = []
    [write] = decide(
        world([UID_B], [UID_B], [mp("mp-1")], idle, {"mp-1": NOW - 10}), now=NOW, wall_time=WALL, grace_s=30
    ).actions
    assert isinstance(write, WriteAttachment) and mountpoint_pod_of(write.obj, UID_B) == "mp-1"


def test_a_vanished_mountpoint_pod_is_dropped_and_its_workloads_get_a_new_one() -> None:
    obj = serving(("mp-1", UID_A))
    actions = decide(world([UID_A], [UID_A], [], obj), now=NOW, wall_time=WALL, grace_s=30).actions
    assert actions[0] == CreateMountpointPod(KEY, INPUTS, workloads=(UID_A,))
    assert isinstance(actions[1], WriteAttachment) and actions[1].obj["spec"]["mountpointPods"] == {}


def test_an_orphan_of_a_crash_is_adopted_and_a_duplicate_retired() -> None:
    """A controller that created pods but died before writing the attachment: the oldest is used."""
    decision = decide(world([UID_A], [UID_A], [mp("mp-2"), mp("mp-1")]), now=NOW, wall_time=WALL, grace_s=0)
    write = next(a for a in decision.actions if isinstance(a, WriteAttachment))
    assert mountpoint_pod_of(write.obj, UID_A) == "mp-1"
    assert DeleteMountpointPod("mp-2", KEY) in decision.actions


def test_a_deleting_pod_is_neither_used_nor_deleted_again() -> None:
    obj = serving(("mp-1", UID_A))
    obj["spec"]["mountpointPods"]["mp-1"] = []
    actions = decide(
        world([UID_B], [UID_B], [mp("mp-1", deleting=True)], obj), now=NOW, wall_time=WALL, grace_s=0
    ).actions
    assert actions == [CreateMountpointPod(KEY, INPUTS, workloads=(UID_B,))]


def pod(**status: Any) -> dict[str, Any]:
    return {"metadata": {"name": "w", **status.pop("metadata", {})}, "status": status}


TERMINATED = {"state": {"terminated": {"exitCode": 0}}}
RUNNING: dict[str, Any] = {"state": {"running": {}}}


def test_keeps_entry() -> None:
    deleting = {"deletionTimestamp": "2026-12-05T00:00:00Z"}
    table = [
        (pod(phase="Running", containerStatuses=[RUNNING]), True),
        (pod(phase="Pending"), True),
        (pod(phase="Succeeded"), False),
        (pod(phase="Failed"), False),
        (pod(metadata=deleting, phase="Running", containerStatuses=[RUNNING, TERMINATED]), True),
        (pod(metadata=deleting, phase="Running", containerStatuses=[TERMINATED, TERMINATED]), False),
        (pod(metadata=deleting, phase="Pending"), False),
    ]
    assert [keeps_entry(p) for p, _ in table] == [expected for _, expected in table]


def test_a_workload_beyond_the_crds_bound_is_refused_and_the_others_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("s3csi.podmounter.attachment.MAX_WORKLOAD_PODS", 1)
    decision = decide(
        world([UID_A, UID_B], [UID_A, UID_B], [mp("mp-1")]), now=NOW, wall_time=WALL, grace_s=30
    )
    [write] = decision.actions
    assert isinstance(write, WriteAttachment) and mountpoint_pod_of(write.obj, UID_A) == "mp-1"
    [(refused_uid, cause)] = decision.refused
    assert refused_uid == UID_B and "already serves 1 workload pods" in cause
