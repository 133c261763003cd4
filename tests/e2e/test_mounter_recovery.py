"""Workloads survive a Mountpoint Pod crash: ``s3csi driver`` (local runtime) in a child process, a real
FUSE session on the real S3 server, a workload process in its own mount namespace that received its
target as a container with HostToContainer propagation does, and ``kill -9`` of the mounter
(docs/architecture.md, "Mountpoint Pod crash recovery"). Needs root."""

from __future__ import annotations

import errno
import re
import statistics
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from s3csi.kernel.mount import find_mount
from tests.e2e.node_support import Node, node
from tests.metrics_support import scrape, value
from tests.polling import wait_until
from tests.recovery_support import (
    Workload,
    await_recovery,
    await_written_after,
    cpu_seconds,
    kill_mounter,
    start_workload,
)
from tests.recovery_workload import BEFORE

pytestmark = pytest.mark.usefixtures("privileged")
OK = grpc.StatusCode.OK
NAMES = ["a.txt", "b.txt", "c.txt"]


@pytest.fixture
def the_node(s3_server: EmbeddedS3Server) -> Iterator[Node]:
    # No back-off between the crashes of the repeated-crash measurement: each is a first crash.
    with node(s3_server, driver_args=("--mounter-crash-loop-window=0",)) as n:
        yield n


def publish(the_node: Node, bucket: str, s3: Any) -> str:
    for name in NAMES:
        s3.put_object(Bucket=bucket, Key=name, Body=name.encode() * 100)
    target = the_node.target()
    request = the_node.publish_request(target, bucket, mount_flags=("allow-other",), fs_group=1001)
    assert the_node.publish(request) == (OK, "")
    return target


def the_mounter(the_node: Node, other_than: int | None = None) -> int:
    pids = wait_until(lambda: [p for p in the_node.mounters() if p != other_than])
    assert len(pids) == 1, pids
    return pids[0]


def test_a_workload_reads_again_after_its_mounter_is_killed(the_node: Node, s3: Any, bucket: str) -> None:
    target = publish(the_node, bucket, s3)
    workload = start_workload(target, the_node.base / "workload", NAMES)
    first_pid = workload.pid()
    try:
        before = workload.first("before")
        assert before is not None and before["error"] is None, before
        mounter = the_mounter(the_node)
        killed_at = kill_mounter(mounter)
        seconds = await_recovery(workload, killed_at)
        print(f"\nrecovered {seconds * 1000:.0f} ms after kill -9 of the mounter")
        new_mounter = the_mounter(the_node, other_than=mounter)
        assert new_mounter != mounter
        assert wait_until(lambda: recoveries(the_node) == (1, 0)), recoveries(the_node)
        assert value(scrape(the_node.driver.metrics_path), "s3csi_node_mountpoint_pods") == 1
        # The write in flight failed at write or close: never reported as success.
        inflight = workload.first("inflight")
        assert inflight is not None and inflight["error"], inflight
        # A file written after the recovery reached S3 once closed.
        after = wait_until(lambda: workload.first("after", after=killed_at))
        assert after is not None and after["error"] is None, after
        # Files opened in the dead session keep failing; new opens work.
        last = wait_until(lambda: [r for r in workload.rounds() if r["t"] > after["t"]])
        assert last[-1]["error"] is None and last[-1]["held_error"], last[-1]
    finally:
        workload.stop()
    assert workload.pid() == first_pid and workload.process.returncode == 0
    # close returned 0 before the crash: in S3; the write in flight: not; after the recovery: in S3.
    assert s3.get_object(Bucket=bucket, Key="before")["Body"].read() == BEFORE
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="inflight")
    assert s3.get_object(Bucket=bucket, Key="after-1")["Body"].read() == b"after-1"
    # The target itself was never touched: the node plugin mounted the new session at the source only.
    assert "remounting its FUSE session under 1 targets" in the_node.driver.log()
    assert the_node.unpublish(target) == (OK, "")
    assert wait_until(lambda: not the_node.leftovers()), the_node.leftovers()


