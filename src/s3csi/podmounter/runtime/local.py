"""The local runtime: each Mountpoint Pod is an unprivileged process on this machine.

State, under the driver's ``--state-dir`` (root only), one directory per Mountpoint Pod::

    pods/<name>/pod.json      who the mounter is: key, pid and its start time (so a recycled pid is
                              never mistaken for it after a driver restart)
    pods/<name>/mounter.log   the mounter's stdout and stderr (a Pod's container log)
    pods/<name>/comm/         root:1000, mode 2770 — mount.sock, credentials/ (an fsGroup emptyDir), and
                              with ``metrics``, metrics.sock: the mount's Prometheus metrics (no port opened)
    pods/<name>/comm/cache/   root:1000, mode 2770 — the cache volume of ``cache: emptyDir`` (the node's
                              disk, like an emptyDir without a medium); made before the mounter starts

The mounter runs as uid 1000, gid 1000, supplementary group 1000, without capabilities and with
no_new_privs, non-dumpable from its first instruction (see ``mounter_command``), in its own session
(a driver that is killed does not take it along) and with its comm dir as working directory: it
uses only relative names there, so the state dir's parents need not be searchable by uid 1000 — as
in a Pod, where the comm dir is simply mounted at /comm.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypedDict

from s3csi.errors import Internal, InvalidArgument, Unavailable
from s3csi.kernel.dirfd import open_directory, remove_tree, unlink_entry
from s3csi.kernel.process import check_suid_dumpable, read_suid_dumpable
from s3csi.kube.events import EventType
from s3csi.ownership.shared_dir import prepare_shared_dir
from s3csi.podmounter.protocol import SOCKET_NAME
from s3csi.podmounter.runtime import (
    MOUNTER_GID,
    MOUNTER_UID,
    MountpointPod,
    Waiting,
    WorkloadPod,
    pod_name,
)
from s3csi.volume.context import CACHE, CACHE_EMPTY_DIR_MEDIUM, CACHE_MEDIUM_MEMORY, CacheType, CacheVolume

log = logging.getLogger(__name__)

PODS_DIR = "pods"
RECORD = "pod.json"
LOG_FILE = "mounter.log"
COMM_DIR = "comm"
CACHE_DIR = "cache"
"""Inside the comm dir, which is the mounter's working directory: the mounter names it relatively."""
METRICS_SOCKET = "metrics.sock"
"""Inside the comm dir: the mounter's metrics endpoint when the runtime has ``metrics`` on."""
# The mounter's real gid from exec until its first statement drops it: nogroup, which owns nothing
# (what makes the kernel start it non-dumpable is only that it differs from the effective gid).
STARTING_REAL_GID = 65534
# Seconds. A mounter starts a Python interpreter and imports pyfuse3 and the S3 client.
STARTUP_TIMEOUT = 30.0
# Seconds a mounter whose FUSE mount is gone gets to exit by itself, then after SIGTERM.
EXIT_GRACE = 5.0
_POLL = 0.05


class PodRecord(TypedDict):
    key: str
    name: str
    pid: int
    start_time: int  # /proc/PID/stat field 22, in clock ticks since boot


