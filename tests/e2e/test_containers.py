"""A node played with real containers from the image `make image` builds (podman, runc).

The node plugin is the ``s3csi-node`` container of the DaemonSet rendered from the chart (deploy/helm/s3csi,
values pointing at the test's image, kubelet dir, S3 server and mounter namespace), run as its pod spec says:
privileged, the kubelet dir bind-mounted with shared propagation, with the node's name, the chart's
awsAccessSecret and a service-account token for the fake API server supplied as kubelet would. The
controller is the ``controller`` container of the chart's Deployment, run the same way (uid 1000, in-cluster
with the same token); both reach the fake API server (tests/kube_fake) and the embedded S3 server on
127.0.0.1. Each Mountpoint Pod the controller creates is run by a test kubelet
as a container with exactly its spec's security context and volumes (tests/containers.py translates the
spec; its comm dir is an emptyDir under the kubelet dir); workload containers (uid 1001, fsGroup 2000 as a
supplementary group, the target bind-mounted with HostToContainer propagation) write and read through the
volume. The test plays kubelet's CSI calls over the node plugin's
socket. Afterwards no container, mount or process is left.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest

from s3csi.csi.proto import csi_pb2
from s3csi.demo.s3server import EmbeddedS3Server
from s3csi.kernel.mount import mountinfo
from s3csi.podmounter.podspec import DEFAULT_NAMESPACE
from tests import controller_support
from tests.containers import ULIMITS, Kubelet, ServiceAccount, empty_dir, podman_run
from tests.helm_support import NAMESPACE, find, render
from tests.integration.csi_support import code_of, rpc, run, wait_ready
from tests.kube_fake import FakeKubeApi
from tests.kubelet_fake import Container, FakeKubelet, now, publish_request
from tests.polling import wait_until

pytestmark = pytest.mark.usefixtures("privileged")

ROOT = Path(__file__).resolve().parents[2]
NODE = "node-1"
TEAM = "team-a"
STATE_DIR = "/var/lib/s3csi"  # the chart's state dir on a node (templates/node.yaml)
PREFIX = (
    "s3csi-test-"  # with the node's directory name, every container of a node: what "nothing left" checks
)


@pytest.fixture(scope="session")
def image() -> str:
    """The image, built once per session by `make image` (fast once its base images are cached); a machine
    without podman gets it from `make image` too, and a failed build fails the tests."""
    result = subprocess.run(
        ["make", "-s", "image"], cwd=ROOT, capture_output=True, text=True, timeout=1200, check=False
    )
    assert result.returncode == 0, f"make image failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    version = subprocess.run(
        ["make", "-s", "-f", "-", "print"],
        input="include Makefile\nprint:\n\t@echo $(IMAGE)\n",
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return version.stdout.strip()


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, timeout=120, check=check)


def containers(prefix: str) -> list[str]:
    names = podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
    return [name for name in names if name.startswith(prefix)]


def stop_container(name: str, process: subprocess.Popen[bytes]) -> None:
    podman("rm", "-f", "-t", "5", name, check=False)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait(30)


@dataclass
class ContainerKubelet(FakeKubelet):
    """The test kubelet (tests/kubelet_fake.py), starting each Mountpoint Pod as a podman container."""

    prefix: str = PREFIX
    names: dict[str, str] = field(default_factory=dict)  # pod uid → container name

    def _run(self, pod: dict[str, Any], restarts: int = 0) -> None:
        uid = pod["metadata"]["uid"]
        name = f"{self.prefix}mp-{uid[:13]}-{restarts}"
        argv = podman_run(pod, name=name, kubelet_dir=self.kubelet_dir)
        log = open(self.kubelet_dir.parent / f"container-{uid}.log", "ab")  # noqa: SIM115 - kept by the child
        with log:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        with self._lock:
            self.containers[uid] = Container(process, now(), restarts)
            self.names[uid] = name

    def container_log(self, uid: str) -> str:
        path = self.kubelet_dir.parent / f"container-{uid}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _kill(self, uid: str) -> None:
        with self._lock:
            container = self.containers.pop(uid, None)
            name = self.names.pop(uid, None)
        if container is not None and name is not None:
            stop_container(name, container.process)


@dataclass
class Node:
    base: Path
    image: str
    api: FakeKubeApi
    s3_server: EmbeddedS3Server
    kubelet: ContainerKubelet
    running: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)  # container name → podman run

    @property
    def kubelet_dir(self) -> Path:
        return self.kubelet.kubelet_dir

    @property
    def prefix(self) -> str:
        return self.kubelet.prefix

    @property
    def socket(self) -> str:
        return str(self.kubelet_dir / "plugins" / "s3.csi.s3csi.io" / "csi.sock")

    def pod(self, name: str, container: dict[str, Any], volumes: list[dict[str, Any]], **spec: Any) -> Any:
        return {
            "metadata": {"name": name, "uid": str(uuid.uuid4())},
            "spec": {
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "containers": [{"name": name, "image": self.image, "imagePullPolicy": "Never", **container}],
                "volumes": volumes,
                **spec,
            },
        }

    @property
    def state_dir(self) -> Path:
        """Where the chart's state dir (a hostPath) is on this test node."""
        return self.base / "state"

    def start(
        self, name: str, pod: dict[str, Any], *, container: str | None = None, kubelet: Kubelet | None = None
    ) -> subprocess.Popen[bytes]:
        """Runs the pod's container attached, its output in ``<base>/<name>.log``."""
        argv = podman_run(
            pod, name=self.prefix + name, kubelet_dir=self.kubelet_dir, container=container, kubelet=kubelet
        )
        with open(self.base / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.running[self.prefix + name] = process
        return process

    def log(self, name: str) -> str:
        return (self.base / f"{name}.log").read_text(errors="replace")[-3000:]

    def chart_pod(self, kind: str, name: str, pod_name: str) -> dict[str, Any]:
        """The pod that the ``kind``/``name`` workload rendered from deploy/helm/s3csi would run here, named
        ``pod_name``: values point at the test's image, kubelet dir, S3 server and mounter namespace."""
        repository, tag = self.image.rsplit(":", 1)
        values = {
            "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
            "kubeletPath": str(self.kubelet_dir),
            "mountpointPods": {"namespace": DEFAULT_NAMESPACE},
            "s3": {"endpointUrl": self.s3_server.endpoint_url, "region": self.s3_server.region},
            "awsAccessSecret": {"name": "s3-credentials"},
        }
        template = find(render(values), kind, name)["spec"]["template"]
        metadata = {**template["metadata"], "name": pod_name, "namespace": NAMESPACE}
        return {"metadata": {**metadata, "uid": str(uuid.uuid4())}, "spec": template["spec"]}

    def chart_kubelet(self) -> Kubelet:
        """What kubelet supplies to the chart's pods on this node: the node's name, the awsAccessSecret
        Secret, the service account's token for the fake API server (with the in-cluster address), the
        chart's state dir mapped into the test's directory."""
        # What kubelet's projected service-account volume holds, for the fake API server (one token serves
        # every service account of the release: the fake API server checks the token, not RBAC).
        account = self.base / "serviceaccount"
        if not account.exists():
            account.mkdir(mode=0o755)
            (account / "token").write_text(self.api.token_file.read_text())
            shutil.copyfile(self.api.ca_file, account / "ca.crt")
            (account / "namespace").write_text(NAMESPACE)
        server = urlsplit(self.api.url)
        assert server.hostname is not None and server.port is not None
        return Kubelet(
            NODE,
            # The embedded server's fixed test credentials (moto's), as the chart's awsAccessSecret.
            secrets={
                "s3-credentials": {
                    "key_id": self.s3_server.access_key_id,
                    "access_key": self.s3_server.secret_access_key,
                }
            },
            host_paths={STATE_DIR: self.state_dir},
            service_account=ServiceAccount(account, server.hostname, server.port),
            service_links={},  # the fake API server holds no Service in the release's namespace
        )

    def start_node_plugin(self) -> None:
        """The chart's node plugin: the ``s3csi-node`` container of the DaemonSet rendered from
        deploy/helm/s3csi, run as its pod spec says (privileged, root, read-only root file system, the
        kubelet dir with Bidirectional propagation), with what kubelet supplies on this node."""
        pod = self.chart_pod("DaemonSet", "s3csi-node", "s3csi-node-0")
        Path(self.socket).parent.mkdir(parents=True)  # the plugin-dir hostPath: DirectoryOrCreate
        process = self.start("node", pod, container="s3csi-node", kubelet=self.chart_kubelet())
        try:
            run(wait_ready(self.socket, process))
        except BaseException:
            raise AssertionError(f"the node plugin's container did not serve: {self.log('node')}") from None

    def start_controller(self) -> None:
        """The chart's controller: the ``controller`` container of the Deployment rendered from
        deploy/helm/s3csi, run as its pod spec says (uid 1000, no capabilities, read-only root file system,
        its Lease in the release namespace, POD_NAME from the pod's name), reaching the fake API server
        in-cluster through the service account's token."""
        pod = self.chart_pod("Deployment", "s3csi-controller", "s3csi-controller-0")
        [controller] = [c for c in pod["spec"]["containers"] if c["name"] == "controller"]
        assert controller["command"] == ["s3csi"] and controller["args"][0] == "controller", controller
        # Not a chart value: the tests wait for an idle Mountpoint Pod's retirement, which takes 60 s by
        # default (the last --idle-grace-period wins).
        controller["args"].append("--idle-grace-period=0.5")
        self.start("controller", pod, container="controller", kubelet=self.chart_kubelet())

    def workload(self, name: str, target: str, script: str, *, fs_group: int = 2000) -> str:
        """Runs ``script`` in a workload container as uid 1001 with ``fs_group``, the target at /data; its
        output (stdout and stderr)."""
        pod = self.pod(
            name,
            {
                "command": ["sh", "-c", script],
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [
                    {"name": "data", "mountPath": "/data", "mountPropagation": "HostToContainer"}
                ],
            },
            [{"name": "data", "hostPath": {"path": target}}],
            securityContext={"runAsUser": 1001, "runAsGroup": 1001, "fsGroup": fs_group},
        )
        argv = podman_run(pod, name=self.prefix + name, kubelet_dir=self.kubelet_dir)
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        return f"exit {result.returncode}\n{result.stdout}{result.stderr}"

    def publish(self, request: csi_pb2.NodePublishVolumeRequest) -> tuple[grpc.StatusCode, str]:
        return code_of(lambda: rpc(self.socket, "Node", "NodePublishVolume", request, deadline_s=120))

    def unpublish(self, request: csi_pb2.NodePublishVolumeRequest) -> tuple[grpc.StatusCode, str]:
        unpublish = csi_pb2.NodeUnpublishVolumeRequest(
            volume_id=request.volume_id, target_path=request.target_path
        )
        return code_of(lambda: rpc(self.socket, "Node", "NodeUnpublishVolume", unpublish))

    def mounts(self) -> list[str]:
        return [m.mount_point for m in mountinfo() if m.mount_point.startswith(f"{self.base}/")]

    def processes(self) -> list[str]:
        """Processes whose command line names this node's directory (a container's, or podman's)."""
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(self.base) in cmdline and int(pid) != os.getpid():
                found.append(f"{pid}: {cmdline[:200]}")
        return found

    def close(self) -> None:
        for name in ("controller", "node"):
            process = self.running.pop(self.prefix + name, None)
            if process is not None:
                stop_container(self.prefix + name, process)
        self.kubelet.tear_down()
        for name, process in self.running.items():
            stop_container(name, process)
        for mount_point in sorted(self.mounts(), reverse=True):
            subprocess.run(["umount", "-l", mount_point], check=False)


@pytest.fixture
def node(image: str, kube_api: FakeKubeApi, s3_server: EmbeddedS3Server) -> Iterator[Node]:
    controller_support.prepare(kube_api)
    kube_api.ensure_namespace(TEAM)
    base = Path(tempfile.mkdtemp(prefix="s3csi-containers-"))
    base.chmod(0o755)
    kubelet_dir = base / "kubelet"
    kubelet_dir.mkdir(mode=0o755)
    # / is a private mount: the kubelet dir must be a shared mount for the node plugin's mounts to reach the
    # host (and from there the workloads), as on a node where kubelet's directory is shared.
    # The chart's state dir is mounted with Bidirectional propagation too: a shared mount as well.
    (base / "state").mkdir(mode=0o700)
    for shared in (kubelet_dir, base / "state"):
        subprocess.run(["mount", "--bind", str(shared), str(shared)], check=True)
        subprocess.run(["mount", "--make-rshared", str(shared)], check=True)
    kubelet = ContainerKubelet(
        kube_api, NODE, kubelet_dir, namespace=DEFAULT_NAMESPACE, prefix=f"{PREFIX}{base.name}-"
    ).start()
    the_node = Node(base, image, kube_api, s3_server, kubelet)
    try:
        yield the_node
    finally:
        the_node.close()
        left = {
            "containers": containers(the_node.prefix),
            "mounts": the_node.mounts(),
            "processes": the_node.processes(),
        }
        shutil.rmtree(base, ignore_errors=True)
        assert left == {"containers": [], "mounts": [], "processes": []}, left
    assert not kubelet.errors, kubelet.errors


# The first test builds the image (the session fixture): on a fresh machine, with the base images made by
# mmdebstrap, 2 to 5 minutes, past the suite's 300 s per test. The build's own bound is 1200 s.
@pytest.mark.timeout(1500)
def test_the_image_prints_its_version_runs_as_uid_1000_and_has_no_compiler(image: str) -> None:
    result = podman(
        "--runtime", "runc", "run", "--rm", *ULIMITS, "--network", "none", image, "s3csi", "--version"
    )
    assert result.stdout.startswith("s3csi "), result.stderr
    inspect = podman(
        "run",
        "--rm",
        *ULIMITS,
        "--runtime",
        "runc",
        image,
        "sh",
        "-c",
        "id -u; id -g; command -v gcc cc || true",
    )
    assert inspect.stdout.split() == ["1000", "1000"], inspect.stdout + inspect.stderr


def test_a_node_of_containers_serves_a_volume_with_the_pods_fs_group(
    node: Node, bucket: str, s3: Any
) -> None:
    s3.put_object(Bucket=bucket, Key="report.csv", Body=b"a,b\n")
    pv, claim = controller_support.volume(node.api, "static-data", namespace=TEAM, bucket=bucket)
    first = node.api.add(
        controller_support.workload("app-1", claim, namespace=TEAM, node=NODE, fs_group=2000)
    )
    second = node.api.add(
        controller_support.workload("app-2", claim, namespace=TEAM, node=NODE, fs_group=2000)
    )
    node.start_node_plugin()
    node.start_controller()
    requests = [
        publish_request(
            node.kubelet, workload, pv=pv, volume_id=bucket, attributes={"bucketName": bucket}, fs_group=2000
        )
        for workload in (first, second)
    ]
    for request in requests:
        assert node.publish(request) == (grpc.StatusCode.OK, ""), node.log("node") + node.log("controller")

    # The chart's node plugin runs as its DaemonSet says: privileged, root, a read-only root file system.
    plugin = podman(
        "inspect",
        "--format",
        "{{.HostConfig.Privileged}} {{.HostConfig.ReadonlyRootfs}} {{.Config.User}}",
        node.prefix + "node",
    )
    assert plugin.stdout.split() == ["true", "true", "0:0"], plugin.stdout + plugin.stderr
    # One Mountpoint Pod serves both (same sharing key), run as its restricted spec says.
    [mountpoint] = node.api.items("Pod", DEFAULT_NAMESPACE)
    uid = mountpoint["metadata"]["uid"]
    name = node.kubelet.names[uid]
    pid = podman("inspect", "--format", "{{.State.Pid}}", name).stdout.strip()
    status = Path(f"/proc/{pid}/status").read_text()
    assert "\nUid:\t1000\t1000\t1000\t1000\n" in status and "\nCapEff:\t0000000000000000\n" in status
    assert "\nNoNewPrivs:\t1\n" in status and "\nSeccomp:\t2\n" in status
    assert "1000" in status.split("\nGroups:\t", 1)[1].split("\n", 1)[0]
    assert podman("inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", name).stdout.strip() == "true"

    # The first workload (uid 1001, fsGroup 2000 as a supplementary group) writes; the files show its group.
    out = node.workload(
        "app-1",
        requests[0].target_path,
        "id -G; cat /data/report.csv; echo written > /data/new.txt; "
        "stat -c '%g %a' /data/report.csv /data/new.txt",
    )
    assert out.splitlines() == ["exit 0", "1001 2000", "a,b", "2000 660", "2000 660"], out
    assert s3.get_object(Bucket=bucket, Key="new.txt")["Body"].read() == b"written\n"
    # The second, through its own target of the same Mountpoint Pod, reads it; another group may not.
    assert node.workload("app-2", requests[1].target_path, "cat /data/new.txt") == "exit 0\nwritten\n"
    denied = node.workload("app-3", requests[1].target_path, "cat /data/new.txt", fs_group=3000)
    assert denied.startswith("exit 1\n") and "Permission denied" in denied, denied

    for request, workload in zip(requests, (first, second), strict=True):
        assert node.unpublish(request) == (grpc.StatusCode.OK, "")
        node.api.remove("Pod", TEAM, workload["metadata"]["name"])  # kubelet done: the pod is gone
    assert not any(m.endswith("/mount") for m in node.mounts()), node.mounts()
    # The controller retires the Mountpoint Pod serving nobody; the test kubelet removes its container.
    assert wait_until(lambda: not node.api.items("Pod", DEFAULT_NAMESPACE), within=60), node.log("controller")
    assert wait_until(lambda: not node.kubelet.containers, within=60)


def test_a_read_only_publish_refuses_writes_in_the_workload(node: Node, bucket: str, s3: Any) -> None:
    s3.put_object(Bucket=bucket, Key="kept.txt", Body=b"kept")
    pv, claim = controller_support.volume(node.api, "ro-data", namespace=TEAM, bucket=bucket)
    workload = node.api.add(
        controller_support.workload("reader", claim, namespace=TEAM, node=NODE, fs_group=2000, read_only=True)
    )
    node.start_node_plugin()
    node.start_controller()
    request = publish_request(
        node.kubelet, workload, pv=pv, volume_id=bucket, attributes={"bucketName": bucket}, fs_group=2000
    )
    request.readonly = True
    assert node.publish(request) == (grpc.StatusCode.OK, ""), node.log("node") + node.log("controller")
    script = (
        "cat /data/kept.txt && echo && if echo x > /data/kept.txt; then echo written; else echo refused; fi"
    )
    assert node.workload("reader", request.target_path, script) == (
        "exit 0\nkept\nrefused\nsh: 1: cannot create /data/kept.txt: Read-only file system\n"
    )
    assert s3.get_object(Bucket=bucket, Key="kept.txt")["Body"].read() == b"kept"
    assert node.unpublish(request) == (grpc.StatusCode.OK, "")


def test_fs_user_makes_the_workloads_user_the_owner(node: Node, bucket: str, s3: Any) -> None:
    s3.put_object(Bucket=bucket, Key="mine.txt", Body=b"mine")
    pv, claim = controller_support.volume(node.api, "owned-data", namespace=TEAM, bucket=bucket)
    workload = node.api.add(
        controller_support.workload("owner", claim, namespace=TEAM, node=NODE, fs_group=2000, fs_user="1001")
    )
    node.start_node_plugin()
    node.start_controller()
    request = publish_request(
        node.kubelet, workload, pv=pv, volume_id=bucket, attributes={"bucketName": bucket}, fs_group=2000
    )
    assert node.publish(request) == (grpc.StatusCode.OK, ""), node.log("node") + node.log("controller")
    script = "echo new > /data/new.txt && stat -c '%u %g %a' /data/mine.txt /data/new.txt"
    assert node.workload("owner", request.target_path, script) == "exit 0\n1001 2000 660\n1001 2000 660\n"
    assert s3.get_object(Bucket=bucket, Key="new.txt")["Body"].read() == b"new\n"
    assert node.unpublish(request) == (grpc.StatusCode.OK, "")


def test_a_cache_volume_holds_the_mountpoint_pods_read_cache(node: Node, bucket: str, s3: Any) -> None:
    # `cache: emptyDir` on the PV: the controller gives the Mountpoint Pod an emptyDir at /cache, the node
    # plugin tells the mounter to cache there (bounded by 90 % of the size limit); the parts land there.
    body = os.urandom(3 * 2**20)
    s3.put_object(Bucket=bucket, Key="model.bin", Body=body)
    attributes = {"bucketName": bucket, "cache": "emptyDir", "cacheEmptyDirSizeLimit": "256Mi"}
    pv, claim = controller_support.volume(
        node.api, "cached-data", namespace=TEAM, bucket=bucket, attributes=attributes
    )
    workload = node.api.add(
        controller_support.workload("trainer", claim, namespace=TEAM, node=NODE, fs_group=2000)
    )
    node.start_node_plugin()
    node.start_controller()
    request = publish_request(
        node.kubelet, workload, pv=pv, volume_id=bucket, attributes=attributes, fs_group=2000
    )
    assert node.publish(request) == (grpc.StatusCode.OK, ""), node.log("node") + node.log("controller")
    [mountpoint] = node.api.items("Pod", DEFAULT_NAMESPACE)
    assert {"name": "cache", "emptyDir": {"sizeLimit": "256Mi"}} in mountpoint["spec"]["volumes"]
    script = "sha256sum < /data/model.bin; sha256sum < /data/model.bin"
    digest = hashlib.sha256(body).hexdigest()
    assert node.workload("trainer", request.target_path, script) == f"exit 0\n{digest}  -\n{digest}  -\n"
    cache = empty_dir(node.kubelet_dir, mountpoint["metadata"]["uid"], "cache")
    [session] = list(cache.iterdir())  # the mounter's own sub-directory of the volume
    assert session.name.startswith("s3csi-cache-") and session.stat().st_uid == 1000
    # Parts are written to disk in the background, after the read that fetched them returned.
    assert wait_until(lambda: sum(part.stat().st_size for part in session.iterdir()) == len(body))
    assert node.unpublish(request) == (grpc.StatusCode.OK, "")


def test_a_workload_container_reads_again_after_its_mounter_container_is_killed(
    node: Node, bucket: str, s3: Any
) -> None:
    """Crash recovery with real containers (docs/architecture.md, "Mountpoint Pod crash recovery"): the
    Mountpoint Pod's container is killed, the test kubelet restarts it, the chart's node plugin remounts the
    session at the source, and a workload container that received its target with HostToContainer (as the
    webhook sets it) reads again in the same run."""
    s3.put_object(Bucket=bucket, Key="kept.txt", Body=b"kept")
    pv, claim = controller_support.volume(node.api, "crash-data", namespace=TEAM, bucket=bucket)
    workload = node.api.add(
        controller_support.workload("app-1", claim, namespace=TEAM, node=NODE, fs_group=2000)
    )
    node.start_node_plugin()
    node.start_controller()
    request = publish_request(
        node.kubelet, workload, pv=pv, volume_id=bucket, attributes={"bucketName": bucket}, fs_group=2000
    )
    assert node.publish(request) == (grpc.StatusCode.OK, ""), node.log("node") + node.log("controller")
    [mountpoint] = node.api.items("Pod", DEFAULT_NAMESPACE)
    uid = mountpoint["metadata"]["uid"]
    # Reads every 50 ms; says when reads fail, and exits 0 at the first read that works again after that.
    script = (
        ": > /data/started.txt; failed=0; while true; do "
        "if cat /data/kept.txt >/dev/null 2>&1; then "
        '[ "$failed" = 1 ] && { echo recovered; exit 0; }; '
        'else [ "$failed" = 0 ] && echo failing; failed=1; fi; sleep 0.05; done'
    )
    with ThreadPoolExecutor(1) as pool:
        reader = pool.submit(node.workload, "reader", request.target_path, script)
        assert wait_until(
            lambda: (Path(request.target_path) / "started.txt").exists() or reader.done(), within=120
        )
        pid = podman("inspect", "--format", "{{.State.Pid}}", node.kubelet.names[uid]).stdout.strip()
        os.kill(int(pid), signal.SIGKILL)
        out = reader.result(timeout=180)
    assert out == "exit 0\nfailing\nrecovered\n", out + node.log("node")
    assert "remounting its FUSE session under 1 targets" in node.log("node")
    [status] = node.api.get("Pod", DEFAULT_NAMESPACE, mountpoint["metadata"]["name"])["status"][
        "containerStatuses"
    ]
    assert status["restartCount"] == 1, status

    assert node.unpublish(request) == (grpc.StatusCode.OK, "")
    node.api.remove("Pod", TEAM, workload["metadata"]["name"])
    assert not any(m.endswith("/mount") for m in node.mounts()), node.mounts()
    assert wait_until(lambda: not node.api.items("Pod", DEFAULT_NAMESPACE), within=60), node.log("controller")
    assert wait_until(lambda: not node.kubelet.containers, within=60)
