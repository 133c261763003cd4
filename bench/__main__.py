"""`python -m bench`: the file system benchmark of issue 2 against one local s3rver, in one run.

Direct S3 (boto3) is the baseline; s3csi, s3fs-fuse and rclone mount are measured with cold mounts (a fresh
mount per measurement, page cache dropped before each), medians of the repetitions. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from bench import big_directory, metrics_cost, report, tree
from bench.mounts import Mount, Profiler, cpu_seconds, py_spy
from bench.proxy import CountingProxy
from bench.servers import ACCESS_KEY, REGION, SECRET_KEY, S3rver

MiB = 1024 * 1024
MB = 1_000_000
BUCKET = "bench"
SEQ_KEY = "data/sequential"
FIRST_BYTE_KEY = "data/first-byte"
SMALL_PREFIX = "small"
# The direct baseline: ranged GETs and multipart parts of 8 MiB, 8 in flight.
PART_SIZE = 8 * MiB
CONCURRENCY = 8
READ_TIMEOUT = 600.0
STEP_TIMEOUT = 180.0


@dataclass(frozen=True)
class Sizes:
    sequential: int
    first_byte: int
    write: int
    small_count: int
    small_size: int


FULL = Sizes(sequential=512 * MiB, first_byte=64 * MiB, write=256 * MiB, small_count=1000, small_size=4096)
QUICK = Sizes(sequential=128 * MiB, first_byte=64 * MiB, write=64 * MiB, small_count=1000, small_size=4096)

Samples = dict[str, dict[str, list[float]]]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one repetition and smaller objects")
    parser.add_argument(
        "--repetitions", type=int, help="repetitions per measurement (default 5, 1 with --quick)"
    )
    parser.add_argument(
        "--only", help=f"comma-separated systems to measure, of: {','.join(report.SYSTEMS)} (default: all)"
    )
    parser.add_argument("--json", type=Path, help="also write the samples, medians and verdicts to this file")
    parser.add_argument(
        "--big-directory",
        type=int,
        default=big_directory.COUNT,
        metavar="N",
        help=f"objects in the directory s3csi lists once (default {big_directory.COUNT:,}; 0 skips it)",
    )
    parser.add_argument(
        "--metrics-cost",
        type=int,
        default=3,
        metavar="PAIRS",
        help="pairs of s3csi mounts without and with --metrics-address, for the metrics' cost (default 3; "
        "0 skips it)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="record each s3csi mount with py-spy into DIR as collapsed stacks (slows s3csi down)",
    )
    args = parser.parse_args(argv)
    args.systems = report.SYSTEMS
    if args.only is not None:
        chosen = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in chosen if name not in report.SYSTEMS]
        if unknown or not chosen:
            what = f"unknown system(s) {','.join(unknown)}" if unknown else "no system named"
            parser.error(f"--only: {what}; choose from {','.join(report.SYSTEMS)}")
        args.systems = tuple(name for name in report.SYSTEMS if name in chosen)
    if args.repetitions is None:
        args.repetitions = 1 if args.quick else 5
    if args.repetitions < 1:
        parser.error("--repetitions must be at least 1")
    if args.big_directory < 0:
        parser.error("--big-directory must be 0 (skip) or more")
    if args.metrics_cost < 0:
        parser.error("--metrics-cost must be 0 (skip) or more")
    if args.profile is not None:
        if py_spy() is None:
            parser.error("--profile needs py-spy (pip install py-spy)")
        args.profile.mkdir(parents=True, exist_ok=True)
    return args


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def s3_client(endpoint_url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(max_pool_connections=2 * CONCURRENCY, s3={"addressing_style": "path"}),
    )


def repeated(size: int) -> bytes:
    block = os.urandom(MiB)
    return (block * (size // MiB + 1))[:size]


def small_names(sizes: Sizes) -> list[str]:
    return [f"{SMALL_PREFIX}/object-{index:04d}" for index in range(sizes.small_count)]


def upload_dataset(s3: Any, sizes: Sizes) -> None:
    transfer = TransferConfig(multipart_chunksize=PART_SIZE, max_concurrency=CONCURRENCY)
    s3.create_bucket(Bucket=BUCKET)
    s3.upload_fileobj(io.BytesIO(repeated(sizes.sequential)), BUCKET, SEQ_KEY, Config=transfer)
    s3.upload_fileobj(io.BytesIO(repeated(sizes.first_byte)), BUCKET, FIRST_BYTE_KEY, Config=transfer)
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(
            pool.map(
                lambda key: s3.put_object(Bucket=BUCKET, Key=key, Body=os.urandom(sizes.small_size)),
                small_names(sizes),
            )
        )


# --- direct S3, the baseline -------------------------------------------------------------------------------


def direct_sequential_read(s3: Any, sizes: Sizes) -> float:
    def part(offset: int) -> int:
        end = min(offset + PART_SIZE, sizes.sequential) - 1
        return len(s3.get_object(Bucket=BUCKET, Key=SEQ_KEY, Range=f"bytes={offset}-{end}")["Body"].read())

    started = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        total = sum(pool.map(part, range(0, sizes.sequential, PART_SIZE)))
    seconds = time.perf_counter() - started
    _expect(total == sizes.sequential, f"direct read returned {total} bytes")
    return total / MB / seconds


def direct_first_byte(s3: Any) -> float:
    started = time.perf_counter()
    body = s3.get_object(Bucket=BUCKET, Key=FIRST_BYTE_KEY)["Body"]
    body.read(1)
    seconds = time.perf_counter() - started
    body.close()
    return seconds * 1000


def direct_list(s3: Any, sizes: Sizes) -> tuple[float, int]:
    started = time.perf_counter()
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{SMALL_PREFIX}/"))
    seconds = time.perf_counter() - started
    count = sum(len(page.get("Contents", [])) for page in pages)
    _expect(count == sizes.small_count, f"direct list returned {count} objects")
    return seconds, len(pages)


def direct_small_reads(s3: Any, sizes: Sizes) -> float:
    started = time.perf_counter()
    for key in small_names(sizes):
        s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    return time.perf_counter() - started


def direct_write(s3: Any, sizes: Sizes, key: str) -> float:
    data = io.BytesIO(repeated(sizes.write))
    transfer = TransferConfig(
        multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE, max_concurrency=CONCURRENCY
    )
    started = time.perf_counter()
    s3.upload_fileobj(data, BUCKET, key, Config=transfer)
    return time.perf_counter() - started


def measure_direct(s3: Any, sizes: Sizes, samples: dict[str, list[float]], repetition: int) -> None:
    drop_caches()
    cpu_before = time.process_time()
    samples["seq_read_mbps"].append(direct_sequential_read(s3, sizes))
    samples["read_cpu_s"].append(time.process_time() - cpu_before)
    drop_caches()
    samples["ttfb_ms"].append(direct_first_byte(s3))
    drop_caches()
    seconds, requests = direct_list(s3, sizes)
    samples["ls_s"].append(seconds)
    samples["ls_requests"].append(requests)
    drop_caches()
    samples["small_reads_s"].append(direct_small_reads(s3, sizes))
    drop_caches()
    key = f"written/direct-{repetition}"
    seconds = direct_write(s3, sizes, key)
    s3.delete_object(Bucket=BUCKET, Key=key)
    samples["write_mbps"].append(sizes.write / MB / seconds)
    samples["write_close_s"].append(seconds)
    samples["write_visible_s"].append(seconds)


# --- mounts ------------------------------------------------------------------------------------------------


def run_workload(args: list[str], timeout: float, stdin: str = "") -> dict[str, float]:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.workload", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"workload {args[0]} failed: {completed.stderr.strip().splitlines()[-1:]}")
    result: dict[str, float] = json.loads(completed.stdout)
    return result


@dataclass(frozen=True)
class Setting:
    """What every measurement runs against."""

    server: S3rver
    proxy: CountingProxy
    s3: Any
    sizes: Sizes
    profile_dir: Path | None
    tree: tree.Tree


def measure_mounted(
    system: str, setting: Setting, samples: dict[str, list[float]], repetition: int, failed: set[str]
) -> list[str]:
    """Every row on a fresh mount of `system`; what failed of the tool rows (`failed` gets their metrics).

    Any other row that fails raises, and ends the system's measurements.
    """

    @contextlib.contextmanager
    def cold_mount(
        workload: str, endpoint_url: str = setting.server.endpoint_url, tools: bool = False
    ) -> Iterator[Mount]:
        drop_caches()
        with contextlib.ExitStack() as stack:
            workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix=f"s3csi-bench-{system}-"))
            mount = stack.enter_context(Mount(system, BUCKET, endpoint_url, Path(workdir), tools=tools))
            if setting.profile_dir is not None and system == report.S3CSI:
                output = setting.profile_dir / f"{system}-{workload}-{repetition + 1}.txt"
                stack.enter_context(Profiler(mount.process.pid, output))
            yield mount

    proxy, s3, sizes = setting.proxy, setting.s3, setting.sizes
    with cold_mount("read") as mount:
        cpu_before = cpu_seconds(mount.process.pid)
        result = run_workload(["read", str(mount.mountpoint / SEQ_KEY)], READ_TIMEOUT)
        samples["read_cpu_s"].append(cpu_seconds(mount.process.pid) - cpu_before)
        samples["rss_mib"].append(mount.rss.stop())
        _expect(result["bytes"] == sizes.sequential, f"{system} read {result['bytes']:.0f} bytes")
        samples["seq_read_mbps"].append(result["bytes"] / MB / result["seconds"])

    with cold_mount("first-byte") as mount:
        result = run_workload(["first-byte", str(mount.mountpoint / FIRST_BYTE_KEY)], STEP_TIMEOUT)
        samples["ttfb_ms"].append(result["seconds"] * 1000)

    with cold_mount("ls", proxy.endpoint_url) as mount:
        proxy.reset()
        started = time.perf_counter()
        listing = subprocess.run(
            ["ls", "-l", str(mount.mountpoint / SMALL_PREFIX)],
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
            check=False,
        )
        seconds = time.perf_counter() - started
        requests = proxy.requests()
        entries = len(listing.stdout.splitlines()) - 1  # the first line is "total N"
        _expect(
            listing.returncode == 0 and entries == sizes.small_count,
            f"{system} ls -l listed {entries} entries",
        )
        samples["ls_s"].append(seconds)
        samples["ls_requests"].append(len(requests))

    with cold_mount("small-reads") as mount:
        result = run_workload(
            ["small-reads", str(mount.mountpoint)], STEP_TIMEOUT, "\n".join(small_names(sizes))
        )
        _expect(
            result["bytes"] == sizes.small_count * sizes.small_size,
            f"{system} small reads: {result['bytes']:.0f} bytes",
        )
        samples["small_reads_s"].append(result["seconds"])

    key = f"written-{system}-{repetition}"
    with cold_mount("write") as mount:
        started_at = time.time()
        result = run_workload(["write", str(mount.mountpoint / key), str(sizes.write)], STEP_TIMEOUT)
        visible_s = wait_visible(s3, key, sizes.write) - started_at
    s3.delete_object(Bucket=BUCKET, Key=key)
    samples["write_mbps"].append(sizes.write / MB / visible_s)
    samples["write_close_s"].append(result["seconds"])
    samples["write_visible_s"].append(visible_s)

    errors = []
    tools = (("tar", "tar_s", tree.tar_argv), ("rsync", "rsync_s", tree.rsync_argv))
    for name, key, argv in tools:
        if key in failed:
            continue
        prefix = f"{name}-{system}-{repetition}/"
        try:
            with cold_mount(name, tools=True) as mount:
                destination = mount.mountpoint / prefix.rstrip("/")
                if name == "tar":
                    destination.mkdir()  # tar -C wants it; rsync makes its own
                timing = tree.measure(argv(setting.tree, destination), s3, BUCKET, prefix, setting.tree)
            samples[key].append(timing.in_s3_s)
            samples[f"{name}_exit_s"].append(timing.exited_s)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
            failed.update(report.TOOL_METRICS[key])
            errors.append(f"{system}, {name}: {error}")
            print(f"{system}, {name}: FAILED: {error}", file=sys.stderr)
        finally:
            tree.delete_prefix(s3, BUCKET, prefix)
    return errors


def wait_visible(s3: Any, key: str, size: int) -> float:
    """Polls HEAD until the object has its full size; the wall-clock time it was first seen."""
    deadline = time.monotonic() + STEP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if s3.head_object(Bucket=BUCKET, Key=key)["ContentLength"] == size:
                return time.time()
        except s3.exceptions.ClientError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{key} did not appear in S3 with {size} bytes within {STEP_TIMEOUT:.0f} s")


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(message)


# --- the run -----------------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    def first_line(argv: list[str]) -> str:
        try:
            output = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
            return (output.stdout or output.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "not found"

    return {
        "kernel": platform.release(),
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
        "node": first_line(["node", "--version"]),
        "s3fs": first_line(["s3fs", "--version"]),
        "rclone": first_line(["rclone", "version"]),
    }


def run(
    args: argparse.Namespace,
) -> tuple[
    Samples,
    dict[str, set[str]],
    big_directory.BigDirectory | None,
    metrics_cost.MetricsCost | None,
    list[str],
]:
    sizes = QUICK if args.quick else FULL
    samples: Samples = {system: {metric.key: [] for metric in report.METRICS} for system in args.systems}
    tool_failed: dict[str, set[str]] = {system: set() for system in args.systems}
    failures: list[str] = []
    with (
        S3rver.start() as server,
        CountingProxy(server.port) as proxy,
        tempfile.TemporaryDirectory(prefix="s3csi-bench-tree-") as tree_dir,
    ):
        s3 = s3_client(server.endpoint_url)
        print(f"s3rver on {server.endpoint_url}; uploading the data set", file=sys.stderr)
        upload_dataset(s3, sizes)
        files = tree.build(Path(tree_dir))
        failed: set[str] = set()
        # Repetitions outermost: on a noisy machine every system then sees the same spells of load.
        for repetition in range(args.repetitions):
            for system in [system for system in args.systems if system not in failed]:
                print(f"{system}: repetition {repetition + 1}/{args.repetitions}", file=sys.stderr)
                try:
                    if system == report.DIRECT:
                        measure_direct(s3, sizes, samples[system], repetition)
                    else:
                        setting = Setting(server, proxy, s3, sizes, args.profile, files)
                        failures += measure_mounted(
                            system, setting, samples[system], repetition, tool_failed[system]
                        )
                except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
                    failed.add(system)
                    failures.append(f"{system}: {error}")
                    print(f"{system}: FAILED: {error}", file=sys.stderr)
        cost = None
        if report.S3CSI in args.systems and args.metrics_cost:
            print(f"s3csi: metrics off and on, {args.metrics_cost} pairs", file=sys.stderr)
            try:
                cost = metrics_cost.measure(
                    endpoint_url=server.endpoint_url,
                    bucket=BUCKET,
                    seq_key=SEQ_KEY,
                    seq_size=sizes.sequential,
                    small_names=small_names(sizes),
                    small_size=sizes.small_size,
                    pairs=args.metrics_cost,
                    run_workload=run_workload,
                    drop_caches=drop_caches,
                    timeout=READ_TIMEOUT,
                )
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
                failures.append(f"s3csi, metrics cost: {error}")
                print(f"s3csi, metrics cost: FAILED: {error}", file=sys.stderr)
    big = None
    if report.S3CSI in args.systems and args.big_directory:
        print(f"s3csi: listing a directory of {args.big_directory:,} objects", file=sys.stderr)
        try:
            big = big_directory.measure(args.big_directory)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
            failures.append(f"s3csi, big directory: {error}")
            print(f"s3csi, big directory: FAILED: {error}", file=sys.stderr)
    return samples, tool_failed, big, cost, failures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        print(
            "python -m bench: run as root (FUSE mounts and dropping the page cache need it)", file=sys.stderr
        )
        return 1
    # SIGTERM unwinds like Ctrl-C, so every mount is unmounted and the server stopped.
    signal.signal(signal.SIGTERM, _raise_exit)
    started = datetime.datetime.now(datetime.UTC)
    samples, tool_failed, big, cost, failures = run(args)
    figures = report.medians(samples)
    verdicts = report.verdicts(figures, tool_failed)
    if report.S3CSI in args.systems and args.big_directory:
        verdicts.append(big_directory.verdict(big))
    if report.S3CSI in args.systems and args.metrics_cost:
        verdicts.append(metrics_cost.verdict(cost))
    sizes = QUICK if args.quick else FULL
    machine = versions()
    print(
        f"\ns3csi file system benchmark, {started:%Y-%m-%d %H:%M} UTC, s3rver, {machine['cpus']} cores, "
        f"{'quick' if args.quick else 'full'} sizes, median of {args.repetitions}, cold mounts"
    )
    print(
        f"sequential read {sizes.sequential // MiB} MiB, first byte of {sizes.first_byte // MiB} MiB, "
        f"{sizes.small_count} x {sizes.small_size // 1024} KiB, write {sizes.write // MiB} MiB; "
        f"tar -xf and rsync -a of {tree.FILES} x {tree.FILE_SIZE // 1024} KiB in {tree.DIRECTORIES} "
        "directories; MB = 10^6 B\n"
    )
    print(report.format_table(figures, tool_failed))
    if big is not None:
        print()
        print(big_directory.format_result(big))
    if cost is not None:
        print()
        print(metrics_cost.format_result(cost))
    print()
    print(report.format_verdicts(verdicts))
    for failure in failures:
        print(f"FAILED {failure}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "started": started.isoformat(),
                    "machine": machine,
                    "sizes": asdict(sizes),
                    "repetitions": args.repetitions,
                    "samples": samples,
                    "medians": figures,
                    "verdicts": [
                        {"target": v.target, "measured": v.measured, "result": v.word} for v in verdicts
                    ],
                    "big_directory": asdict(big) if big is not None else None,
                    "metrics_cost": asdict(cost) if cost is not None else None,
                    "failures": failures,
                    "tool_failed": {system: sorted(keys) for system, keys in tool_failed.items()},
                },
                indent=2,
            )
        )
    return 1 if failures else 0


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    sys.exit(main())
