"""The controller's decisions (pure): from the workloads that need a Mountpoint Pod and what exists
(attachments, Mountpoint Pods) to the actions that make the two agree (docs/kubernetes.md#the-controller).

Per sharing key (one per node, since the node is part of the key):

- every workload pod that needs the key is listed in the key's attachment under a Mountpoint Pod of the
  current driver version that is not being deleted; when there is none, one is created first (the entries
  follow in the next pass, once the pod exists). A workload already listed never moves;
- an entry whose workload pod is gone, or finished, is removed; one whose pod is terminating while a
  container still runs stays (the volume is still mounted);
- a Mountpoint Pod that the API no longer has is removed from the attachment;
- a Mountpoint Pod serving nobody is deleted once it has been idle for the grace period (a Mountpoint Pod of
  another driver version is never given new workloads, so it ends this way);
- an attachment listing no Mountpoint Pod is deleted.

Idle times live in the controller's memory: after a restart or a change of leader the grace period starts
again, which only makes a retirement later, never earlier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from s3csi.errors import S3csiError
from s3csi.podmounter.attachment import (
    MountpointPodAttachment,
    SharingInputs,
    attachment,
    mountpoint_pod_of,
    with_workload,
    without_mountpoint_pod,
    without_workload,
)
from s3csi.podmounter.podspec import MountpointPodResources
from s3csi.volume.context import CacheVolume


@dataclass(frozen=True)
class Workload:
    uid: str
    inputs: SharingInputs
    key: str
    resources: MountpointPodResources | None = None
    """Its volume's Mountpoint Pod resources (controller.inputs.Served); None: the controller's defaults."""
    cache: CacheVolume | None = None
    """Its volume's cache volume (controller.inputs.Served)."""


@dataclass(frozen=True)
class MountpointPodState:
    name: str
    key: str
    current_version: bool
    """Labelled with this controller's driver version."""
    usable: bool
    """Not being deleted, not Failed or Succeeded: may be given new workloads."""
    deleting: bool
    created: str
    """creationTimestamp: the oldest of two usable pods of a key wins."""


@dataclass(frozen=True)
class CreateMountpointPod:
    key: str
    inputs: SharingInputs
    resources: MountpointPodResources | None = None
    cache: CacheVolume | None = None
    workloads: tuple[str, ...] = ()
    """The uids of the workload pods waiting for it (for its Events)."""


@dataclass(frozen=True)
class DeleteMountpointPod:
    name: str
    key: str
    outdated: bool = False
    """Of another driver version (it took no new workloads): why it went idle, for its Event."""


@dataclass(frozen=True)
class WriteAttachment:
    obj: MountpointPodAttachment
    create: bool


@dataclass(frozen=True)
class DeleteAttachment:
    name: str
    resource_version: str | None


Action = CreateMountpointPod | DeleteMountpointPod | WriteAttachment | DeleteAttachment


@dataclass(frozen=True)
class World:
    workloads: Sequence[Workload]
    """(workload pod, key) pairs that need serving."""
    live_uids: frozenset[str]
    """Workload pods whose entries stay: present and not finished (see :func:`keeps_entry`)."""
    attachments: Mapping[str, MountpointPodAttachment]
    mountpoint_pods: Sequence[MountpointPodState]
    idle_since: Mapping[str, float]
    """Mountpoint Pod name → the (monotonic) time it was first seen serving nobody."""


@dataclass(frozen=True)
class Decision:
    actions: list[Action]
    idle_since: dict[str, float] = field(default_factory=dict)
    next_retirement: float | None = None
    """When the earliest idle Mountpoint Pod's grace ends (the caller wakes then)."""
    refused: list[tuple[str, str]] = field(default_factory=list)
    """(workload pod uid, cause): workloads the attachment cannot take (a bound of the CRD reached)."""


