"""What the mounter's metrics cost (``s3csi mount --metrics-address``): the same workloads on s3csi mounts
with metrics off and on, in the same run of ``python -m bench`` (``--metrics-cost PAIRS``, 0 skips it).

Each pair is two cold mounts, one without metrics and one with, in alternating order (off then on, then on
then off) so that a spell of load on a shared machine does not always fall on the same side; each mount
runs the sequential read and the 1,000 small reads of the main table. The mount with metrics is scraped
after its workloads, which must have counted its FUSE reads (the cost is that of metrics really recorded).

The cost of one side against the other is the ratio of the medians: sequential read MB/s off / on, and
small reads seconds on / off, minus one; the goal is at most 3 % (``GOAL``). The per-request overhead is
also timed in this process, on a no-op FUSE handler and the S3 request observer (microseconds per call).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import report
from bench.mounts import METRICS_SOCKET, Mount

GOAL = 0.03
CALLS = 200_000
Workload = Callable[[list[str], float, str], dict[str, float]]


@dataclass(frozen=True)
class MetricsCost:
    pairs: int
    seq_off_mbps: float
    seq_on_mbps: float
    small_off_s: float
    small_on_s: float
    fuse_overhead_us: float
    s3_overhead_us: float

    @property
    def seq_cost(self) -> float:
        return self.seq_off_mbps / self.seq_on_mbps - 1

    @property
    def small_cost(self) -> float:
        return self.small_on_s / self.small_off_s - 1


def measure(
    *,
    endpoint_url: str,
    bucket: str,
    seq_key: str,
    seq_size: int,
    small_names: list[str],
    pairs: int,
    run_workload: Workload,
    drop_caches: Callable[[], None],
    timeout: float,
) -> MetricsCost:
    seq: dict[bool, list[float]] = {False: [], True: []}
    small: dict[bool, list[float]] = {False: [], True: []}

    @contextlib.contextmanager
    def cold_mount(metrics: bool) -> Iterator[Mount]:
        drop_caches()
        with (
            tempfile.TemporaryDirectory(prefix="s3csi-bench-metrics-") as workdir,
            Mount(report.S3CSI, bucket, endpoint_url, Path(workdir), metrics=metrics) as mount,
        ):
            yield mount

    for pair in range(pairs):
        for metrics in (False, True) if pair % 2 == 0 else (True, False):
            with cold_mount(metrics) as mount:
                result = run_workload(["read", str(mount.mountpoint / seq_key)], timeout, "")
                if result["bytes"] != seq_size:
                    raise RuntimeError(f"metrics cost: read {result['bytes']:.0f} bytes")
                seq[metrics].append(result["bytes"] / 1e6 / result["seconds"])
            with cold_mount(metrics) as mount:
                result = run_workload(["small-reads", str(mount.mountpoint)], timeout, "\n".join(small_names))
                small[metrics].append(result["seconds"])
                if metrics:
                    reads = fuse_reads(mount.workdir / METRICS_SOCKET)
                    if reads < len(small_names):
                        raise RuntimeError(f"metrics cost: the mount counted {reads:.0f} FUSE reads")
    fuse_us, s3_us = per_call_overhead()
    return MetricsCost(
        pairs=pairs,
        seq_off_mbps=statistics.median(seq[False]),
        seq_on_mbps=statistics.median(seq[True]),
        small_off_s=statistics.median(small[False]),
        small_on_s=statistics.median(small[True]),
        fuse_overhead_us=fuse_us,
        s3_overhead_us=s3_us,
    )


def fuse_reads(socket_path: Path) -> float:
    """``s3csi_fuse_requests_total{op="read"}`` from the mount's endpoint."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(str(socket_path))
        conn.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        body = b"".join(iter(lambda: conn.recv(65536), b"")).decode()
    for line in body.splitlines():
        if line.startswith("s3csi_fuse_requests_total{") and 'op="read"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def per_call_overhead() -> tuple[float, float]:
    """Microseconds added to one FUSE request (a no-op handler, wrapped and not) and to one S3 request."""
    from s3csi.fs.metrics import MounterMetrics

    class Handlers:
        async def getattr(self, inode: int, ctx: Any = None) -> int:
            return inode

    async def timed(handler: Callable[[int], Any]) -> float:
        started = time.perf_counter()
        for inode in range(CALLS):
            await handler(inode)
        return time.perf_counter() - started

    metrics = MounterMetrics("bench")
    plain, measured = Handlers(), Handlers()
    metrics.measure(measured)  # type: ignore[arg-type]
    bare = asyncio.run(timed(plain.getattr))
    wrapped = asyncio.run(timed(measured.getattr))
    started = time.perf_counter()
    for _ in range(CALLS):
        metrics.succeeded("GetObject", 0.001, 0.002, 0, 8 * 1024 * 1024)
    observer = time.perf_counter() - started
    return (wrapped - bare) / CALLS * 1e6, observer / CALLS * 1e6


def verdict(result: MetricsCost | None) -> report.Verdict:
    target = f"mounter metrics cost <= {GOAL:.0%} (sequential read, 1000 small reads)"
    if result is None:
        return report.Verdict(target, "not measured", None)
    shown = f"{result.seq_cost:+.1%} sequential, {result.small_cost:+.1%} small reads"
    return report.Verdict(target, shown, result.seq_cost <= GOAL and result.small_cost <= GOAL)


def format_result(result: MetricsCost) -> str:
    rows = [
        ("sequential read, metrics off (MB/s)", f"{result.seq_off_mbps:.0f}"),
        ("sequential read, metrics on (MB/s)", f"{result.seq_on_mbps:.0f}"),
        ("sequential read: cost", f"{result.seq_cost:+.1%}"),
        ("read 1000 x 4 KiB, metrics off (s)", f"{result.small_off_s:.3f}"),
        ("read 1000 x 4 KiB, metrics on (s)", f"{result.small_on_s:.3f}"),
        ("small reads: cost", f"{result.small_cost:+.1%}"),
        ("per FUSE request, in process (us)", f"{result.fuse_overhead_us:.2f}"),
        ("per S3 request, in process (us)", f"{result.s3_overhead_us:.2f}"),
    ]
    width = max(len(label) for label, _ in rows)
    title = f"s3csi: the mounter's metrics off and on, median of {result.pairs} pairs of cold mounts"
    return "\n".join([title, *(f"  {label.ljust(width)}  {value:>7}" for label, value in rows)])
