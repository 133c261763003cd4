"""Isolation between Mountpoint Pods, played as the attacker would (docs/security.md).

Every mounter runs as uid 1000, a uid that workloads and other local users commonly have too. The
attacker here is a real uid-1000 process (setpriv) that goes after a real mounter started by the
local runtime for a real publish: its credentials through /proc/PID/cwd, its environment and memory,
its descriptors (/proc/PID/fd, pidfd_getfd, ptrace). Every attempt must be refused, and the key
file must be unchanged afterwards. Needs root.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from s3csi.credentials.files import credentials_file_name
from s3csi.demo.s3server import EmbeddedS3Server
from s3csi.kernel.mount import find_mount
from s3csi.podmounter.publisher import PodMounterPublisher
from s3csi.podmounter.runtime import MountpointPod
from s3csi.podmounter.runtime.local import LocalRuntime, mounter_command
from tests.conftest import MOUNTER_UID, run_as
from tests.integration.test_podmounter_publisher import publisher, spec, state  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("privileged")

# The attacker: a plain uid-1000 process. It reports, per attempt, "ok" or the errno's name; the
# same attempts on its own process must succeed, or the attack proves nothing.
ATTACKER = r"""
import ctypes, errno, json, os, sys

plan = json.load(sys.stdin)
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
results = {}

def attempt(name, action):
    try:
        action()
        results[name] = "ok"
    except OSError as exc:
        results[name] = errno.errorcode.get(exc.errno, str(exc.errno))

def check(value):
    if value < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return value

def read(path):
    with open(path, "rb") as file:
        file.read(1)

def pidfd_getfd(pid):
    pidfd = check(libc.syscall(434, pid, 0))  # pidfd_open: no permission needed
    try:
        taken = [fd for fd in range(64) if libc.syscall(438, pidfd, fd, 0) >= 0]
        if taken:
            return
        raise OSError(ctypes.get_errno(), "")  # errno of the last try: EPERM unless the fds were taken
    finally:
        os.close(pidfd)

def ptrace_seize(pid):
    check(libc.ptrace(0x4206, pid, 0, 0))  # PTRACE_SEIZE: attaches without stopping the process

for label, pid in plan["pids"].items():
    for path in plan["files"].get(label, []):
        attempt(f"{label} read {path}", lambda: read(path))
    attempt(f"{label} environ", lambda: read(f"/proc/{pid}/environ"))
    attempt(f"{label} mem", lambda: open(f"/proc/{pid}/mem", "rb").close())
    attempt(f"{label} list cwd", lambda: os.listdir(f"/proc/{pid}/cwd"))
    attempt(f"{label} list fd", lambda: os.listdir(f"/proc/{pid}/fd"))
    attempt(f"{label} open fds", lambda: [read(f"/proc/{pid}/fd/{n}") for n in range(3, 16)])
    attempt(f"{label} pidfd_getfd", lambda: pidfd_getfd(pid))
    attempt(f"{label} ptrace", lambda: ptrace_seize(pid))
print(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(), "results": results}))
"""


PRINT_DUMPABLE = "import ctypes; print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))"  # PR_GET_DUMPABLE


def test_the_mounter_is_non_dumpable_from_its_first_instruction() -> None:
    """Before the mounter's own prctl runs, the kernel already made it non-dumpable: its real gid
    differs from its effective gid at exec. A program started with mounter_command's setpriv says so
    as its first act; started with equal gids, it would be dumpable."""
    command = mounter_command()
    prefix = command[: command.index("--") + 1]
    started = subprocess.run([*prefix, sys.executable, "-c", PRINT_DUMPABLE], capture_output=True, check=True)
    plain = run_as(MOUNTER_UID, MOUNTER_UID, [sys.executable, "-c", PRINT_DUMPABLE], groups=[MOUNTER_UID])
    assert (started.stdout, plain.stdout) == (b"0\n", b"1\n")


def attack(plan: dict[str, Any], *, cwd: str | None = None) -> dict[str, Any]:
    """Run the attacker as uid 1000, gid 1000, group 1000 — a mounter's very identity."""
    result = run_as(
        MOUNTER_UID,
        MOUNTER_UID,
        [sys.executable, "-c", ATTACKER],
        groups=[MOUNTER_UID],
        input=json.dumps(plan).encode(),
        cwd=cwd,
    )
    assert result.returncode == 0, result.stderr.decode()
    report: dict[str, Any] = json.loads(result.stdout)
    assert (report["uid"], report["gid"], report["groups"]) == (1000, 1000, [1000])
    return report


def fingerprint(path: Path) -> tuple[int, int, int, int, str]:
    st = os.stat(path)
    return st.st_ino, st.st_uid, st.st_gid, st.st_mode, hashlib.sha256(path.read_bytes()).hexdigest()


def mounter_of(the_publisher: PodMounterPublisher, pod: MountpointPod) -> int:
    runtime = the_publisher.runtime
    assert isinstance(runtime, LocalRuntime)
    pid = runtime.pid(pod)
    assert pid is not None
    return pid


def key_file(pod: MountpointPod, volume_id: str) -> Path:
    return Path(pod.credentials_dir) / credentials_file_name(volume_id, pod.key)