def process_start_time(pid: int) -> int | None:
    """The start time of ``pid``, or None when no such process runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as file:
            stat = file.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may itself contain ") ".
    fields = stat[stat.rindex(")") + 2 :].split()
    state, start_time = fields[0], fields[19]
    return None if state in ("Z", "X") else int(start_time)


def is_mounter_command(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            argv = file.read().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return b"mounter" in argv and b"--comm-dir" in argv


def mounter_command(*, metrics: bool = False) -> list[str]:
    """The mounter's command line, started through setpriv.

    setpriv changes the user rather than subprocess's ``user=``: that would make Python fork()
    instead of vfork(), and a fork of the multi-threaded gRPC server can crash the child.
    setpriv also clears the bounding and inheritable capability sets and sets no_new_privs.

    The real gid differs from the effective gid at exec, so the kernel makes the mounter
    non-dumpable (``fs.suid_dumpable``, checked by ``check_suid_dumpable``) from its first
    instruction: no other uid-1000 process can ptrace it or read its /proc entries, even before
    its own ``prctl``. The mounter then drops that real gid (``mounter.seal``).
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise Internal("setpriv (util-linux) is not installed: it starts Mountpoint Pods as uid 1000")
    return [
        setpriv,
        f"--reuid={MOUNTER_UID}",
        f"--rgid={STARTING_REAL_GID}",
        f"--egid={MOUNTER_GID}",
        f"--groups={MOUNTER_GID}",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
        sys.executable,
        "-m",
        "s3csi",
        "mounter",
        "--comm-dir",
        ".",
        *(("--metrics-address", f"unix:{METRICS_SOCKET}") if metrics else ()),
    ]


def mounter_environment() -> dict[str, str]:
    """A clean environment: nothing of the driver's (its credentials least of all) reaches the mounter."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}


def prepare_comm_dir(path: Path) -> None:
    """root:1000, 2770, as kubelet prepares a Pod's fsGroup emptyDir."""
    prepare_shared_dir(str(path), MOUNTER_GID)


