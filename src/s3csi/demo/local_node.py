"""One node of the demo: the driver (``--mode all``, local runtime) in a child process on a temporary
socket, CSI calls over that socket as kubelet and the external-provisioner make them, pods as
processes of their users, and a view of what is mounted and running — so the demo can prove it
leaves nothing behind."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc

from s3csi.csi.proto import csi_pb2, csi_pb2_grpc
from s3csi.errors import Unavailable
from s3csi.kernel.mount import find_mount, mountinfo, unmount
from s3csi.volume.context import POD_NAME, POD_NAMESPACE, POD_UID

DRIVER_START_TIMEOUT_S = 30.0
RPC_TIMEOUT_S = 60.0
ACCESS_MODE = csi_pb2.VolumeCapability.AccessMode


class S3Endpoint(Protocol):
    """The S3 server the driver is pointed at (``EmbeddedS3Server``, or a benchmark's)."""

    @property
    def endpoint_url(self) -> str: ...

    @property
    def region(self) -> str: ...

    def client_env(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class PodRun:
    """A pod's command, run as its user: exit status and output."""

    status: int
    output: str


@dataclass(frozen=True)
class MountpointPodInfo:
    name: str
    pid: int | None
    uid: str  # /proc/PID/status "Uid" (real effective saved fs)
    cap_eff: str  # /proc/PID/status "CapEff"


class DemoNode:
    """Use as a context manager: everything it made is removed on exit, whatever happened."""

    def __init__(self, s3: S3Endpoint) -> None:
        self.s3 = s3
        # Searchable by everyone: the pods' users must reach their target paths.
        self.base = Path(tempfile.mkdtemp(prefix="s3csi-demo-"))
        self.base.chmod(0o755)
        self.kubelet_dir = self.base / "kubelet"
        self.kubelet_dir.mkdir(mode=0o755)
        self.state_dir = self.base / "state"
        self.socket_path = str(self.base / "csi.sock")
        self.log_path = self.base / "driver.log"
        self._driver: subprocess.Popen[bytes] | None = None
        self._channel: grpc.Channel | None = None

    # ---- the driver -------------------------------------------------------------------------

    def start_driver(self, *extra_args: str) -> None:
        """``extra_args``: more ``s3csi driver`` flags (bench/dashboard.py: --mountpoint-pod-metrics)."""
        argv = [
            sys.executable, "-m", "s3csi", "driver",
            f"--endpoint=unix://{self.socket_path}", "--node-id=demo-node", "--mode=all", "--runtime=local",
            f"--state-dir={self.state_dir}", f"--kubelet-dir={self.kubelet_dir}",
            f"--s3-endpoint-url={self.s3.endpoint_url}", f"--s3-region={self.s3.region}",
            # Beside the socket rather than on the node plugin's TCP port: a demo opens no port.
            f"--metrics-address=unix:{self.base / 'metrics.sock'}",
        ]  # fmt: skip
        argv += extra_args
        with open(self.log_path, "ab") as log:
            self._driver = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.s3.client_env()},
            )
        self._channel = grpc.insecure_channel(f"unix://{self.socket_path}")
        deadline = time.monotonic() + DRIVER_START_TIMEOUT_S
        while True:
            if self._driver.poll() is not None:
                raise Unavailable(
                    f"the driver exited with status {self._driver.returncode}: {self.driver_log(3)}"
                )
            with contextlib.suppress(grpc.RpcError):
                probe = self.identity.Probe(csi_pb2.ProbeRequest(), timeout=2)
                if probe.ready.value:
                    return
            if time.monotonic() > deadline:
                raise Unavailable(f"the driver did not serve within {DRIVER_START_TIMEOUT_S:g}s")
            time.sleep(0.05)

    def driver_log(self, lines: int) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return " | ".join(text.strip().splitlines()[-lines:])

    @property
    def identity(self) -> Any:
        return csi_pb2_grpc.IdentityStub(self._channel)  # type: ignore[no-untyped-call]

    @property
    def controller(self) -> Any:
        return csi_pb2_grpc.ControllerStub(self._channel)  # type: ignore[no-untyped-call]

    @property
    def node(self) -> Any:
        return csi_pb2_grpc.NodeStub(self._channel)  # type: ignore[no-untyped-call]

    # ---- what kubelet and the external-provisioner do ---------------------------------------

    @staticmethod
    def capability(mount_flags: Sequence[str], fs_group: int | None, read_only: bool) -> Any:
        mode = ACCESS_MODE.MULTI_NODE_READER_ONLY if read_only else ACCESS_MODE.MULTI_NODE_MULTI_WRITER
        return csi_pb2.VolumeCapability(
            mount=csi_pb2.VolumeCapability.MountVolume(
                mount_flags=list(mount_flags), volume_mount_group="" if fs_group is None else str(fs_group)
            ),
            access_mode=ACCESS_MODE(mode=mode),
        )

    def create_volume(self, name: str, mount_flags: Sequence[str]) -> Any:
        request = csi_pb2.CreateVolumeRequest(
            name=name, volume_capabilities=[self.capability(mount_flags, None, False)]
        )
        return self.controller.CreateVolume(request, timeout=RPC_TIMEOUT_S).volume

    def delete_volume(self, volume_id: str) -> None:
        self.controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume_id), timeout=RPC_TIMEOUT_S)

    def target_path(self, pod_uid: str, pv_name: str) -> str:
        target = self.kubelet_dir / "pods" / pod_uid / "volumes" / "kubernetes.io~csi" / pv_name / "mount"
        target.parent.mkdir(parents=True, exist_ok=True)
        return str(target)

    def publish(
        self,
        *,
        volume_id: str,
        target: str,
        volume_context: dict[str, str],
        mount_flags: Sequence[str],
        fs_group: int | None,
        read_only: bool,
        pod: tuple[str, str, str],
    ) -> None:
        namespace, name, uid = pod
        request = csi_pb2.NodePublishVolumeRequest(
            volume_id=volume_id,
            target_path=target,
            volume_capability=self.capability(mount_flags, fs_group, read_only),
            readonly=read_only,
            volume_context={
                **volume_context,
                POD_NAMESPACE: namespace,
                POD_NAME: name,
                POD_UID: uid,
            },
        )
        self.node.NodePublishVolume(request, timeout=RPC_TIMEOUT_S)

    def unpublish(self, volume_id: str, target: str) -> None:
        request = csi_pb2.NodeUnpublishVolumeRequest(volume_id=volume_id, target_path=target)
        self.node.NodeUnpublishVolume(request, timeout=RPC_TIMEOUT_S)

    @staticmethod
    def run_pod(uid: int, gid: int, fs_group: int | None, script: str) -> PodRun:
        """``sh -c script`` as runAsUser/runAsGroup with fsGroup as supplementary group, no capabilities."""
        groups = ["--groups", str(fs_group)] if fs_group is not None else ["--clear-groups"]
        command = [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={gid}",
            *groups,
            "--inh-caps=-all",
            "--",
            "sh",
            "-c",
            script,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        return PodRun(result.returncode, (result.stdout + result.stderr).strip())

    # ---- what is there ----------------------------------------------------------------------

    def mountpoint_pod_of(self, target: str) -> MountpointPodInfo | None:
        """The Mountpoint Pod serving ``target``: the source mount with the same device."""
        table = mountinfo()
        bind = find_mount(target, table)
        sources = str(self.state_dir / "sources")
        for entry in table:
            if (
                bind is not None
                and entry.device == bind.device
                and os.path.dirname(entry.mount_point) == sources
            ):
                name = os.path.basename(entry.mount_point)
                return self._mountpoint_pod(name)
        return None

    def _mountpoint_pod(self, name: str) -> MountpointPodInfo:
        pid: int | None = None
        status: dict[str, str] = {}
        with contextlib.suppress(OSError, ValueError, KeyError):
            record = json.loads((self.state_dir / "pods" / name / "pod.json").read_text())
            pid = int(record["pid"])
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            status = {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}
        return MountpointPodInfo(name, pid, status.get("Uid", "?"), status.get("CapEff", "?"))

    def mounts(self) -> list[str]:
        return [m.mount_point for m in mountinfo() if m.mount_point.startswith(f"{self.base}/")]

    def mounter_pids(self) -> list[int]:
        pids = []
        for name in os.listdir("/proc"):
            with contextlib.suppress(OSError):
                if name.isdigit() and os.readlink(f"/proc/{name}/cwd").startswith(f"{self.state_dir}/"):
                    pids.append(int(name))
        return sorted(pids)

    def leftovers(self) -> list[str]:
        found = [f"mount {m}" for m in self.mounts()] + [f"process {p}" for p in self.mounter_pids()]
        for sub in ("pods", "sources", "targets"):
            with contextlib.suppress(FileNotFoundError):
                found += [f"state {sub}/{entry}" for entry in os.listdir(self.state_dir / sub)]
        found += [f"target {p}" for p in (self.kubelet_dir / "pods").glob("*/volumes/*/*/mount")]
        return found

    # ---- teardown ---------------------------------------------------------------------------

    def close(self) -> None:
        if self._channel is not None:
            self._channel.close()
        if self._driver is not None and self._driver.poll() is None:
            self._driver.send_signal(signal.SIGTERM)
            try:
                self._driver.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._driver.kill()
                self._driver.wait()
        # Only after a failure is anything left; take it down without waiting on it.
        for mount_point in reversed(self.mounts()):
            with contextlib.suppress(Exception):
                unmount(mount_point, lazy=True)
        for pid in self.mounter_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> DemoNode:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
