"""The Kubernetes runtime: Mountpoint Pods are Pods that ``s3csi controller`` creates; the node plugin waits
for them (docs/kubernetes.md, "The node plugin's Kubernetes runtime").

The controller, not the node plugin, decides which Mountpoint Pod serves a workload: it writes the
MountpointPodAttachment named by the sharing key, listing each workload pod's UID under the Mountpoint Pod
that serves it. A NodePublishVolume waits, bounded by ``wait_timeout_s`` (default 90 s, under kubelet's
2-minute operation timeout), until

1. the attachment of its key exists and lists the workload's UID under a Mountpoint Pod,
2. that pod runs on this node (phase Running, the mounter's container running),
3. for a new FUSE session only: the pod's comm dir exists under the kubelet directory,
   ``<kubelet-dir>/pods/<pod uid>/volumes/kubernetes.io~empty-dir/comm``, and holds the mounter's
   ``mount.sock``.

A wait that ends unmet answers UNAVAILABLE (kubelet retries the call) naming what was missing, which kubelet
shows in the workload pod's events. Then the publisher does what it does with the local runtime: credentials
into the comm dir, the FUSE fd over mount.sock, the bind mount.

The comm dir is an emptyDir the mounter writes: below the kubelet directory's pod directories nothing is
followed (``kernel/dirfd.py``: no symlink, no ``..``), the directory must be root's as kubelet makes it, and
``mount.sock`` must be a socket; the publisher then works inside through directory fds as with the local
runtime.

``retire`` unmounts nothing and deletes nothing: the publisher has unmounted the FUSE session (the mounter
then exits, and kubelet restarts it per ``restartPolicy: Always``); the controller deletes Mountpoint Pods
that serve nobody, and kubelet removes their emptyDir.

Which Mountpoint Pod, and which run of its container (``restartCount``), took a key's FUSE session is
recorded in ``STATE/kubernetes/<key>.json``: a mounter that kubelet restarted serves no session, so
``running`` is false for it; ``watch`` tells the publisher as soon as the pod watch shows it, and
``restart`` waits for the new run, to which the publisher hands a session mounted where the dead one was
(docs/architecture.md, "Mountpoint Pod crash recovery").

The runtime keeps two watches, narrowed to this node: the attachments (``spec.nodeName``) and the Mountpoint
Pods in the mounter namespace (``spec.nodeName``). ``find``, ``running`` and ``list`` answer from them, so a
restarted node plugin re-adopts its mounts from the API server and the kubelet directory: ``open`` lists both
before the publisher's recovery runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import logging
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

from s3csi.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unavailable
from s3csi.kernel.dirfd import open_beneath, open_directory
from s3csi.kube.api import Api, ApiError, path_of
from s3csi.kube.client import RBAC_MANIFEST
from s3csi.kube.events import EventType, involved_pod, object_event
from s3csi.kube.informer import Informer, ObjectKey, watch_error
from s3csi.kube.recorder import EventRecorder
from s3csi.kube.settings import KubeApiSettings
from s3csi.podmounter.attachment import GROUP, PLURAL, VERSION, is_pod_uid, mountpoint_pod_of
from s3csi.podmounter.mountpoint_status import container_running, pod_problem, pod_stuck, restart_count
from s3csi.podmounter.names import is_dns1123_label, is_dns1123_subdomain
from s3csi.podmounter.podspec import (
    APP_COMPONENT_LABEL,
    CACHE_DIR,
    COMM_VOLUME,
    COMPONENT,
    DEFAULT_NAMESPACE,
)
from s3csi.podmounter.protocol import SOCKET_NAME
from s3csi.podmounter.runtime import MountpointPod, MountpointPodUnavailable, Waiting, WorkloadPod
from s3csi.tasks import background
from s3csi.volume.context import SHARING_KEY_LABEL, CacheVolume
from s3csi.volume.sharing import SHARING_KEY_LENGTH

log = logging.getLogger(__name__)

EVENT_COMPONENT = "s3csi-node"
"""The reportingComponent of the node plugin's Events."""

