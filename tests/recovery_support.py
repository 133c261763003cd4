"""Mountpoint Pod crash recovery, driven as a cluster would see it: a workload process in its own mount
namespace with slave propagation that received its volume as a bind of the target (what a container
with ``mountPropagation: HostToContainer`` gets from kubelet and runc), and ``kill -9`` of the mounter.
Used by tests/e2e/test_mounter_recovery.py and bench/recovery.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.polling import wait_until

WORKLOAD = Path(__file__).with_name("recovery_workload.py")
# Seconds a recovery may take before a test gives up on it: a bound for a broken test, not a timing claim.
RECOVERY_DEADLINE_S = 60.0


@dataclass
class Workload:
    process: subprocess.Popen[bytes]
    events_path: Path
    stop_path: Path

    def events(self) -> list[dict[str, Any]]:
        try:
            lines = self.events_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.endswith("}")]

    def rounds(self) -> list[dict[str, Any]]:
        return [e for e in self.events() if e["event"] == "round"]

    def pid(self) -> int | None:
        started = [e for e in self.events() if e["event"] == "started"]
        return int(started[0]["pid"]) if started else None

    def first(self, kind: str, after: float = 0.0, **fields: Any) -> dict[str, Any] | None:
        for e in self.events():
            if e["event"] == kind and e["t"] >= after and all(e.get(k) == v for k, v in fields.items()):
                return e
        return None

    def stop(self) -> None:
        self.stop_path.touch()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_workload(target: str, work: Path, names: list[str]) -> Workload:
    """The workload in a new mount namespace whose mounts are slaves of this one's, its volume a recursive
    bind of ``target`` made slave — runc's steps for a HostToContainer volume mount."""
    work.mkdir(parents=True, exist_ok=True)
    volume = work / "volume"
    volume.mkdir(exist_ok=True)
    events, stop = work / "events.jsonl", work / "stop"
    unshare = shutil.which("unshare")
    assert unshare is not None, "unshare (util-linux) is needed to give the workload its own mount namespace"
    script = (
        f'mount --rbind "$1" "$2" && mount --make-rslave "$2" && '
        f'exec "$3" "$4" "$2" "$5" "$6" {" ".join(names)}'
    )
    process = subprocess.Popen(
        [
            *(unshare, "--mount", "--propagation", "slave", "--", "sh", "-c", script, "sh"),
            *(target, str(volume), sys.executable, str(WORKLOAD), str(events), str(stop)),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(work / "workload.log", "ab"),  # noqa: SIM115 - the child keeps it
    )
    workload = Workload(process, events, stop)
    assert wait_until(lambda: len(workload.rounds()) >= 3 or process.poll() is not None), (
        workload.events(),
        (work / "workload.log").read_text(),
    )
    assert process.poll() is None, (work / "workload.log").read_text()
    return workload


def kill_mounter(pid: int) -> float:
    """``kill -9`` the mounter; the wall-clock time of the kill."""
    killed_at = time.time()
    os.kill(pid, signal.SIGKILL)
    return killed_at


def recovery_seconds(workload: Workload, killed_at: float) -> float | None:
    """Seconds from the kill to the first round after it that opened and read every file again, once
    rounds had failed; None until then."""
    failed = False
    for e in workload.rounds():
        if e["t"] < killed_at:
            continue
        if e["error"]:
            failed = True
        elif failed:
            return float(e["t"]) - killed_at
    return None


def await_recovery(workload: Workload, killed_at: float) -> float:
    seconds = wait_until(lambda: recovery_seconds(workload, killed_at), within=RECOVERY_DEADLINE_S)
    assert seconds is not None, ("reads did not resume", workload.rounds()[-5:])
    return seconds


def await_written_after(workload: Workload, killed_at: float) -> dict[str, Any]:
    """The workload's write of a file after the recovery that followed ``killed_at``, once it is done."""
    written = wait_until(lambda: workload.first("after", after=killed_at))
    assert written is not None, ("no write after the recovery", workload.events()[-3:])
    return written


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
