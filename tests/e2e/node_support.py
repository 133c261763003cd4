"""A node for the end-to-end tests: ``s3csi driver --mode all`` with the local runtime in a child
process, a kubelet directory the workload users can traverse, and an inventory of what is mounted
and running there — so every test can check that nothing is left behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from s3csi.csi.proto import csi_pb2
from s3csi.demo.s3server import EmbeddedS3Server
from s3csi.kernel.mount import mountinfo
from tests.integration.csi_support import DriverProcess, capability, code_of, rpc, run, start_driver
from tests.integration.iam_support import IamWorld, WebIdentityFront

MODE = csi_pb2.VolumeCapability.AccessMode


@dataclass
class Node:
    base: Path
    s3_server: EmbeddedS3Server
    env: dict[str, str] | None = None
    """The driver's environment; None: the S3 server's client environment."""
    driver_args: tuple[str, ...] = ()
    """Flags added to every driver this node starts."""
    drivers: list[DriverProcess] = field(default_factory=list)
    pod_counter: int = 0
    published: dict[str, str] = field(default_factory=dict)
    """target path → the volume id last published there, which unpublish names by default."""

    @property
    def kubelet_dir(self) -> Path:
        return self.base / "kubelet"

    @property
    def state_dir(self) -> Path:
        return self.base / "state"

    @property
    def driver(self) -> DriverProcess:
        return self.drivers[-1]

    def start_driver(self) -> DriverProcess:
        driver = start_driver(
            self.base,
            self.s3_server.client_env() if self.env is None else self.env,
            "--mode=all",
            "--runtime=local",
            f"--state-dir={self.state_dir}",
            f"--kubelet-dir={self.kubelet_dir}",
            f"--s3-endpoint-url={self.s3_server.endpoint_url}",
            f"--s3-region={self.s3_server.region}",
            *self.driver_args,
            socket_name="csi.sock",  # a restarted driver takes over the endpoint, as in a DaemonSet
        )
        self.drivers.append(driver)
        return driver

    def kill_driver(self) -> None:
        self.driver.process.send_signal(signal.SIGKILL)
        self.driver.process.wait(30)

    def target(self, pv: str = "pv") -> str:
        """A new pod's target path, its parent made as kubelet makes it."""
        self.pod_counter += 1
        target = (
            self.kubelet_dir
            / "pods"
            / f"pod-{self.pod_counter}"
            / "volumes"
            / "kubernetes.io~csi"
            / pv
            / "mount"
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        return str(target)

    def publish_request(
        self,
        target: str,
        bucket: str,
        *,
        volume_id: str | None = None,
        mount_flags: Sequence[str] = (),
        fs_group: int | None = None,
        readonly: bool = False,
        mode: int = MODE.MULTI_NODE_MULTI_WRITER,
        attributes: dict[str, str] | None = None,
        **fields: Any,
    ) -> csi_pb2.NodePublishVolumeRequest:
        request: dict[str, Any] = {
            "volume_id": bucket if volume_id is None else volume_id,
            "target_path": target,
            "volume_capability": capability(
                mode,
                mount_flags=tuple(mount_flags),
                volume_mount_group="" if fs_group is None else str(fs_group),
            ),
            "readonly": readonly,
            "volume_context": {
                "bucketName": bucket,
                "csi.storage.k8s.io/pod.namespace": "default",
                "csi.storage.k8s.io/pod.name": os.path.basename(target.split("/volumes/", 1)[0]),
                **(attributes or {}),
            },
        }
        request.update(fields)
        return csi_pb2.NodePublishVolumeRequest(**request)

    def publish(self, request: csi_pb2.NodePublishVolumeRequest) -> tuple[grpc.StatusCode, str]:
        result = code_of(lambda: rpc(self.driver.socket_path, "Node", "NodePublishVolume", request))
        if result[0] == grpc.StatusCode.OK:
            self.published[request.target_path] = request.volume_id
        return result

    def unpublish(self, target: str, volume_id: str | None = None) -> tuple[grpc.StatusCode, str]:
        """NodeUnpublishVolume naming ``volume_id``, by default the volume published at ``target``."""
        if volume_id is None:
            volume_id = self.published.get(target, "v")
        request = csi_pb2.NodeUnpublishVolumeRequest(volume_id=volume_id, target_path=target)
        return code_of(lambda: rpc(self.driver.socket_path, "Node", "NodeUnpublishVolume", request))

    def mounts(self) -> list[str]:
        return [m.mount_point for m in mountinfo() if m.mount_point.startswith(f"{self.base}/")]

    def mounters(self) -> list[int]:
        """Pids of the mounter processes working in this node's state dir."""
        pids = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            with contextlib.suppress(OSError):
                cwd = os.readlink(f"/proc/{name}/cwd")
                if (
                    cwd.startswith(f"{self.state_dir}/")
                    and b"mounter" in Path(f"/proc/{name}/cmdline").read_bytes()
                ):
                    status = Path(f"/proc/{name}/status").read_text()
                    if "\nState:\tZ" not in status:
                        pids.append(int(name))
        return sorted(pids)

    def leftovers(self) -> list[str]:
        """Everything a clean node would not have: mounts, mounters, sockets, pod and source dirs."""
        found = [f"mount {m}" for m in self.mounts()] + [f"mounter pid {p}" for p in self.mounters()]
        for sub in ("pods", "sources", "sessions", "targets"):
            directory = self.state_dir / sub
            if directory.exists():
                found += [f"{sub}/{entry}" for entry in os.listdir(directory)]
        if (self.kubelet_dir / "pods").exists():
            found += [f"target {p}" for p in (self.kubelet_dir / "pods").glob("*/volumes/*/*/mount")]
        return found

    def close(self) -> None:
        for driver in self.drivers:
            driver.terminate()
        for mount_point in reversed(self.mounts()):
            subprocess.run(["umount", "-l", mount_point], check=False)
        for pid in self.mounters():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def node(
    s3_server: EmbeddedS3Server,
    *,
    env: dict[str, str] | None = None,
    driver_args: Sequence[str] = (),
    prefix: str = "s3csi-e2e-",
) -> Iterator[Node]:
    # Under /tmp and searchable by everyone: workload users must reach the target paths.
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o755)
    (base / "kubelet").mkdir(mode=0o755)
    the_node = Node(base, s3_server, env=env, driver_args=tuple(driver_args))
    try:
        the_node.start_driver()
        yield the_node
    finally:
        the_node.close()


def iam_node(
    world: IamWorld, front: WebIdentityFront, driver_args: Sequence[str], *, prefix: str
) -> contextlib.AbstractContextManager[Node]:
    """A node whose driver acts as the IAM admin and reaches STS through the front."""
    env = {
        "AWS_ENDPOINT_URL": world.server.endpoint_url,
        "AWS_REGION": world.server.region,
        "AWS_ACCESS_KEY_ID": world.admin.access_key_id,
        "AWS_SECRET_ACCESS_KEY": world.admin.secret_access_key,
        "AWS_ENDPOINT_URL_STS": front.url,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return node(world.server, env=env, driver_args=driver_args, prefix=prefix)


__all__ = ["MODE", "Node", "iam_node", "node", "run"]
