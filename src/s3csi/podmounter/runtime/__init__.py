"""Where Mountpoint Pods run: the one interface the publisher needs, implemented by each runtime.

``local`` runs each Mountpoint Pod as an unprivileged process on this machine (tests, the demo, a
laptop); ``kubernetes`` uses the Pods ``s3csi controller`` creates. The publisher does not know which it
talks to.

Contract of a :class:`MountpointPodRuntime` — every method is idempotent and safe to call again
after the driver restarted, because the runtime finds its Mountpoint Pods from durable state (the
local state dir, or the API server), never from memory alone:

- ``start(key, workload_uid)`` returns the running Mountpoint Pod of sharing key ``key`` for a new FUSE
  session, starting one when none runs (local) or waiting for the one the controller assigned to the
  workload pod ``workload_uid`` (kubernetes); it returns only once the pod's mount.sock accepts
  connections, and raises ``Unavailable`` (saying why) when the pod does not get there. The pod's comm
  dir is group 1000 and setgid, so the node plugin (root) and the mounter (uid 1000) both use it.
- ``join(key, workload_uid)`` returns once the workload may join the key's running Mountpoint Pod (at
  once locally; in Kubernetes once the controller lists the workload), or raises ``Unavailable``.
- ``find(key)`` returns the Mountpoint Pod of ``key`` if one is recorded, running or not.
- ``running(pod)`` tells whether the pod's mounter process still runs.
- ``list()`` returns every recorded Mountpoint Pod.
- ``cache_dir(cache)`` is the directory, as the mounter sees it, that holds the cache volume the volume
  attributes ask for (volume.context.CacheVolume); InvalidArgument, naming the attribute, when the
  runtime cannot give a Mountpoint Pod that kind of cache.
- ``watch(pod, on_exit)`` calls ``on_exit()`` (in the event loop, once) when the pod's mounter ends: the
  local runtime waits on a pidfd of the process, the Kubernetes runtime on its container's status in the
  pod watch — neither costs anything while the mounter runs. ``unwatch(pod)`` stops watching.
- ``record_event(workloads, reason, message, once_per, type)`` tells the teams of ``workloads`` what
  happened to their volume (Kubernetes: an Event of ``type`` on each pod, one per pod, reason and
  ``once_per``, whose count a repeat updates; local: nothing more than the publisher's log line, as there
  is no API). It never raises.
- ``waiting_for(key, workload_uid)`` says why a ``start`` or ``join`` of the workload still waits, and
  whether the wait looks stuck (the Mountpoint Pod is unschedulable, its image cannot be pulled…) rather
  than under way; None when the runtime has nothing to tell (local: a process starts at once).
- ``restart(pod)`` returns once a new mounter of a pod whose mounter died listens on mount.sock, in the
  same comm dir (its credentials stay): started here (local), or restarted by kubelet (Kubernetes,
  ``restartPolicy: Always``); raises ``Unavailable`` (saying why) when none gets there.
- ``retire(pod)`` stops the mounter (it normally exits by itself once its FUSE mount is unmounted),
  and removes the comm dir and every trace of the pod. Retiring an absent pod succeeds. In
  Kubernetes the controller deletes Mountpoint Pods: there the node plugin only unmounts.

Callers serialise calls for one key (the publisher's per-key lock); calls for different keys may run
concurrently.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from s3csi.errors import Unavailable
from s3csi.kube.events import EventType
from s3csi.podmounter.protocol import SOCKET_NAME
from s3csi.volume.context import CacheVolume

MOUNTER_UID = 1000
MOUNTER_GID = 1000


@dataclass(frozen=True)
class MountpointPod:
    key: str  # the sharing key (volume.sharing); one Mountpoint Pod per key
    name: str  # how operators see it: the Pod's name, the local process's record name
    comm_dir: str  # on the node plugin's side: mount.sock and credentials/ live here

    @property
    def socket_path(self) -> str:
        return f"{self.comm_dir}/{SOCKET_NAME}"

    @property
    def credentials_dir(self) -> str:
        return f"{self.comm_dir}/{CREDENTIALS_DIR}"


CREDENTIALS_DIR = "credentials"


class WorkloadPod(NamedTuple):
    """A workload pod using a Mountpoint Pod, as its target's record names it."""

    namespace: str
    name: str
    uid: str


class MountpointPodUnavailable(Unavailable):
    """A ``start`` or ``join`` that waited in vain for the workload's Mountpoint Pod (its message: why)."""


class Waiting(NamedTuple):
    """Why a workload waits for its Mountpoint Pod: ``problem`` in words for the workload's team, and
    whether it is ``stuck`` (it will not pass without someone acting) rather than under way."""

    problem: str
    stuck: bool


def pod_name(key: str) -> str:
    """A Kubernetes-valid name (≤ 63, DNS label) for the Mountpoint Pod of ``key``."""
    return f"s3csi-mp-{key}"


class WorkloadEvents(Protocol):
    """Where a publish's Events go (``record_event``: an Event on each pod, deduplicated)."""

    async def record_event(
        self,
        workloads: Sequence[WorkloadPod],
        reason: str,
        message: str,
        once_per: str,
        type: EventType = "Warning",
    ) -> None: ...


class MountpointPodRuntime(WorkloadEvents, Protocol):
    async def start(self, key: str, workload_uid: str | None = None) -> MountpointPod: ...

    async def join(self, key: str, workload_uid: str | None = None) -> None: ...

    def find(self, key: str) -> MountpointPod | None: ...

    def running(self, pod: MountpointPod) -> bool: ...

    def list(self) -> list[MountpointPod]: ...

    def cache_dir(self, cache: CacheVolume) -> str: ...

    async def retire(self, pod: MountpointPod) -> None: ...

    def watch(self, pod: MountpointPod, on_exit: Callable[[], None]) -> None: ...

    def unwatch(self, pod: MountpointPod) -> None: ...

    async def restart(self, pod: MountpointPod) -> MountpointPod: ...

    async def waiting_for(self, key: str, workload_uid: str | None) -> Waiting | None: ...
