"""A test "kubelet" for one simulated node, against the fake API server (tests/kube_fake).

It does, for Mountpoint Pods, what kubelet (and the scheduler, for binding) does on a real node:

- watches the pods of the mounter namespace through kubernetes-asyncio; a pod whose required node affinity
  names this node (``matchFields metadata.name In [node]``) and that has no node yet is bound to it (a merge
  patch of ``spec.nodeName``: the fake serves no ``binding`` subresource);
- for a pod bound here, sets up its ``emptyDir`` volumes as kubelet does: under
  ``<kubelet-dir>/pods/<uid>/volumes/kubernetes.io~empty-dir/<name>``, a tmpfs for ``medium: Memory``, mode
  0777 (kubelet's emptyDir ``setupDir``), then the fsGroup ownership of kubelet's ``SetVolumeOwnership``:
  group fsGroup, mode ``| 0660 | 0110 | setgid`` — root:1000 ``2777``;
- starts the container's command as its security context says: ``runAsUser``/``runAsGroup``, supplementary
  group ``fsGroup``, no capabilities (bounding and inheritable sets cleared), ``no_new_privs`` for
  ``allowPrivilegeEscalation: false``, a clean environment; ``s3csi`` is this interpreter's ``-m s3csi``,
  and a volume's ``mountPath`` in the arguments stands for its directory on the node (no container runtime
  here to bind-mount it; the directories above it are made searchable for that reason);
- reports the pod ``Running`` through the status subresource, restarts a container that exits
  (``restartPolicy: Always``, counting ``restartCount``), and when the pod is deleted stops it, removes its
  volumes and finishes the deletion (``gracePeriodSeconds=0``);
- ``pull_error``: instead of starting containers, reports them waiting on an image that cannot be pulled.

NodePublishVolume and NodeUnpublishVolume are the test's to call (``publish_request`` builds what kubelet
sends for a CSI volume with ``podInfoOnMount``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes_asyncio import watch
from kubernetes_asyncio.client import ApiClient, CoreV1Api
from kubernetes_asyncio.client.exceptions import ApiException

from s3csi.csi.proto import csi_pb2
from s3csi.kube.client import api_configuration
from tests.integration.csi_support import capability
from tests.kube_fake import FakeKubeApi

MERGE = "application/merge-patch+json"
EMPTY_DIR = "kubernetes.io~empty-dir"
MODE = csi_pb2.VolumeCapability.AccessMode
# kubelet's SetVolumeOwnership (pkg/volume/volume_linux.go): group rw, and for directories x and setgid.
_RW_MASK, _EXEC_MASK = 0o660, 0o110


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Container:
    process: subprocess.Popen[bytes]
    started_at: str
    restarts: int = 0


@dataclass
class FakeKubelet:
    api: FakeKubeApi
    node: str
    kubelet_dir: Path
    namespace: str = "s3csi-mounters"
    pull_error: str | None = None
    containers: dict[str, Container] = field(default_factory=dict)  # pod uid → its running container
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"kubelet {self.node}", daemon=True
        )
        self._pods: dict[str, dict[str, Any]] = {}  # uid → the pod as last seen
        self._stopping = False
        self._lock = threading.Lock()

    # ---- life cycle -------------------------------------------------------------------------------

    def start(self) -> FakeKubelet:
        self._thread.start()
        self._main_task = asyncio.run_coroutine_threadsafe(self._begin(), self._loop).result(30)
        return self

    async def _begin(self) -> asyncio.Task[None]:
        return asyncio.create_task(self._main(), name=f"kubelet {self.node}")

    async def _end(self) -> None:
        self._main_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._main_task

    def stop(self) -> None:
        """Stop watching; the containers and volumes stay (a kubelet restart leaves pods running)."""
        if not self._thread.is_alive():
            return
        self._stopping = True
        asyncio.run_coroutine_threadsafe(self._end(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        self._loop.close()

    def tear_down(self) -> None:
        """The node goes away: every container killed, every volume unmounted and removed."""
        self.stop()
        for uid in list(self.containers):
            self._kill(uid)
        for uid in list(self._pods):
            self._remove_volumes(uid)

    async def _main(self) -> None:
        async with ApiClient(api_configuration(self.api.settings())) as client:
            self._core = CoreV1Api(client)
            supervisor = asyncio.create_task(self._supervise())
            try:
                await self._watch()
            finally:
                supervisor.cancel()

    async def _watch(self) -> None:
        version = ""
        while not self._stopping:
            try:
                async with watch.Watch(return_type="object") as stream:
                    async for event in stream.stream(
                        self._core.list_namespaced_pod,
                        self.namespace,
                        resource_version=version,
                        timeout_seconds=60,
                    ):
                        await self._event(event["type"], event["raw_object"])
                    version = stream.resource_version or version
            except ApiException as exc:
                if exc.status != 410:
                    self.errors.append(f"watch: {exc.status} {exc.reason}")
                version = ""
            except Exception as exc:  # a failing test must say why the kubelet stopped acting
                self.errors.append(f"watch: {exc!r}")
                await asyncio.sleep(0.2)

    # ---- what kubelet does with a pod ---------------------------------------------------------------

    def _mine(self, pod: dict[str, Any]) -> bool:
        spec = pod["spec"]
        if spec.get("nodeName"):
            return bool(spec["nodeName"] == self.node)
        terms = (
            spec.get("affinity", {})
            .get("nodeAffinity", {})
            .get("requiredDuringSchedulingIgnoredDuringExecution", {})
            .get("nodeSelectorTerms", [])
        )
        return any(
            match.get("key") == "metadata.name"
            and match.get("operator") == "In"
            and self.node in match["values"]
            for term in terms
            for match in term.get("matchFields", [])
        )

    async def _event(self, kind: str, pod: dict[str, Any]) -> None:
        uid, name = pod["metadata"]["uid"], pod["metadata"]["name"]
        if kind == "BOOKMARK" or not self._mine(pod):
            return
        if kind == "DELETED":
            self._kill(uid)
            self._remove_volumes(uid)
            self._pods.pop(uid, None)
            return
        self._pods[uid] = pod
        if pod["metadata"].get("deletionTimestamp"):
            self._kill(uid)
            self._remove_volumes(uid)
            with contextlib.suppress(ApiException):
                await self._core.delete_namespaced_pod(name, self.namespace, grace_period_seconds=0)
            return
        if not pod["spec"].get("nodeName"):
            await self._core.patch_namespaced_pod(
                name, self.namespace, {"spec": {"nodeName": self.node}}, _content_type=MERGE
            )
            return
        if uid in self.containers or pod.get("status", {}).get("phase") not in (None, "Pending"):
            return
        if self.pull_error is not None:
            await self._set_status(
                pod,
                phase="Pending",
                state={"waiting": {"reason": "ErrImagePull", "message": self.pull_error}},
            )
            return
        self._set_up_volumes(pod)
        self._run(pod)
        await self._report_running(pod)

    def volume_dir(self, uid: str, name: str) -> Path:
        return self.kubelet_dir / "pods" / uid / "volumes" / EMPTY_DIR / name

    def _set_up_volumes(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        fs_group = pod["spec"].get("securityContext", {}).get("fsGroup")
        for volume in pod["spec"].get("volumes", []):
            if "emptyDir" not in volume:
                continue
            path = self.volume_dir(uid, volume["name"])
            path.mkdir(parents=True, exist_ok=True)
            # Stands in for the container runtime's bind mount at mountPath: the mounter reaches it by path.
            for parent in (self.kubelet_dir / "pods" / uid, path.parent.parent, path.parent):
                parent.chmod(0o755)
            if volume["emptyDir"].get("medium") == "Memory":
                size = volume["emptyDir"].get("sizeLimit", "1Mi").replace("Mi", "m")
                subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
            path.chmod(0o777)  # kubelet's emptyDir setupDir
            if fs_group is not None:
                os.lchown(path, -1, fs_group)
                os.chmod(path, (os.lstat(path).st_mode & 0o7777) | _RW_MASK | _EXEC_MASK | 0o2000)

    def _remove_volumes(self, uid: str) -> None:
        pod_dir = self.kubelet_dir / "pods" / uid
        empty_dirs = pod_dir / "volumes" / EMPTY_DIR
        if empty_dirs.is_dir():
            for volume in empty_dirs.iterdir():
                subprocess.run(["umount", str(volume)], check=False, capture_output=True)
        shutil.rmtree(pod_dir, ignore_errors=True)

    def command(self, pod: dict[str, Any]) -> list[str]:
        """The container's command with its security context, run through setpriv."""
        uid = pod["metadata"]["uid"]
        [container] = pod["spec"]["containers"]
        pod_context = pod["spec"].get("securityContext", {})
        context = {**pod_context, **container.get("securityContext", {})}
        mounts = {
            m["mountPath"]: str(self.volume_dir(uid, m["name"])) for m in container.get("volumeMounts", [])
        }
        argv = [mounts.get(arg, arg) for arg in container["command"]]
        if argv[0] == "s3csi":
            argv = [sys.executable, "-m", "s3csi", *argv[1:]]
        assert context.get("capabilities", {}).get("drop") == ["ALL"], "only containers dropping ALL run here"
        groups = [str(context["runAsGroup"])] + (
            [str(pod_context["fsGroup"])] if "fsGroup" in pod_context else []
        )
        setpriv = [
            "setpriv",
            f"--reuid={context['runAsUser']}",
            f"--regid={context['runAsGroup']}",
            f"--groups={','.join(dict.fromkeys(groups))}",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ]
        if context.get("allowPrivilegeEscalation") is False:
            setpriv.append("--no-new-privs")
        return [*setpriv, "--", *argv]

    def _run(self, pod: dict[str, Any], restarts: int = 0) -> None:
        uid = pod["metadata"]["uid"]
        log = open(self.kubelet_dir / f"container-{uid}.log", "ab")  # noqa: SIM115 - kept by the child
        with log:
            process = subprocess.Popen(
                self.command(pod),
                cwd="/",
                env={
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "LANG": "C.UTF-8",
                    "PYTHONUNBUFFERED": "1",
                },
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        with self._lock:
            self.containers[uid] = Container(process, now(), restarts)

    def container_log(self, uid: str) -> str:
        path = self.kubelet_dir / f"container-{uid}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _kill(self, uid: str) -> None:
        with self._lock:
            container = self.containers.pop(uid, None)
        if container is not None and container.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(container.process.pid, signal.SIGKILL)
            container.process.wait(30)

    async def _report_running(self, pod: dict[str, Any]) -> None:
        container = self.containers[pod["metadata"]["uid"]]
        await self._set_status(
            pod,
            phase="Running",
            state={"running": {"startedAt": container.started_at}},
            restarts=container.restarts,
        )

    async def _set_status(
        self, pod: dict[str, Any], *, phase: str, state: dict[str, Any], restarts: int = 0
    ) -> None:
        [container] = pod["spec"]["containers"]
        running = "running" in state
        status = {
            "phase": phase,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": now()},
                {"type": "Ready", "status": "True" if running else "False", "lastTransitionTime": now()},
            ],
            "containerStatuses": [
                {
                    "name": container["name"],
                    "image": container["image"],
                    "imageID": "",
                    "ready": running,
                    "started": running,
                    "restartCount": restarts,
                    "state": state,
                }
            ],
        }
        await self._core.patch_namespaced_pod_status(
            pod["metadata"]["name"], self.namespace, {"status": status}, _content_type=MERGE
        )

    async def _supervise(self) -> None:
        """restartPolicy Always: a container that exits is started again (no back-off here)."""
        while True:
            await asyncio.sleep(0.1)
            for uid, container in list(self.containers.items()):
                if container.process.poll() is None or uid not in self._pods:
                    continue
                pod = self._pods[uid]
                await self._set_status(
                    pod,
                    phase="Running",
                    state={"waiting": {"reason": "CrashLoopBackOff", "message": "back-off restarting"}},
                    restarts=container.restarts + 1,
                )
                self._run(pod, restarts=container.restarts + 1)
                await self._report_running(pod)

    # ---- what kubelet sends to the CSI driver -------------------------------------------------------

    def target(self, pod_uid: str, pv: str) -> str:
        """A workload's target path; its parent made as kubelet makes it."""
        target = self.kubelet_dir / "pods" / pod_uid / "volumes" / "kubernetes.io~csi" / pv / "mount"
        target.parent.mkdir(parents=True, exist_ok=True)
        for directory in (self.kubelet_dir / "pods" / pod_uid, *list(target.parents)[:3]):
            directory.chmod(0o755)  # the workload's uid reads through the target in these tests
        return str(target)