def recoveries(the_node: Node) -> tuple[float, float]:
    """The node plugin's counts of remounted sessions: (recovered, failed)."""
    samples = scrape(the_node.driver.metrics_path)
    name = "s3csi_node_recoveries_total"
    return value(samples, name, result="recovered"), value(samples, name, result="failed")


def assert_closed_files_in_s3(workload: Workload, s3: Any, bucket: str, recoveries: int) -> None:
    """Every file the workload wrote after a recovery and whose close returned 0 is in S3."""
    written = [e for e in workload.events() if e["event"] == "after"]
    assert len(written) == recoveries, written
    for e in written:
        assert e["error"] is None, e
        assert s3.get_object(Bucket=bucket, Key=e["name"])["Body"].read() == e["name"].encode()


def test_recovery_time_over_ten_crashes(the_node: Node, s3: Any, bucket: str) -> None:
    target = publish(the_node, bucket, s3)
    workload = start_workload(target, the_node.base / "workload", NAMES)
    times = []
    try:
        mounter = the_mounter(the_node)
        for _ in range(10):
            killed_at = kill_mounter(mounter)
            times.append(await_recovery(workload, killed_at))
            mounter = the_mounter(the_node, other_than=mounter)
            await_written_after(workload, killed_at)
    finally:
        workload.stop()
    assert wait_until(lambda: recoveries(the_node) == (10, 0)), recoveries(the_node)
    print(
        f"\nrecovery after kill -9 over {len(times)} crashes: median "
        f"{statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms"
    )
    assert_closed_files_in_s3(workload, s3, bucket, 10)
    assert the_node.unpublish(target) == (OK, "")
    assert wait_until(lambda: not the_node.leftovers()), the_node.leftovers()


def test_a_crash_loop_backs_off_without_spinning(s3_server: EmbeddedS3Server, s3: Any, bucket: str) -> None:
    with node(s3_server) as the_node:  # the default crash-loop window
        target = publish(the_node, bucket, s3)
        workload = start_workload(target, the_node.base / "workload", NAMES)
        driver_pid = the_node.driver.process.pid
        cpu_before = cpu_seconds(driver_pid)
        try:
            mounter = the_mounter(the_node)
            times = []
            for _ in range(5):
                killed_at = kill_mounter(mounter)
                times.append(await_recovery(workload, killed_at))
                mounter = the_mounter(the_node, other_than=mounter)
                await_written_after(workload, killed_at)
            elapsed = workload.rounds()[-1]["t"] - workload.rounds()[0]["t"]
        finally:
            workload.stop()
        cpu = cpu_seconds(driver_pid) - cpu_before
        log = the_node.driver.log()
        delays = [float(d) for d in re.findall(r"next remount in ([0-9.]+)s", log)]
        print(
            f"\n5 crashes: recovered after {', '.join(f'{t:.1f}' for t in times)} s; back-off "
            f"{delays} s; node plugin CPU {cpu:.2f} s over {elapsed:.0f} s"
        )
        # Each crash within the window of the remount before waits twice as long as the one before.
        assert delays == [1.0, 2.0, 4.0, 8.0], log
        assert_closed_files_in_s3(workload, s3, bucket, 5)
        # Waiting out a back-off costs nothing: a busy loop would burn about the elapsed time.
        assert cpu < 0.25 * elapsed, (cpu, elapsed)
        assert the_node.unpublish(target) == (OK, "")
        assert wait_until(lambda: not the_node.leftovers()), the_node.leftovers()


def test_a_read_only_volume_comes_back_read_only(the_node: Node, s3: Any, bucket: str) -> None:
    s3.put_object(Bucket=bucket, Key="a.txt", Body=b"a")
    target = the_node.target()
    request = the_node.publish_request(
        target, bucket, mount_flags=("allow-other",), fs_group=1001, readonly=True
    )
    assert the_node.publish(request) == (OK, "")
    mounter = the_mounter(the_node)
    before = find_mount(target)
    assert before is not None and before.read_only
    kill_mounter(mounter)
    the_mounter(the_node, other_than=mounter)
    assert wait_until(lambda: _reads(f"{target}/a.txt")), "the read-only volume did not serve again"
    after = find_mount(target)
    assert after is not None and after.read_only and after.device != before.device
    with pytest.raises(OSError) as refused:
        Path(target, "new.txt").write_bytes(b"x")
    assert refused.value.errno == errno.EROFS
    assert the_node.unpublish(target) == (OK, "")
    assert wait_until(lambda: not the_node.leftovers()), the_node.leftovers()