def test_another_uid_1000_process_cannot_reach_into_a_mounter(
    state: Path,  # noqa: F811 (the fixture)
    s3_server: EmbeddedS3Server,
    bucket: str,
) -> None:
    the_publisher = publisher(state, s3_server)
    one = spec(state, bucket, "victim")
    asyncio.run(the_publisher.publish(one))
    [pod] = the_publisher.runtime.list()
    pid = mounter_of(the_publisher, pod)
    keys = key_file(pod, one.volume_id)
    before = fingerprint(keys)
    via_cwd = f"/proc/{pid}/cwd/credentials/{keys.name}"

    report = attack({"pids": {"mounter": pid, "self": "self"}, "files": {"mounter": [via_cwd]}})

    results = report["results"]
    # The attacker's tools work: on its own process every attempt but the ptrace of itself succeeds.
    assert results["self environ"] == "ok" and results["self list fd"] == "ok", results
    denied = {name: outcome for name, outcome in results.items() if name.startswith("mounter ")}
    assert denied == {
        f"mounter read {via_cwd}": "EACCES",
        "mounter environ": "EACCES",
        "mounter mem": "EACCES",
        "mounter list cwd": "EACCES",
        "mounter list fd": "EACCES",
        "mounter open fds": "EACCES",
        "mounter pidfd_getfd": "EPERM",
        "mounter ptrace": "EPERM",
    }
    assert fingerprint(keys) == before
    assert find_mount(one.target_path) is not None and os.listdir(one.target_path) == []  # still served
    asyncio.run(the_publisher.unpublish(one.volume_id, one.target_path))


def test_one_mounter_cannot_read_another_mounters_credentials(
    state: Path,  # noqa: F811 (the fixture)
    s3_server: EmbeddedS3Server,
    s3: Any,
    bucket: str,
) -> None:
    other_bucket = f"{bucket}-other"
    s3.create_bucket(Bucket=other_bucket)
    the_publisher = publisher(state, s3_server)
    first, second = spec(state, bucket, "first"), spec(state, other_bucket, "second")
    asyncio.run(the_publisher.publish(first))
    asyncio.run(the_publisher.publish(second))
    pods = {pod.key: pod for pod in the_publisher.runtime.list()}
    assert len(pods) == 2
    [pod_one] = [p for p in pods.values() if key_file(p, first.volume_id).exists()]
    [pod_two] = [p for p in pods.values() if key_file(p, second.volume_id).exists()]
    one_keys, two_keys = key_file(pod_one, first.volume_id), key_file(pod_two, second.volume_id)
    before = fingerprint(one_keys)
    one_pid = mounter_of(the_publisher, pod_one)

    # The second mounter's identity and working directory, going after the first mounter's keys:
    # through /proc, and through the state dir from its own comm dir.
    sideways = f"../../{pod_one.name}/comm/credentials/{one_keys.name}"
    own = f"credentials/{two_keys.name}"
    report = attack(
        {
            "pids": {"first": one_pid},
            "files": {"first": [f"/proc/{one_pid}/cwd/credentials/{one_keys.name}", sideways, own]},
        },
        cwd=pod_two.comm_dir,
    )

    results = report["results"]
    assert results[f"first read {own}"] == "ok"  # its own keys: what this mounter needs
    assert results[f"first read /proc/{one_pid}/cwd/credentials/{one_keys.name}"] == "EACCES"
    assert results[f"first read {sideways}"] == "EACCES"
    assert results["first pidfd_getfd"] == "EPERM" and results["first ptrace"] == "EPERM"
    assert fingerprint(one_keys) == before
    for one in (first, second):
        asyncio.run(the_publisher.unpublish(one.volume_id, one.target_path))


class IdleClients:
    """A runtime that, once a Mountpoint Pod listens, opens ``count`` connections to its mount.sock
    that never send anything: what a stuck or hostile client of the comm dir does."""

    def __init__(self, runtime: LocalRuntime, count: int) -> None:
        self.runtime = runtime
        self.count = count
        self.clients: list[socket.socket] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.runtime, name)

    async def start(self, key: str, workload_uid: str | None = None) -> MountpointPod:
        pod = await self.runtime.start(key, workload_uid)
        comm = os.open(pod.comm_dir, os.O_PATH | os.O_DIRECTORY)
        try:
            for _ in range(self.count):
                client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                client.settimeout(30)
                client.connect(f"/proc/self/fd/{comm}/mount.sock")  # a socket path is limited to 107 bytes
                self.clients.append(client)
        finally:
            os.close(comm)
        return pod


def test_idle_clients_on_mount_sock_do_not_delay_a_publish(
    state: Path,  # noqa: F811 (the fixture)
    s3_server: EmbeddedS3Server,
    s3: Any,
    bucket: str,
) -> None:
    s3.put_object(Bucket=bucket, Key="seen", Body=b"served")
    the_publisher = publisher(state, s3_server)
    assert isinstance(the_publisher.runtime, LocalRuntime)
    idle = IdleClients(the_publisher.runtime, 6)
    the_publisher.runtime = idle
    one = spec(state, bucket, "p")

    # Generous: one idle client used to hold the mounter for 10 s, six filled its backlog.
    asyncio.run(asyncio.wait_for(the_publisher.publish(one), 60))

    assert len(idle.clients) == 6
    assert Path(one.target_path, "seen").read_bytes() == b"served"
    for client in idle.clients:  # told that the mounter took another request, then closed
        answer = client.recv(65536)
        assert b"took another mount request" in answer
        assert client.recv(65536) == b""
        client.close()
    asyncio.run(the_publisher.unpublish(one.volume_id, one.target_path))
