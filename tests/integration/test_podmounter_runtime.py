"""The local Mountpoint Pod runtime with real unprivileged mounter processes (needs root)."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from s3csi.podmounter.runtime import MountpointPod
from s3csi.podmounter.runtime.local import LocalRuntime, is_mounter_command, process_start_time

pytestmark = pytest.mark.usefixtures("privileged")


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "state"
    runtime = LocalRuntime(tmp_path / "state")
    for pod in runtime.list():  # a failed test must not leave a mounter running
        asyncio.run(runtime.retire(pod))


def test_a_mountpoint_pod_is_an_unprivileged_process_with_a_shared_comm_dir(state_dir: Path) -> None:
    runtime = LocalRuntime(state_dir)
    pod = asyncio.run(runtime.start("k1"))
    comm = os.stat(pod.comm_dir)
    assert (comm.st_uid, comm.st_gid, stat.S_IMODE(comm.st_mode)) == (0, 1000, 0o2770)
    assert stat.S_ISSOCK(os.stat(pod.socket_path).st_mode)
    pid = runtime.pid(pod)
    assert pid is not None and is_mounter_command(pid)
    status = proc_status(pid)
    assert status["Uid"].split() == ["1000"] * 4
    assert status["Gid"].split() == ["1000"] * 4
    assert status["Groups"].split() == ["1000"]
    assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0
    assert int(status["CapBnd"], 16) == 0 and status["NoNewPrivs"] == "1"
    environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert not [v for v in environment if v.startswith(b"AWS_")]  # nothing of the driver's
    assert asyncio.run(runtime.start("k1")) == pod and runtime.pid(pod) == pid  # idempotent

    asyncio.run(runtime.retire(pod))
    assert process_start_time(pid) is None
    assert not (state_dir / "pods" / pod.name).exists()
    assert runtime.list() == [] and runtime.find("k1") is None
    asyncio.run(runtime.retire(pod))  # retiring an absent pod succeeds


def test_a_restarted_driver_finds_its_mountpoint_pods(state_dir: Path) -> None:
    first = LocalRuntime(state_dir)
    pods = [asyncio.run(first.start(key)) for key in ("a", "b")]
    pids = [first.pid(pod) for pod in pods]

    second = LocalRuntime(state_dir)  # a new driver process knows only the state dir
    assert second.list() == sorted(pods, key=lambda p: p.name)
    assert [second.pid(pod) for pod in pods] == pids
    assert asyncio.run(second.start("a")) == pods[0] and second.pid(pods[0]) == pids[0]
    for pod in pods:
        asyncio.run(second.retire(pod))
    assert all(process_start_time(pid) is None for pid in pids if pid is not None)


def test_a_recycled_pid_is_not_taken_for_the_mounter(state_dir: Path) -> None:
    runtime = LocalRuntime(state_dir)
    pod = MountpointPod(key="k", name="s3csi-mp-k", comm_dir=str(state_dir / "pods/s3csi-mp-k/comm"))
    (state_dir / "pods" / pod.name).mkdir(parents=True)
    record = {"key": "k", "name": pod.name, "pid": os.getpid(), "start_time": process_start_time(os.getpid())}
    (state_dir / "pods" / pod.name / "pod.json").write_text(json.dumps(record))
    assert not runtime.running(pod)  # alive and the right start time, but not a mounter
    record["start_time"] = 1
    (state_dir / "pods" / pod.name / "pod.json").write_text(json.dumps(record))
    assert not runtime.running(pod)
    started = asyncio.run(runtime.start("k"))  # the stale record is replaced by a real mounter
    assert runtime.running(started) and runtime.pid(started) != os.getpid()
    asyncio.run(runtime.retire(started))
