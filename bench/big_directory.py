"""A directory of 100,000 objects listed through ``s3csi mount``: how long, and how much memory above idle.

    /opt/s3csi/dev-venv/bin/python -m bench.big_directory [--count 100000] [--json FILE]

Also part of ``python -m bench`` (``--big-directory N``, 0 to skip). One cold mount of a stand-in S3
endpoint that holds the directory (``bench/listing_server.py``: s3rver and moto take minutes to create and
to list that many keys). The mounter's resident set is read once it is mounted and idle; its peak
(``VmHWM``) is reset to the current size (``echo 5 > /proc/PID/clear_refs``) before each listing and
read after it:

1. ``os.scandir`` of the directory, counted, in a child process (a fresh open: the mount lists S3),
   and how long its first entry took (one listing page, as the mount streams);
2. ``ls -f`` of it (another open: listed again, the kernel still holding the first listing's entries);
3. the kernel's caches dropped (``echo 2 > /proc/sys/vm/drop_caches``): it forgets the entries and the
   mount's inode table lets go of them; then ``os.scandir`` again. Its peak shows that listing after
   listing reuses the memory rather than adding to it (the resident set itself does not shrink when
   the table does: the mount keeps freed memory for its reads, see ``fs/allocator.py``).

Figures in MiB above the idle mount; the goal is at most 64 (``GOAL_MIB``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from bench import report
from bench.mounts import Mount, _descendants
from bench.servers import free_port

COUNT = 100_000
BUCKET = "bench-big"
PREFIX = "big/"
GOAL_MIB = 64
SERVER_TIMEOUT = 30.0
LIST_TIMEOUT = 600.0
# After dropping the kernel's caches: how long to wait for its FORGETs to reach the mount.
FORGET_SETTLE = 2.0
# Prints the number of entries and the seconds until the first one came.
SCANDIR = """import os, sys, time
started = time.perf_counter()
with os.scandir(sys.argv[1]) as entries:
    first = next(entries, None)
    first_s = time.perf_counter() - started
    print(sum(1 for _ in entries) + (first is not None), first_s)