def publish_request(
    kubelet: FakeKubelet,
    workload: dict[str, Any],
    *,
    pv: str,
    volume_id: str,
    attributes: dict[str, str],
    fs_group: int | None = None,
    mount_flags: tuple[str, ...] = (),
    mode: int = MODE.MULTI_NODE_MULTI_WRITER,
) -> csi_pb2.NodePublishVolumeRequest:
    """NodePublishVolume as kubelet sends it for ``workload`` (CSIDriver ``podInfoOnMount: true``)."""
    metadata = workload["metadata"]
    return csi_pb2.NodePublishVolumeRequest(
        volume_id=volume_id,
        target_path=kubelet.target(metadata["uid"], pv),
        volume_capability=capability(
            mode, mount_flags=mount_flags, volume_mount_group="" if fs_group is None else str(fs_group)
        ),
        readonly=False,
        volume_context={
            **attributes,
            "csi.storage.k8s.io/pod.name": metadata["name"],
            "csi.storage.k8s.io/pod.namespace": metadata["namespace"],
            "csi.storage.k8s.io/pod.uid": metadata["uid"],
            "csi.storage.k8s.io/serviceAccount.name": workload["spec"].get("serviceAccountName", "default"),
            "csi.storage.k8s.io/ephemeral": "false",
        },
    )