def _reads(path: str) -> bool:
    try:
        return Path(path).read_bytes() == b"a"
    except OSError:
        return False


def test_a_publish_right_after_the_crash_remounts_once(the_node: Node, s3: Any, bucket: str) -> None:
    """A NodePublishVolume of the key that arrives while the watch's recovery runs, or before it: the two
    take the key's lock in turn, the session is remounted once, and both targets read the new one."""
    target = publish(the_node, bucket, s3)
    mounter = the_mounter(the_node)
    kill_mounter(mounter)
    joining = the_node.target()
    request = the_node.publish_request(joining, bucket, mount_flags=("allow-other",), fs_group=1001)
    assert the_node.publish(request) == (OK, "")
    assert the_mounter(the_node, other_than=mounter)
    for path in (target, joining):
        assert wait_until(lambda p=path: _reads_name(f"{p}/a.txt")), path
    assert the_node.driver.log().count("remounting its FUSE session") == 1, the_node.driver.log()
    for path in (target, joining):
        assert the_node.unpublish(path) == (OK, "")
    assert wait_until(lambda: not the_node.leftovers()), the_node.leftovers()


def _reads_name(path: str) -> bool:
    try:
        return Path(path).read_bytes() == b"a.txt" * 100
    except OSError:
        return False


def test_a_target_the_remount_did_not_reach_is_rebound_by_a_republish(
    the_node: Node, s3: Any, bucket: str
) -> None:
    """A target bound when sources were not shared mounts (an older driver) is no peer of its source: the
    remount does not reach it and it keeps failing with ENOTCONN, until kubelet publishes it again, which
    binds it to the live session."""
    target = publish(the_node, bucket, s3)
    subprocess.run(["mount", "--make-private", target], check=True)
    mounter = the_mounter(the_node)
    kill_mounter(mounter)
    the_mounter(the_node, other_than=mounter)
    assert wait_until(lambda: "FUSE session remounted" in the_node.driver.log()), the_node.driver.log()
    assert not _reads_name(f"{target}/a.txt")
    request = the_node.publish_request(target, bucket, mount_flags=("allow-other",), fs_group=1001)
    assert the_node.publish(request) == (OK, "")
    assert _reads_name(f"{target}/a.txt")
    assert the_node.unpublish(target) == (OK, "")
    assert wait_until(lambda: not the_node.leftovers()), the_node.leftovers()


def test_a_restarted_mounter_removes_what_the_dead_one_left_in_the_cache_volume(
    the_node: Node, s3: Any, bucket: str
) -> None:
    # The cache volume outlives the mounter: the read parts and staged copies of a mounter killed with -9
    # would pile up with every crash (and, in a Pod, get it evicted for outgrowing its sizeLimit).
    s3.put_object(Bucket=bucket, Key="data.bin", Body=b"x" * 2**20)
    target = the_node.target()
    request = the_node.publish_request(
        target, bucket, mount_flags=("allow-other",), fs_group=1001, attributes={"cache": "emptyDir"}
    )
    assert the_node.publish(request) == (OK, "")
    [cache] = list((the_node.state_dir / "pods").glob("*/comm/cache"))
    assert (Path(target) / "data.bin").read_bytes() == b"x" * 2**20
    [dead] = [entry.name for entry in cache.iterdir()]
    mounter = the_mounter(the_node)
    kill_mounter(mounter)
    the_mounter(the_node, other_than=mounter)
    assert wait_until(lambda: _reads_data(Path(target) / "data.bin")), the_node.driver.log()
    entries = [entry.name for entry in cache.iterdir()]
    assert dead not in entries and len(entries) == 1 and entries[0].startswith("s3csi-cache-"), entries
    assert the_node.unpublish(target) == (OK, "")
    assert wait_until(lambda: not the_node.leftovers()), the_node.leftovers()


def _reads_data(path: Path) -> bool:
    try:
        return path.read_bytes() == b"x" * 2**20
    except OSError:
        return False