"""


@dataclass(frozen=True)
class BigDirectory:
    count: int
    idle_rss_mib: float
    scandir_s: float
    scandir_first_entry_s: float
    scandir_peak_mib: float  # above idle
    ls_s: float
    ls_peak_mib: float  # above idle
    after_mib: float  # resident above idle after both listings
    relist_s: float  # os.scandir once the kernel forgot the entries
    relist_peak_mib: float  # above idle

    @property
    def peak_mib(self) -> float:
        return max(self.scandir_peak_mib, self.ls_peak_mib, self.relist_peak_mib)


class ListingServer:
    """``python -m bench.listing_server`` in a child process, stopped on exit."""

    def __init__(self, count: int) -> None:
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "bench.listing_server", "--port", str(self.port)]
        argv += ["--bucket", BUCKET, "--prefix", PREFIX, "--count", str(count)]
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            cwd=Path(__file__).resolve().parent.parent,
            start_new_session=True,
        )
        ready = self.process.stdout.readline() if self.process.stdout is not None else b""
        if ready.strip() != b"ready":
            self.stop()
            raise RuntimeError(f"the listing server did not start (exit status {self.process.returncode})")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=SERVER_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> ListingServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _status_kib(pid: int, field: str) -> int:
    """``field`` (VmRSS, VmHWM) of a process and its live descendants, summed, in KiB."""
    total = 0
    for member in _descendants(pid):
        try:
            lines = Path(f"/proc/{member}/status").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in lines if line.startswith(f"{field}:"))
    return total


def _reset_peak(pid: int) -> None:
    for member in _descendants(pid):
        try:
            Path(f"/proc/{member}/clear_refs").write_text("5\n")
        except OSError:
            continue


def _listed(argv: list[str], count: int) -> tuple[float, list[str]]:
    """Seconds the listing command took, and what it printed after the count."""
    started = time.perf_counter()
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=LIST_TIMEOUT, check=False)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"{argv[-2:]} failed: {completed.stderr.strip().splitlines()[-1:]}")
    found, *rest = completed.stdout.split()
    if int(found) != count:
        raise RuntimeError(f"{' '.join(argv[:3])} listed {found} entries, not {count}")
    return seconds, rest


def measure(count: int) -> BigDirectory:
    with (
        ListingServer(count) as server,
        tempfile.TemporaryDirectory(prefix="s3csi-bench-big-") as workdir,
        Mount("s3csi", BUCKET, server.endpoint_url, Path(workdir)) as mount,
    ):
        pid = mount.process.pid
        directory = mount.mountpoint / PREFIX.rstrip("/")
        if not directory.is_dir():
            raise RuntimeError(f"{directory} is not a directory through the mount")
        time.sleep(1.0)  # let start-up settle before taking the idle figure
        idle = _status_kib(pid, "VmRSS")

        def peak_above_idle(argv: list[str]) -> tuple[float, float, list[str]]:
            _reset_peak(pid)
            seconds, printed = _listed(argv, count)
            return seconds, (_status_kib(pid, "VmHWM") - idle) / 1024, printed

        python = [sys.executable, "-c", SCANDIR, str(directory)]
        scandir_s, scandir_peak, (first_entry,) = peak_above_idle(python)
        # ls -f prints . and .. too.
        ls = ["sh", "-c", 'ls -f "$1" | grep -vcxE "\\.|\\.\\."', "ls", str(directory)]
        ls_s, ls_peak, _ = peak_above_idle(ls)
        after = (_status_kib(pid, "VmRSS") - idle) / 1024
        Path("/proc/sys/vm/drop_caches").write_text("2\n")
        time.sleep(FORGET_SETTLE)
        relist_s, relist_peak, _ = peak_above_idle(python)
        return BigDirectory(
            count=count,
            idle_rss_mib=idle / 1024,
            scandir_s=scandir_s,
            scandir_first_entry_s=float(first_entry),
            scandir_peak_mib=scandir_peak,
            ls_s=ls_s,
            ls_peak_mib=ls_peak,
            after_mib=after,
            relist_s=relist_s,
            relist_peak_mib=relist_peak,
        )


def verdict(result: BigDirectory | None) -> report.Verdict:
    target = f"listing a {COUNT:,}-object directory: peak <= {GOAL_MIB} MiB above idle"
    if result is None:
        return report.Verdict(target, "not measured", None)
    shown = f"{result.peak_mib:.0f} MiB ({result.count:,} objects)"
    return report.Verdict(target, shown, result.peak_mib <= GOAL_MIB)


def format_result(result: BigDirectory) -> str:
    rows = [
        ("idle mount, resident (MiB)", f"{result.idle_rss_mib:.0f}"),
        ("os.scandir: time (s)", f"{result.scandir_s:.2f}"),
        ("os.scandir: first entry after (s)", f"{result.scandir_first_entry_s:.2f}"),
        ("os.scandir: peak above idle (MiB)", f"{result.scandir_peak_mib:.1f}"),
        ("ls -f: time (s)", f"{result.ls_s:.2f}"),
        ("ls -f: peak above idle (MiB)", f"{result.ls_peak_mib:.1f}"),
        ("after both, resident above idle (MiB)", f"{result.after_mib:.1f}"),
        ("os.scandir after the kernel forgot: time (s)", f"{result.relist_s:.2f}"),
        ("os.scandir after the kernel forgot: peak (MiB)", f"{result.relist_peak_mib:.1f}"),
    ]
    width = max(len(label) for label, _ in rows)
    title = f"s3csi: a directory of {result.count:,} objects listed through the mount"
    return "\n".join([title, *(f"  {label.ljust(width)}  {value:>7}" for label, value in rows)])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.big_directory", description=__doc__)
    parser.add_argument(
        "--count", type=int, default=COUNT, help=f"objects in the directory (default {COUNT})"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    if os.geteuid() != 0:
        print("python -m bench.big_directory: run as root (FUSE mounts need it)", file=sys.stderr)
        return 1
    result = measure(args.count)
    print(format_result(result))
    print(report.format_verdicts([verdict(result)]))
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2))
    return 0 if result.peak_mib <= GOAL_MIB else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
