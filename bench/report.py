"""Pure reporting: medians, ratios, the issue's targets with PASS/MISS, and the printed table."""

from __future__ import annotations

import operator
import statistics
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

DIRECT = "direct"
S3CSI = "s3csi"
PEERS = ("s3fs", "rclone", "rclone-full")
SYSTEMS = (DIRECT, S3CSI, *PEERS)


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    higher_is_better: bool
    decimals: int


METRICS = (
    Metric("seq_read_mbps", "sequential read (MB/s)", True, 0),
    Metric("ttfb_ms", "time to first byte (ms)", False, 1),
    Metric("ls_s", "ls -l 1000 objects (s)", False, 3),
    Metric("ls_requests", "ls -l S3 requests", False, 0),
    Metric("small_reads_s", "read 1000 x 4 KiB (s)", False, 3),
    Metric("write_mbps", "write until in S3 (MB/s)", True, 0),
    Metric("write_close_s", "write: close returned (s)", False, 2),
    Metric("write_visible_s", "write: object visible (s)", False, 2),
    Metric("rss_mib", "peak RSS in seq read (MiB)", False, 0),
    Metric("read_cpu_s", "CPU in seq read (s)", False, 2),
    Metric("tar_s", "tar -xf 1000 files, in S3 (s)", False, 2),
    Metric("tar_exit_s", "tar -xf: tar exited (s)", False, 2),
    Metric("rsync_s", "rsync -a 1000 files, in S3 (s)", False, 2),
    Metric("rsync_exit_s", "rsync -a: rsync exited (s)", False, 2),
)
METRIC_BY_KEY = {metric.key: metric for metric in METRICS}

# Samples per system and metric, as measured; and their medians.
Samples = Mapping[str, Mapping[str, Sequence[float]]]
Figures = dict[str, dict[str, float]]
# Per system, the metrics whose workload failed (a tool's non-zero exit, bytes that did not arrive).
Failed = Mapping[str, Collection[str]]
# The rows whose workload can fail on one system while the others go on: the everyday tools.
TOOL_METRICS = {"tar_s": ("tar_s", "tar_exit_s"), "rsync_s": ("rsync_s", "rsync_exit_s")}


def medians(samples: Samples) -> Figures:
    return {
        system: {key: statistics.median(values) for key, values in metrics.items() if values}
        for system, metrics in samples.items()
    }


def best_peer(figures: Figures, key: str) -> tuple[str, float] | None:
    """The peer with the best figure for `key` (largest or smallest, as the metric says), if measured."""
    measured = [(figures[peer][key], peer) for peer in PEERS if key in figures.get(peer, {})]
    if not measured:
        return None
    value, peer = max(measured) if METRIC_BY_KEY[key].higher_is_better else min(measured)
    return peer, value


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    passed: bool | None  # None: not measured in this run

    @property
    def word(self) -> str:
        return "n/a" if self.passed is None else "PASS" if self.passed else "MISS"


def _get(figures: Figures, system: str, key: str) -> float | None:
    return figures.get(system, {}).get(key)