class LocalRuntime:
    """Mountpoint Pods as local processes; see the module docstring and ``runtime.MountpointPodRuntime``."""

    def __init__(self, state_dir: str | os.PathLike[str], *, metrics: bool = False) -> None:
        self.pods_dir = Path(state_dir) / PODS_DIR
        # Each mounter serves its metrics on metrics.sock in its comm dir (the node plugin's
        # --mountpoint-pod-metrics).
        self.metrics = metrics
        # Mounters this driver process started: waited for, so they never linger as zombies.
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        # Mounters watched for their end: pod name → (pidfd, the loop it is registered with).
        self._watches: dict[str, tuple[int, asyncio.AbstractEventLoop]] = {}

    def _pod(self, key: str) -> MountpointPod:
        name = pod_name(key)
        return MountpointPod(key=key, name=name, comm_dir=str(self.pods_dir / name / COMM_DIR))

    def _record(self, pod: MountpointPod) -> PodRecord | None:
        try:
            data = (self.pods_dir / pod.name / RECORD).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            record: PodRecord = json.loads(data)
            return record
        except json.JSONDecodeError:
            log.warning("ignoring a damaged Mountpoint Pod record", extra={"mountpoint_pod": pod.name})
            return None

    def _write_record(self, pod: MountpointPod, record: PodRecord) -> None:
        path = self.pods_dir / pod.name / RECORD
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(record), encoding="utf-8")
        os.replace(temporary, path)

    def find(self, key: str) -> MountpointPod | None:
        pod = self._pod(key)
        return pod if (self.pods_dir / pod.name).is_dir() else None

    def list(self) -> list[MountpointPod]:
        pods: list[MountpointPod] = []
        if not self.pods_dir.is_dir():
            return pods
        for entry in sorted(self.pods_dir.iterdir()):
            record = self._record(MountpointPod(key="", name=entry.name, comm_dir=""))
            if record is not None:
                pods.append(self._pod(record["key"]))
        return pods

    def pid(self, pod: MountpointPod) -> int | None:
        """The mounter's pid while it runs (and is still the process that was started)."""
        record = self._record(pod)
        if record is None:
            return None
        self._reap(record["pid"])
        if process_start_time(record["pid"]) != record["start_time"] or not is_mounter_command(record["pid"]):
            return None
        return record["pid"]

    def running(self, pod: MountpointPod) -> bool:
        return self.pid(pod) is not None

    def _reap(self, pid: int) -> None:
        child = self._children.get(pid)
        if child is not None and child.poll() is not None:
            del self._children[pid]

    def accepts_requests(self, pod: MountpointPod) -> bool:
        """Running and listening: a mounter stops listening once it serves its mount."""
        return self.running(pod) and os.path.exists(pod.socket_path)

    async def start(self, key: str, workload_uid: str | None = None) -> MountpointPod:
        """``workload_uid`` does not matter here: one process serves every workload of the key."""
        pod = self._pod(key)
        if self.accepts_requests(pod):
            return pod
        if self.find(key) is not None:
            log.warning(
                "Mountpoint Pod cannot take a mount; replacing it", extra={"mountpoint_pod": pod.name}
            )
            await self.retire(pod)
        child = self._spawn(pod)
        log.info("started Mountpoint Pod", extra={"mountpoint_pod": pod.name, "pid": child.pid})
        await self._await_socket(pod, child)
        return pod

    async def join(self, key: str, workload_uid: str | None = None) -> None:
        """Locally a running Mountpoint Pod serves every workload of its key: nothing to wait for."""

    async def restart(self, pod: MountpointPod) -> MountpointPod:
        """A new mounter in the pod's comm dir after its old one died: the credentials files stay."""
        pid = self.pid(pod)
        if pid is not None:  # a mounter that runs but was not given the session serves nothing
            await self._stop(pod, pid, process_start_time(pid))
        if not (self.pods_dir / pod.name).is_dir():
            raise Unavailable(f"Mountpoint Pod {pod.name} was retired: nothing to restart")
        comm_fd = open_directory(pod.comm_dir)
        try:  # a mount.sock the old mounter left would take the new one's connections
            unlink_entry(comm_fd, SOCKET_NAME, where=pod.comm_dir)
        finally:
            os.close(comm_fd)
        child = self._spawn(pod, fresh=False)
        log.info("restarted Mountpoint Pod", extra={"mountpoint_pod": pod.name, "pid": child.pid})
        await self._await_socket(pod, child, retire=False)
        return pod

    def watch(self, pod: MountpointPod, on_exit: Callable[[], None]) -> None:
        """``on_exit`` once the mounter process ends: its pidfd becomes readable, nothing is polled."""
        self.unwatch(pod)
        loop = asyncio.get_running_loop()
        record = self._record(pod)
        pid = self.pid(pod)
        pidfd = None
        if record is not None and pid is not None:
            with contextlib.suppress(ProcessLookupError):
                pidfd = os.pidfd_open(pid)
            # The pid could have been recycled between the check and pidfd_open: the start time says.
            if pidfd is not None and process_start_time(pid) != record["start_time"]:
                os.close(pidfd)
                pidfd = None
        if pid is None or pidfd is None:
            loop.call_soon(on_exit)
            return

        def ended() -> None:
            self.unwatch(pod)
            self._reap(pid)
            on_exit()

        loop.add_reader(pidfd, ended)
        self._watches[pod.name] = (pidfd, loop)

    def unwatch(self, pod: MountpointPod) -> None:
        watched = self._watches.pop(pod.name, None)
        if watched is not None:
            pidfd, loop = watched
            if not loop.is_closed():
                loop.remove_reader(pidfd)
            os.close(pidfd)

    def _spawn(self, pod: MountpointPod, *, fresh: bool = True) -> subprocess.Popen[bytes]:
        check_suid_dumpable(read_suid_dumpable())
        self.pods_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        pod_dir = self.pods_dir / pod.name
        if fresh:
            pod_dir.mkdir(mode=0o700)
            prepare_comm_dir(Path(pod.comm_dir))
            prepare_comm_dir(Path(pod.comm_dir) / CACHE_DIR)
        with open(pod_dir / LOG_FILE, "ab") as log_file:
            child = subprocess.Popen(
                mounter_command(metrics=self.metrics),
                cwd=pod.comm_dir,
                env=mounter_environment(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._children[child.pid] = child
        start_time = process_start_time(child.pid) or 0
        self._write_record(pod, PodRecord(key=pod.key, name=pod.name, pid=child.pid, start_time=start_time))
        return child

    async def _await_socket(
        self, pod: MountpointPod, child: subprocess.Popen[bytes], *, retire: bool = True
    ) -> None:
        """Until the mounter listens; when it does not, it is retired (``retire``) or only stopped: a
        restarted one keeps its comm dir and credentials for the next attempt."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.accepts_requests(pod):
            if child.poll() is not None or time.monotonic() > deadline:
                problem = (
                    f"exited with status {child.returncode}"
                    if child.returncode is not None
                    else f"did not listen on mount.sock within {STARTUP_TIMEOUT:g}s"
                )
                tail = self.log_tail(pod)
                if retire:
                    await self.retire(pod)
                elif child.poll() is None:
                    await self._stop(pod, child.pid, process_start_time(child.pid))
                raise Unavailable(f"Mountpoint Pod {pod.name} {problem}: {tail}")
            await asyncio.sleep(_POLL)

    def log_tail(self, pod: MountpointPod, lines: int = 3) -> str:
        try:
            text = (self.pods_dir / pod.name / LOG_FILE).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"

    async def record_event(
        self,
        workloads: Sequence[WorkloadPod],
        reason: str,
        message: str,
        once_per: str,
        type: EventType = "Warning",
    ) -> None:
        """No API to record in: the publisher's log line is the report."""

    async def waiting_for(self, key: str, workload_uid: str | None) -> Waiting | None:
        """Nothing to wait for: ``start`` runs the mounter here and now."""
        return None

    def cache_dir(self, cache: CacheVolume) -> str:
        """An emptyDir on the node's disk; a memory-backed or ephemeral cache needs a Pod's volumes."""
        if cache.type is not CacheType.EMPTY_DIR:
            raise InvalidArgument(
                f"volume attribute {CACHE} {cache.type.value} needs --runtime kubernetes (a PVC made with "
                f"the Mountpoint Pod); the local runtime gives {CACHE}: {CacheType.EMPTY_DIR.value}"
            )
        if cache.medium_memory:
            raise InvalidArgument(
                f"volume attribute {CACHE_EMPTY_DIR_MEDIUM} {CACHE_MEDIUM_MEMORY} needs --runtime "
                "kubernetes; the local runtime keeps the cache on the node's disk"
            )
        return CACHE_DIR

    async def retire(self, pod: MountpointPod) -> None:
        self.unwatch(pod)
        pid = self.pid(pod)
        if pid is not None:
            await self._stop(pod, pid, process_start_time(pid))
        if await asyncio.to_thread(self._remove_pod_dir, pod):
            log.info("retired Mountpoint Pod", extra={"mountpoint_pod": pod.name})

    def _remove_pod_dir(self, pod: MountpointPod) -> bool:
        """The comm dir inside is the mounter's to write: removed through fds, never following a link."""
        if not os.path.lexists(self.pods_dir / pod.name):
            return False
        pods_fd = open_directory(str(self.pods_dir))
        try:
            remove_tree(pods_fd, pod.name, where=str(self.pods_dir))
        finally:
            os.close(pods_fd)
        return True

    async def _stop(self, pod: MountpointPod, pid: int, start_time: int | None) -> None:
        # A mounter still listening serves no mount: nothing to wait for. One that serves exits by
        # itself once its mount is gone.
        signals = (
            (signal.SIGTERM, signal.SIGKILL)
            if self.accepts_requests(pod)
            else (None, signal.SIGTERM, signal.SIGKILL)
        )
        for sig in signals:
            if sig is not None:
                log.info("stopping Mountpoint Pod with %s", sig.name, extra={"mountpoint_pod": pod.name})
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + EXIT_GRACE
            while time.monotonic() < deadline:
                self._reap(pid)
                # Not running(): an exiting process loses its cmdline before it is gone.
                if process_start_time(pid) != start_time:
                    return
                await asyncio.sleep(_POLL)
        raise Internal(f"Mountpoint Pod {pod.name} (pid {pid}) survived SIGKILL")