JsonObject = dict[str, Any]

SESSIONS_DIR = "kubernetes"
DEFAULT_WAIT_TIMEOUT_S = 90.0
DEFAULT_SYNC_TIMEOUT_S = 30.0
EMPTY_DIR_PLUGIN = "kubernetes.io~empty-dir"
# Seconds between looks at the comm dir while the mounter is starting to listen (the API says nothing of it).
_COMM_DIR_POLL_S = 0.05
# Seconds between looks at the caches when no event came: a safety net, events normally wake the wait.
_CACHE_POLL_S = 1.0


class Session(TypedDict):
    name: str  # the Mountpoint Pod
    uid: str  # its uid (a pod recreated under the same name is another pod)
    restart_count: int | None  # its container's restartCount when the session was handed over


@dataclass(frozen=True)
class KubernetesRuntimeSettings:
    node_name: str  # --node-id: the Kubernetes node name
    kubelet_dir: str  # --kubelet-dir
    namespace: str = DEFAULT_NAMESPACE  # --mountpoint-namespace
    wait_timeout_s: float = DEFAULT_WAIT_TIMEOUT_S  # --mountpoint-pod-timeout
    sync_timeout_s: float = DEFAULT_SYNC_TIMEOUT_S  # the first list of both watches, at start

    def __post_init__(self) -> None:
        if not is_dns1123_subdomain(self.node_name):
            raise InvalidArgument(
                f"--node-id {self.node_name[:80]!r}: with --runtime kubernetes it is the node's name, a "
                "DNS-1123 subdomain"
            )
        if not is_dns1123_label(self.namespace):
            raise InvalidArgument(f"--mountpoint-namespace {self.namespace[:80]!r} is not a DNS-1123 label")
        if not 0 < self.wait_timeout_s <= 3600:
            raise InvalidArgument("--mountpoint-pod-timeout must be more than 0 and at most 3600 seconds")


def comm_dir_of(kubelet_dir: str, pod_uid: str) -> str:
    return f"{kubelet_dir}/pods/{pod_uid}/volumes/{EMPTY_DIR_PLUGIN}/{COMM_VOLUME}"


