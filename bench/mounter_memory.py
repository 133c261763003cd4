"""`python -m bench.mounter_memory`: the memory a Mountpoint Pod needs, measured on `s3csi mount`.

The Mountpoint Pod's process (`s3csi mounter`) serves its FUSE session with the same file system code,
in-process, as `s3csi mount --foreground` does, so the figures of one mount are the figures of one Mountpoint
Pod: its resident set idle (mounted, nothing read yet, then again after the read) and its peak (VmHWM) during
a cold sequential read of one large object. The Mountpoint Pod's memory request and limit defaults
(podmounter/podspec.py, docs/kubernetes.md) come from these figures. Against s3rver, as `python -m bench`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import boto3
from botocore.config import Config

from bench.mounts import Mount, cpu_seconds
from bench.servers import ACCESS_KEY, REGION, SECRET_KEY, S3rver

MiB = 1024 * 1024
BUCKET = "memory"
KEY = "large"
IDLE_SETTLE_S = 2.0
READ_CHUNK = MiB


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _drop_caches() -> None:
    # A cold read: the page cache would otherwise answer without the mounter.
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def measure(server: S3rver, size: int, workdir: Path) -> tuple[float, float, float, float, float]:
    """Of one fresh mount: idle RSS, peak RSS during the read, RSS after the read (MiB); the read's
    throughput (MB/s) and the CPU the mounter used during it (CPU seconds / wall seconds, in cores)."""
    _drop_caches()
    with Mount("s3csi", BUCKET, server.endpoint_url, workdir) as mount:
        time.sleep(IDLE_SETTLE_S)  # a measurement, not a test: let start-up allocations settle
        idle = _rss_kib(mount.process.pid) / 1024
        read = 0
        cpu_before, started = cpu_seconds(mount.process.pid), time.monotonic()
        with open(mount.mountpoint / KEY, "rb", buffering=0) as handle:
            while chunk := handle.read(READ_CHUNK):
                read += len(chunk)
        elapsed = time.monotonic() - started
        cores = (cpu_seconds(mount.process.pid) - cpu_before) / elapsed
        if read != size:
            raise RuntimeError(f"read {read} bytes of {size}")
        peak = mount.rss.stop()
        time.sleep(IDLE_SETTLE_S)
        after = _rss_kib(mount.process.pid) / 1024
    return idle, peak, after, size / elapsed / 1e6, cores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mounter_memory", description=__doc__)
    parser.add_argument("--size-mib", type=int, default=512, help="size of the object read (MiB)")
    parser.add_argument("--rounds", type=int, default=3, help="fresh mounts measured")
    args = parser.parse_args(argv)
    size = args.size_mib * MiB
    with S3rver.start() as server, tempfile.TemporaryDirectory(prefix="s3csi-bench-memory-") as tmp:
        s3 = boto3.client(
            "s3",
            endpoint_url=server.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}),
        )
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=KEY, Body=bytes(range(256)) * (size // 256))
        rows = [measure(server, size, Path(tmp) / f"round-{i}") for i in range(args.rounds)]
    print(f"s3csi mount, {args.size_mib} MiB sequential read, {args.rounds} fresh mounts:")
    names = (
        "idle RSS (MiB)",
        "peak RSS in read (MiB)",
        "RSS after read (MiB)",
        "read (MB/s)",
        "CPU in read (cores)",
    )
    for name, column in zip(names, zip(*rows, strict=True), strict=True):
        values = " / ".join(f"{value:.2f}" for value in column)
        print(f"  {name:24} median {statistics.median(column):7.2f}   ({values})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