def verdicts(figures: Figures, failed: Failed | None = None) -> list[Verdict]:
    """The targets of issues 2 and 14 (on s3rver, one run), each with the figures it compares."""
    failed = failed or {}

    def check(target: str, value: float | None, bound: float | None, ok: bool, shown: str) -> Verdict:
        if value is None or bound is None:
            return Verdict(target, "not measured", None)
        return Verdict(target, shown, ok)

    result = []
    read, direct_read = _get(figures, S3CSI, "seq_read_mbps"), _get(figures, DIRECT, "seq_read_mbps")
    r = ratio(read, direct_read)
    result.append(
        check(
            "sequential read >= 0.85 x direct ranged GET",
            read,
            direct_read,
            r is not None and r >= 0.85,
            f"{read or 0:.0f} / {direct_read or 0:.0f} MB/s = {r or 0:.2f}",
        )
    )
    peer_targets: tuple[tuple[str, str, Callable[[float, float], bool]], ...] = (
        ("seq_read_mbps", "sequential read >= the faster peer", operator.ge),
        ("ttfb_ms", "time to first byte <= the faster peer", operator.le),
        ("ls_s", "ls -l of 1000 objects faster than both peers", operator.lt),
        ("small_reads_s", "1000 small reads faster than both peers", operator.lt),
    )
    for key, target, compare in peer_targets:
        ours, best = _get(figures, S3CSI, key), best_peer(figures, key)
        decimals = METRIC_BY_KEY[key].decimals
        shown = f"{ours or 0:.{decimals}f} vs {best[0]} {best[1]:.{decimals}f}" if best else ""
        result.append(
            check(
                target,
                ours,
                best[1] if best else None,
                ours is not None and best is not None and compare(ours, best[1]),
                shown,
            )
        )
    requests = _get(figures, S3CSI, "ls_requests")
    result.append(
        check(
            "ls -l of 1000 objects in <= 2 S3 requests",
            requests,
            2,
            requests is not None and requests <= 2,
            f"{requests or 0:.0f}",
        )
    )
    write, direct_write = _get(figures, S3CSI, "write_mbps"), _get(figures, DIRECT, "write_mbps")
    r = ratio(write, direct_write)
    result.append(
        check(
            "durable write >= 0.9 x direct multipart PUT",
            write,
            direct_write,
            r is not None and r >= 0.9,
            f"{write or 0:.0f} / {direct_write or 0:.0f} MB/s = {r or 0:.2f}",
        )
    )
    tool_targets = (
        ("tar_s", "tar -xf of 1000 files faster than both peers"),
        ("rsync_s", "rsync -a of 1000 files faster than both peers"),
    )
    for key, target in tool_targets:
        result.append(_tool_verdict(figures, failed, key, target))
    rss = _get(figures, S3CSI, "rss_mib")
    result.append(
        check(
            "RSS <= 256 MiB during the sequential read",
            rss,
            256,
            rss is not None and rss <= 256,
            f"{rss or 0:.0f} MiB",
        )
    )
    return result


def _tool_verdict(figures: Figures, failed: Failed, key: str, target: str) -> Verdict:
    """s3csi against the best peer that completed the tool; a peer whose tool failed is beaten by any time."""
    broken = [peer for peer in PEERS if key in failed.get(peer, ())]
    note = f" ({', '.join(broken)} failed)" if broken else ""
    if key in failed.get(S3CSI, ()):
        return Verdict(target, f"s3csi failed{note}", False)
    ours, best = _get(figures, S3CSI, key), best_peer(figures, key)
    if ours is None or (best is None and not broken):
        return Verdict(target, "not measured", None)
    if best is None:
        return Verdict(target, f"{ours:.2f}, every peer failed{note}", True)
    return Verdict(target, f"{ours:.2f} vs {best[0]} {best[1]:.2f}{note}", ours < best[1])


def _cell(value: float | None, decimals: int) -> str:
    return "-" if value is None else f"{value:.{decimals}f}"


def _ratio_cell(value: float | None) -> str:
    # Two significant digits below 0.1, so that 2 requests against 1002 does not read "0.00".
    return "-" if value is None else f"{value:.2f}" if value >= 0.1 else f"{value:.2g}"


def format_table(figures: Figures, failed: Failed | None = None) -> str:
    """Metrics as rows, systems as columns, then s3csi/direct and s3csi/best-peer ratios.

    A workload that failed on a system shows "failed" in its cells rather than a time.
    """
    failed = failed or {}
    systems = [system for system in SYSTEMS if system in figures]
    header = ["metric", *systems, "s3csi/direct", "s3csi/best peer"]
    rows = [header]
    for metric in METRICS:
        if not any(
            metric.key in figures[system] or metric.key in failed.get(system, ()) for system in systems
        ):
            continue
        ours = _get(figures, S3CSI, metric.key)
        best = best_peer(figures, metric.key)
        rows.append(
            [
                metric.label,
                *(
                    "failed"
                    if metric.key in failed.get(system, ())
                    else _cell(_get(figures, system, metric.key), metric.decimals)
                    for system in systems
                ),
                _ratio_cell(ratio(ours, _get(figures, DIRECT, metric.key))),
                _ratio_cell(ratio(ours, best[1] if best else None))
                + (f" ({best[0]})" if best and ours is not None else ""),
            ]
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = []
    for index, row in enumerate(rows):
        cells = [
            row[0].ljust(widths[0]),
            *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)),
        ]
        lines.append("  ".join(cells).rstrip())
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def format_verdicts(results: Sequence[Verdict]) -> str:
    width = max(len(verdict.target) for verdict in results)
    return "\n".join(
        f"{verdict.word:<5} {verdict.target.ljust(width)}  {verdict.measured}".rstrip() for verdict in results
    )