def comm_dir_problem(kubelet_dir: str, pod_uid: str) -> str | None:
    """What keeps the comm dir of pod ``pod_uid`` from taking a FUSE session, or None: it is root's
    directory, reached without following a symlink, and the mounter's ``mount.sock`` is in it."""
    relative = comm_dir_of("", pod_uid).lstrip("/")
    shown = comm_dir_of(kubelet_dir, pod_uid)
    kubelet_fd = open_directory(kubelet_dir)
    try:
        try:
            comm_fd = open_beneath(kubelet_fd, relative)
        except FileNotFoundError:
            return f"its comm dir {shown} does not exist (kubelet has not set up the pod's volumes)"
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EXDEV):
                return f"its comm dir {shown} is not a plain directory ({os.strerror(exc.errno)}): not used"
            raise
    finally:
        os.close(kubelet_fd)
    try:
        info = os.fstat(comm_fd)
        if info.st_uid != 0:
            return (
                f"its comm dir {shown} is owned by uid {info.st_uid}, not root as kubelet makes an emptyDir"
            )
        try:
            socket_fd = open_beneath(comm_fd, SOCKET_NAME, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return f"its mounter does not listen on {shown}/{SOCKET_NAME} yet"
        try:
            if not stat.S_ISSOCK(os.fstat(socket_fd).st_mode):
                return f"{shown}/{SOCKET_NAME} is not a socket"
        finally:
            os.close(socket_fd)
    finally:
        os.close(comm_fd)
    return None


async def _synced_or_refused(informer: Informer) -> None:
    """Wait for the informer's first list; PermissionDenied at once when the API server refuses it (the
    node plugin then exits naming the RBAC rule, rather than serving publishes that can only time out)."""
    waits = [asyncio.ensure_future(informer.synced.wait()), asyncio.ensure_future(informer.refused.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    if not informer.synced.is_set():
        raise PermissionDenied(f"--runtime kubernetes: {informer.last_error}")


class KubernetesRuntime:
    """Mountpoint Pods of ``s3csi controller``; see the module docstring and ``runtime.MountpointPodRuntime``.

    ``open()`` before use (it lists and starts watching), ``close()`` when done."""

    def __init__(self, settings: KubernetesRuntimeSettings, api: KubeApiSettings, state_dir: str) -> None:
        self.settings = settings
        self._api_settings = api
        self._api: Api | None = None
        self._tasks: list[asyncio.Task[None]] = []
        # STATE/kubernetes/<key>.json: which Mountpoint Pod, and which run of its container, took the key's
        # FUSE session. Kept on disk, so a restarted node plugin still tells a mounter that kubelet restarted
        # (which serves no session) from the one that serves.
        self.sessions_dir = Path(state_dir) / SESSIONS_DIR
        self.attachments: Informer | None = None
        self.pods: Informer | None = None
        # Mountpoint Pods watched for the end of the mounter that took their session: name → task.
        self._watches: dict[str, asyncio.Task[None]] = {}
        self._events = EventRecorder(lambda: self._api)

    async def open(self) -> None:
        self._api = Api(self._api_settings)
        node = f"spec.nodeName={self.settings.node_name}"
        self.attachments = Informer(
            self._api,
            path_of(GROUP, VERSION, PLURAL),
            resource=PLURAL,
            account="the node plugin",
            rbac_manifest=RBAC_MANIFEST,
            query={"fieldSelector": node},
        )
        self.pods = Informer(
            self._api,
            path_of("", "v1", "pods", self.settings.namespace),
            resource="pods",
            account="the node plugin",
            rbac_manifest=RBAC_MANIFEST,
            query={"fieldSelector": node, "labelSelector": f"{APP_COMPONENT_LABEL}={COMPONENT}"},
        )
        for informer in (self.attachments, self.pods):
            self._tasks.append(asyncio.create_task(informer.run(), name=f"watch {informer.resource}"))
        try:
            async with asyncio.timeout(self.settings.sync_timeout_s):
                for informer in (self.attachments, self.pods):
                    await _synced_or_refused(informer)
        except TimeoutError:
            problems = [
                i.last_error or f"no answer listing {i.resource}" for i in (self.attachments, self.pods)
            ]
            await self.close()
            raise Unavailable(
                f"--runtime kubernetes: the Kubernetes API did not list this node's objects within "
                f"{self.settings.sync_timeout_s:g} s: {'; '.join(problems)}"
            ) from None
        except PermissionDenied:
            await self.close()
            raise
        log.info(
            "watching Mountpoint Pods and attachments of node %s",
            self.settings.node_name,
            extra={"namespace": self.settings.namespace},
        )

    async def close(self) -> None:
        for watch in self._watches.values():
            watch.cancel()
        self._watches.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._api is not None:
            await self._api.close()
            self._api = None

    # ---- the caches ---------------------------------------------------------------------------------

    def _pod_objects(self) -> dict[ObjectKey, JsonObject]:
        if self.pods is None:
            raise FailedPrecondition("the Kubernetes runtime is not open")
        return self.pods.objects

    def _attachment_objects(self) -> dict[ObjectKey, JsonObject]:
        if self.attachments is None:
            raise FailedPrecondition("the Kubernetes runtime is not open")
        return self.attachments.objects

    def _mountpoint_pod(self, obj: JsonObject) -> MountpointPod | None:
        uid = obj["metadata"].get("uid", "")
        key = (obj["metadata"].get("labels") or {}).get(SHARING_KEY_LABEL, "")
        if not is_pod_uid(uid) or len(key) != SHARING_KEY_LENGTH:
            return None  # not one of ours, or a uid that must not become a path
        return MountpointPod(
            key=key, name=obj["metadata"]["name"], comm_dir=comm_dir_of(self.settings.kubelet_dir, uid)
        )

    def _session(self, key: str) -> Session | None:
        try:
            session: Session = json.loads((self.sessions_dir / f"{key}.json").read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        return session

    def _record_session(self, pod: MountpointPod, obj: JsonObject) -> None:
        self.sessions_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        session = Session(name=pod.name, uid=obj["metadata"]["uid"], restart_count=restart_count(obj))
        path = self.sessions_dir / f"{pod.key}.json"
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(session), encoding="utf-8")
        os.replace(temporary, path)

    def find(self, key: str) -> MountpointPod | None:
        """The key's Mountpoint Pod on this node: the one its FUSE session was handed to, else the oldest
        whose mounter runs, else the oldest."""
        candidates = sorted(
            (obj for obj in self._pod_objects().values() if self._key_of(obj) == key),
            key=lambda obj: (obj["metadata"].get("creationTimestamp", ""), obj["metadata"]["name"]),
        )
        session = self._session(key)
        chosen = [
            obj for obj in candidates if session is not None and obj["metadata"]["uid"] == session["uid"]
        ]
        running = [obj for obj in candidates if container_running(obj)]
        for obj in chosen + running + candidates:
            pod = self._mountpoint_pod(obj)
            if pod is not None:
                return pod
        return None

    @staticmethod
    def _key_of(obj: JsonObject) -> str:
        key: str = (obj["metadata"].get("labels") or {}).get(SHARING_KEY_LABEL, "")
        return key

    def running(self, pod: MountpointPod) -> bool:
        """Its mounter's container runs, and is the run that took the key's session if one was handed over
        (a container kubelet restarted since serves nothing: the publisher then replaces the session)."""
        obj = self._pod_objects().get((self.settings.namespace, pod.name))
        if obj is None or self._mountpoint_pod(obj) != pod or not container_running(obj):
            return False
        session = self._session(pod.key)
        if session is None or session["uid"] != obj["metadata"]["uid"]:
            return True
        return session["restart_count"] == restart_count(obj)

    def list(self) -> list[MountpointPod]:
        pods = (self._mountpoint_pod(obj) for obj in self._pod_objects().values())
        return sorted((pod for pod in pods if pod is not None), key=lambda pod: pod.name)

    # ---- waiting for the controller's Mountpoint Pod ----------------------------------------------------

    async def start(self, key: str, workload_uid: str | None = None) -> MountpointPod:
        """The Mountpoint Pod the attachment names for this workload, once it runs and listens."""
        pod = await self._wait(key, workload_uid, listening=True)
        # The publisher hands this run of the container the session next (a failed handover retires it).
        await asyncio.to_thread(
            self._record_session, pod, self._pod_objects()[(self.settings.namespace, pod.name)]
        )
        return pod

    async def join(self, key: str, workload_uid: str | None = None) -> None:
        """Once the controller lists the workload under a Mountpoint Pod of the key that runs on this node
        (the publisher waits here before it takes the key's lock)."""
        await self._wait(key, workload_uid, listening=False)

    async def record_event(
        self,
        workloads: Sequence[WorkloadPod],
        reason: str,
        message: str,
        once_per: str,
        type: EventType = "Warning",
    ) -> None:
        """An Event on each workload pod, one per pod, reason and ``once_per``, whose count a repeat
        updates (kube/recorder.py); a refusal is logged, never raised: the report must not stop the work
        it reports on."""
        for workload in workloads:
            event = object_event(
                involved_pod({"metadata": workload._asdict()}),
                reason=reason,
                message=message,
                component=EVENT_COMPONENT,
                instance=self.settings.node_name,
                now=datetime.now(UTC),
                once_per=once_per,
                type=type,
            )
            await self._events.record(event)

    async def waiting_for(self, key: str, workload_uid: str | None) -> Waiting | None:
        """Why a ``start`` or ``join`` of the workload waits, from the watches (and, for a Mountpoint Pod not
        on this node, one read of it); None when it no longer does."""
        if not workload_uid or not is_pod_uid(workload_uid) or self.attachments is None:
            return None
        pod, uid, problem = self._look(key, workload_uid)
        if pod is not None:
            found = await asyncio.to_thread(comm_dir_problem, self.settings.kubelet_dir, uid)
            if found is None:
                return None
            problem = f"Mountpoint Pod {self.settings.namespace}/{pod.name}: {found}"
        problem, obj = await self._explain(key, workload_uid, problem)
        return Waiting(problem, stuck=obj is not None and pod_stuck(obj))

    def cache_dir(self, cache: CacheVolume) -> str:
        """Every kind: the controller built the Mountpoint Pod with the volume's cache volume."""
        return CACHE_DIR

    async def retire(self, pod: MountpointPod) -> None:
        """Nothing to stop: the controller deletes Mountpoint Pods that serve nobody (module docstring). The
        record of the key's session goes."""
        self.unwatch(pod)
        with contextlib.suppress(FileNotFoundError):
            (self.sessions_dir / f"{pod.key}.json").unlink()
        log.info("Mountpoint Pod left to the controller", extra={"mountpoint_pod": pod.name})

    # ---- the mounter's end, and kubelet's restart of it ----------------------------------------------

    def watch(self, pod: MountpointPod, on_exit: Callable[[], None]) -> None:
        """``on_exit`` once the container run that took the session ends (its restartCount moves on, it
        stops running, or the pod goes): woken by the pod watch's events, nothing is polled."""
        self.unwatch(pod)
        self._watches[pod.name] = background(self._watch(pod, on_exit), name=f"watch {pod.name}")

    async def _watch(self, pod: MountpointPod, on_exit: Callable[[], None]) -> None:
        assert self.pods is not None
        while True:
            change = self.pods.changed()
            if not self.running(pod):
                self._watches.pop(pod.name, None)
                on_exit()
                return
            await change.wait()

    def unwatch(self, pod: MountpointPod) -> None:
        watch = self._watches.pop(pod.name, None)
        if watch is not None:
            watch.cancel()

    async def restart(self, pod: MountpointPod) -> MountpointPod:
        """Once kubelet restarted the pod's mounter container (``restartPolicy: Always``) and the new run
        listens on mount.sock in the same comm dir (an emptyDir lives as long as its pod: the
        credentials stay); that run is recorded as the session's. ``NotFound`` when the pod is gone
        (its replacement is a new pod the controller assigns on the workloads' next publish),
        ``Unavailable`` after the wait timeout."""
        assert self.pods is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.wait_timeout_s
        session = self._session(pod.key)
        where = f"Mountpoint Pod {self.settings.namespace}/{pod.name}"
        while True:
            change = self.pods.changed()
            obj = self._pod_objects().get((self.settings.namespace, pod.name))
            if obj is None or self._mountpoint_pod(obj) != pod:
                raise NotFound(f"{where} is gone: its workloads fail with ENOTCONN until they are restarted")
            interval = _CACHE_POLL_S
            problem = pod_problem(obj) or f"{where}: its mounter container has not been restarted yet"
            new_run = (
                session is None
                or session["uid"] != obj["metadata"]["uid"]
                or (session["restart_count"] != restart_count(obj))
            )
            if container_running(obj) and new_run:
                found = await asyncio.to_thread(
                    comm_dir_problem, self.settings.kubelet_dir, obj["metadata"]["uid"]
                )
                if found is None:
                    await asyncio.to_thread(self._record_session, pod, obj)
                    return pod
                problem, interval = f"{where}: {found}", _COMM_DIR_POLL_S
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise Unavailable(
                    f"{where} did not serve again within {self.settings.wait_timeout_s:g} s: {problem}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(change.wait(), min(remaining, interval))

    def _look(self, key: str, workload_uid: str) -> tuple[MountpointPod | None, str, str]:
        """The workload's Mountpoint Pod and its uid if it runs on this node, else what is missing."""
        attachment = self._attachment_objects().get(("", key))
        if attachment is None:
            return (
                None,
                "",
                (
                    f"no MountpointPodAttachment {key} for node {self.settings.node_name} yet (s3csi "
                    "controller creates it for a pod using this volume: is it running?)"
                ),
            )
        name = mountpoint_pod_of(attachment, workload_uid)  # type: ignore[arg-type]
        if name is None:
            return None, "", f"MountpointPodAttachment {key} lists no Mountpoint Pod for this pod yet"
        where = f"Mountpoint Pod {self.settings.namespace}/{name}"
        obj = self._pod_objects().get((self.settings.namespace, name))
        if obj is None:
            return None, "", f"{where} is not on this node yet"
        problem = pod_problem(obj)
        if problem is not None:
            return None, "", f"{where} {problem}"
        pod = self._mountpoint_pod(obj)
        if pod is None or pod.key != key:
            return None, "", f"{where} is not labelled {SHARING_KEY_LABEL}={key}: not used"
        return pod, obj["metadata"]["uid"], ""

    async def _wait(self, key: str, workload_uid: str | None, *, listening: bool) -> MountpointPod:
        if not workload_uid or not is_pod_uid(workload_uid):
            raise FailedPrecondition(
                "--runtime kubernetes needs the workload pod's UID in the volume context "
                "(csi.storage.k8s.io/pod.uid: CSIDriver podInfoOnMount: true)"
            )
        assert self.attachments is not None and self.pods is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.wait_timeout_s
        while True:
            changes = (self.attachments.changed(), self.pods.changed())
            pod, uid, problem = self._look(key, workload_uid)
            interval = _CACHE_POLL_S
            if pod is not None:
                if not listening:
                    return pod
                found = await asyncio.to_thread(comm_dir_problem, self.settings.kubelet_dir, uid)
                if found is None:
                    return pod
                problem = f"Mountpoint Pod {self.settings.namespace}/{pod.name}: {found}"
                interval = _COMM_DIR_POLL_S
            remaining = deadline - loop.time()
            if remaining <= 0:
                explained, _ = await self._explain(key, workload_uid, problem)
                raise MountpointPodUnavailable(
                    f"Mountpoint Pod not ready for pod {workload_uid} after "
                    f"{self.settings.wait_timeout_s:g} s: {explained}"
                )
            waiters = [asyncio.ensure_future(change.wait()) for change in changes]
            try:
                await asyncio.wait(
                    waiters, timeout=min(remaining, interval), return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for waiter in waiters:
                    waiter.cancel()

    async def _explain(self, key: str, workload_uid: str, problem: str) -> tuple[str, JsonObject | None]:
        """``problem``, completed from the API for a pod this node's watch cannot see (not scheduled, or
        scheduled elsewhere) and with the watches' own failure if they are failing; and the Mountpoint Pod
        waited for, if one is known."""
        assert self.attachments is not None and self.pods is not None
        failing = [i.last_error for i in (self.attachments, self.pods) if i.last_error]
        attachment = self.attachments.objects.get(("", key))
        name = mountpoint_pod_of(attachment, workload_uid) if attachment else None  # type: ignore[arg-type]
        obj = self.pods.objects.get((self.settings.namespace, name)) if name is not None else None
        if name is not None and obj is None and self._api is not None:
            problem, obj = await self._describe_elsewhere(name)
        return "; ".join([problem, *failing]), obj

    async def _describe_elsewhere(self, name: str) -> tuple[str, JsonObject | None]:
        where = f"Mountpoint Pod {self.settings.namespace}/{name}"
        assert self._api is not None
        try:
            obj = await self._api.call("GET", path_of("", "v1", "pods", self.settings.namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return f"{where} does not exist", None
            if exc.status == 0:
                return f"{where}: the Kubernetes API did not answer ({exc})", None
            error = watch_error(exc.status, exc.reason, "pods", "the node plugin", RBAC_MANIFEST)
            return f"{where}: {error}", None
        except ValueError as exc:
            return f"{where}: the Kubernetes API's answer is not JSON ({exc.__class__.__name__})", None
        node = obj.get("spec", {}).get("nodeName")
        if node and node != self.settings.node_name:
            return f"{where} runs on node {node}, not {self.settings.node_name}", obj
        return f"{where} {pod_problem(obj) or 'is not on this node'}", obj