def keeps_entry(pod: Mapping[str, object]) -> bool:
    """Whether a workload pod present in the API keeps its attachment entries: not finished, and when
    terminating, not before every container has terminated (its volume is mounted until then)."""
    status = pod.get("status") if isinstance(pod.get("status"), dict) else {}
    assert isinstance(status, dict)
    if status.get("phase") in ("Succeeded", "Failed"):
        return False
    metadata = pod.get("metadata")
    if not (isinstance(metadata, dict) and metadata.get("deletionTimestamp")):
        return True
    statuses = list(status.get("containerStatuses") or []) + list(status.get("initContainerStatuses") or [])
    return any(not (isinstance(s, dict) and (s.get("state") or {}).get("terminated")) for s in statuses)


def _target(pods: Sequence[MountpointPodState], obj: MountpointPodAttachment | None) -> str | None:
    """The Mountpoint Pod new workloads of a key go to: a usable one of the current version, preferring one
    the attachment already lists, then the oldest."""
    candidates = [p for p in pods if p.usable and p.current_version]
    if not candidates:
        return None
    listed = set(obj["spec"]["mountpointPods"]) if obj else set()
    return min(candidates, key=lambda p: (p.name not in listed, p.created, p.name)).name


def decide(world: World, *, now: float, wall_time: datetime, grace_s: float) -> Decision:
    """The actions for ``world`` at monotonic time ``now`` (``wall_time`` stamps new entries)."""
    needed: dict[str, list[Workload]] = {}
    for workload in world.workloads:
        needed.setdefault(workload.key, []).append(workload)
    pods_of: dict[str, list[MountpointPodState]] = {}
    for pod in world.mountpoint_pods:
        pods_of.setdefault(pod.key, []).append(pod)
    actions: list[Action] = []
    idle_since: dict[str, float] = {}
    retirements: list[float] = []
    refused: list[tuple[str, str]] = []
    for key in sorted(set(needed) | set(world.attachments) | set(pods_of)):
        pods = pods_of.get(key, [])
        existing = {p.name for p in pods}
        old = world.attachments.get(key)
        obj = old
        if obj is None and key in needed:
            obj = attachment(needed[key][0].inputs)
        if obj is not None:
            for name in list(obj["spec"]["mountpointPods"]):
                if name not in existing:
                    obj = without_mountpoint_pod(obj, name)
            for entries in list(obj["spec"]["mountpointPods"].values()):
                for entry in entries:
                    if entry["workloadPodUID"] not in world.live_uids:
                        obj = without_workload(obj, entry["workloadPodUID"])
        target = _target(pods, obj)
        waiting = [w for w in needed.get(key, []) if obj is None or mountpoint_pod_of(obj, w.uid) is None]
        if waiting and target is None:
            actions.append(
                CreateMountpointPod(
                    key,
                    waiting[0].inputs,
                    waiting[0].resources,
                    waiting[0].cache,
                    tuple(w.uid for w in waiting),
                )
            )
        elif waiting and obj is not None and target is not None:
            for workload in waiting:
                try:
                    obj = with_workload(obj, target, workload.uid, wall_time)
                except S3csiError as exc:  # one workload too many for the CRD's bounds: the others go on
                    refused.append((workload.uid, str(exc)))
        listed = obj["spec"]["mountpointPods"] if obj else {}
        serving = {name for name, entries in listed.items() if entries}
        for pod in pods:
            if pod.name in serving or pod.deleting or (waiting and pod.name == target):
                continue
            since = world.idle_since.get(pod.name, now)
            if now - since >= grace_s:
                actions.append(DeleteMountpointPod(pod.name, key, outdated=not pod.current_version))
                if obj is not None:
                    obj = without_mountpoint_pod(obj, pod.name)
            else:
                idle_since[pod.name] = since
                retirements.append(since + grace_s)
        if obj is None:
            continue
        if not obj["spec"]["mountpointPods"] and (key not in needed or old is None):
            if old is not None:
                actions.append(DeleteAttachment(key, old["metadata"].get("resourceVersion")))
            continue  # an attachment is created with its first entry, not before
        if obj != old:
            actions.append(WriteAttachment(obj, create=old is None))
    return Decision(actions, idle_since, min(retirements) if retirements else None, refused)
