"""`python -m bench.controller`: the reconcile throughput of `s3csi controller` with 1,000 workload pods
against the in-process fake API server (tests/kube_fake) over HTTPS.

The controller runs as its own process (`python -m s3csi controller`), so its CPU time is its own, not the
fake server's. Three phases, each timed until the fake's state is what the controller must reach:

- start: 1,000 pods already exist (10 fsGroups on 3 nodes: 30 sharing keys); the controller starts, takes
  the Lease, lists and serves them all;
- stream: 1,000 more pods are created while it runs;
- drain: all 2,000 are deleted; it removes every entry, retires the 30 Mountpoint Pods after the grace
  period (0.2 s here) and deletes the attachments.

The changes are made as fast as the fake server accepts them (each object validated), which bounds the
stream and drain rates; "settled after the last change" is the controller's lag behind them. Events are the
workload pods' watch events of the phase (1,000 ADDED, or 2,000 DELETED); the controller's own
writes come back to it as events too and are not counted. Figures are printed; docs/performance.md has a run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.mounts import cpu_seconds
from tests.controller_support import IMAGE, attachments, mountpoint_pods, prepare, served, volume, workload
from tests.kube_fake import FakeKubeApi

NODES = 3
GROUPS = 10
TIMEOUT_S = 600.0


def wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"bench.controller: {what} did not happen within {TIMEOUT_S:g} s")
        time.sleep(0.02)


def add_pods(api: FakeKubeApi, first: int, count: int) -> set[str]:
    return {
        str(
            api.add(workload(f"w-{i}", "shared", node=f"node-{i % NODES}", fs_group=1000 + i % GROUPS))[
                "metadata"
            ]["uid"]
        )
        for i in range(first, first + count)
    }


def phase(
    name: str,
    events: int,
    process: subprocess.Popen[bytes],
    act: Callable[[], None],
    done: Callable[[], bool],
) -> None:
    cpu, start = cpu_seconds(process.pid), time.monotonic()
    act()
    acted = time.monotonic()
    wait(done, name)
    end = time.monotonic()
    elapsed, used = end - start, cpu_seconds(process.pid) - cpu
    print(
        f"{name:6} {events:5d} events in {elapsed:6.2f} s = {events / elapsed:7.0f} events/s "
        f"(settled {end - acted:5.2f} s after the last change); "
        f"controller CPU {used:5.2f} s = {used / events * 1e6:6.0f} µs per event"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.controller", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--pods", type=int, default=1000, help="workload pods per phase (default %(default)s)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-controller-") as tmp:
        api = FakeKubeApi(Path(tmp) / "kube-api")
        try:
            prepare(api)
            volume(api, "shared")
            first = add_pods(api, 0, args.pods)
            command = [
                sys.executable, "-m", "s3csi", "controller", "--image", IMAGE, *api.driver_args(),
                "--identity", "bench", "--idle-grace-period", "0.2",
            ]  # fmt: skip
            log = open(Path(tmp) / "controller.log", "wb")  # noqa: SIM115 - closed after the process
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            try:
                print(f"s3csi controller: {args.pods} pods per phase, {NODES} nodes, {GROUPS} fsGroups")
                phase("start", args.pods, process, lambda: None, lambda: set(served(api)) == first)
                second: set[str] = set()
                phase(
                    "stream",
                    args.pods,
                    process,
                    lambda: second.update(add_pods(api, args.pods, args.pods)),
                    lambda: set(served(api)) == first | second,
                )

                def delete_all() -> None:
                    for i in range(2 * args.pods):
                        api.remove("Pod", "team-a", f"w-{i}")

                phase(
                    "drain",
                    2 * args.pods,
                    process,
                    delete_all,
                    lambda: not served(api) and not mountpoint_pods(api) and not attachments(api),
                )
            finally:
                process.terminate()
                process.wait(30)
                log.close()
            if process.returncode not in (0, -15):
                print((Path(tmp) / "controller.log").read_text()[-2000:], file=sys.stderr)
        finally:
            api.stop()


if __name__ == "__main__":
    main()
