"""`python -m bench.recovery`: how long a workload waits when its Mountpoint Pod's mounter dies, and what
watching the mounters costs while nothing happens.

The parts are those of tests/e2e/test_mounter_recovery.py: ``s3csi driver --mode all --runtime local`` in a
child process over its CSI socket, real FUSE, the embedded moto S3 server, one published volume and a
workload process in its own mount namespace that received the target as a container with
``mountPropagation: HostToContainer`` does (tests/recovery_support.py), opening and reading three files
every 50 ms.

- recovery: ``kill -9`` of the mounter, then the seconds until the workload's first round that opened and
  read every file again; ``--crashes`` (20) times, the driver run with ``--mounter-crash-loop-window=0`` so
  that each crash is remounted at once (the back-off of a crash loop is policy, not the mechanism's cost).
  Median and max.
- watching: the node plugin's CPU time (user + system) over ``--idle`` (30) seconds with ``--volumes`` (10)
  Mountpoint Pods watched and nothing happening, next to the same with none published: the pidfd watch
  polls nothing, so the two should not differ beyond noise.

Prints the figures; asserts nothing. Needs root.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

from s3csi.demo.s3server import EmbeddedS3Server
from tests.boto_support import boto3_client
from tests.e2e.node_support import Node, node
from tests.recovery_support import await_recovery, cpu_seconds, kill_mounter, start_workload

NAMES = ["a.txt", "b.txt", "c.txt"]
OK_CODE = "OK"


def publish(the_node: Node, s3: object, bucket: str, fs_group: int) -> str:
    target = the_node.target()
    request = the_node.publish_request(target, bucket, mount_flags=("allow-other",), fs_group=fs_group)
    code, message = the_node.publish(request)
    if code.name != OK_CODE:
        raise SystemExit(f"NodePublishVolume failed: {code.name} {message}")
    return target


def the_mounter(the_node: Node, other_than: int | None) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids = [p for p in the_node.mounters() if p != other_than]
        if len(pids) == 1:
            return pids[0]
        time.sleep(0.02)
    raise SystemExit(f"no single new mounter: {the_node.mounters()}")


def measure_recovery(server: EmbeddedS3Server, crashes: int) -> list[float]:
    s3 = boto3_client("s3", server)
    bucket = "bench-recovery"
    s3.create_bucket(Bucket=bucket)
    for name in NAMES:
        s3.put_object(Bucket=bucket, Key=name, Body=name.encode() * 1000)
    with node(server, driver_args=("--mounter-crash-loop-window=0",), prefix="s3csi-bench-") as the_node:
        target = publish(the_node, s3, bucket, 1001)
        workload = start_workload(target, the_node.base / "workload", NAMES)
        times = []
        try:
            mounter = the_mounter(the_node, None)
            for _ in range(crashes):
                killed_at = kill_mounter(mounter)
                times.append(await_recovery(workload, killed_at))
                mounter = the_mounter(the_node, mounter)
        finally:
            workload.stop()
        the_node.unpublish(target)
    return times


def idle_cpu(server: EmbeddedS3Server, volumes: int, idle_s: float) -> float:
    """The node plugin's CPU seconds over ``idle_s`` with ``volumes`` Mountpoint Pods published."""
    s3 = boto3_client("s3", server)
    bucket = f"bench-idle-{volumes}"
    s3.create_bucket(Bucket=bucket)
    with node(server, prefix="s3csi-bench-") as the_node:
        # One Mountpoint Pod per fsGroup: each is watched on its own.
        targets = [publish(the_node, s3, bucket, 2000 + n) for n in range(volumes)]
        pid = the_node.driver.process.pid
        time.sleep(1.0)  # let the publishes' own work settle
        before = cpu_seconds(pid)
        time.sleep(idle_s)
        used = cpu_seconds(pid) - before
        for target in targets:
            the_node.unpublish(target)
    return used


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recovery", description=__doc__.split("\n\n")[0])
    parser.add_argument("--crashes", type=int, default=20, help="kill -9 of the mounter, this many times")
    parser.add_argument("--volumes", type=int, default=10, help="Mountpoint Pods watched while idle")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of idle CPU measurement")
    args = parser.parse_args(argv)
    with EmbeddedS3Server.start() as server:
        times = measure_recovery(server, args.crashes)
        watched = idle_cpu(server, args.volumes, args.idle)
        unwatched = idle_cpu(server, 0, args.idle)
    print("| measure | median | max | n |\n| --- | --- | --- | --- |")
    print(
        f"| recovery after kill -9 of the mounter (reads resume) | {statistics.median(times) * 1000:.0f} ms "
        f"| {max(times) * 1000:.0f} ms | {len(times)} |"
    )
    print(
        f"| node plugin CPU over {args.idle:g} s idle, {args.volumes} Mountpoint Pods watched | "
        f"{watched:.2f} s | | |"
    )
    print(f"| node plugin CPU over {args.idle:g} s idle, nothing published | {unwatched:.2f} s | | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
