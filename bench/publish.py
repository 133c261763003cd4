"""Publish latency and read throughput through Mountpoint Pods: ``python -m bench.publish``.

Against ``s3csi driver --mode all`` (local runtime) over its CSI socket, as kubelet calls it:

- first publish: NodePublishVolume of a key no Mountpoint Pod serves yet (a new mounter process,
  /dev/fuse mount, fd hand-over, bucket check, bind) — each round with another fsGroup, retired after;
- joining publish: NodePublishVolume that joins a running Mountpoint Pod (one bind);
- sequential read of one large object through a published target, against ``s3csi mount`` of the
  same bucket alone, in the same run on the same server (the ratio is the cost of the hand-over
  architecture; target ≥ 0.95).

Medians of ``--rounds`` (20) for latencies, of ``--reads`` (6, alternating) for throughput. Needs
root. The S3 server is s3rver when ``make bench`` installed it (moto serves ranged GETs too slowly to
show a mounter's own cost), else the embedded moto server.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from bench.mounts import Mount
from bench.servers import ACCESS_KEY, DEFAULT_S3RVER_JS, REGION, SECRET_KEY, S3rver
from s3csi.demo.local_node import DemoNode
from s3csi.demo.s3server import EmbeddedS3Server

MiB = 1024 * 1024
BUCKET = "bench-publish"
KEY = "sequential.bin"
READ_CHUNK = MiB


@dataclass(frozen=True)
class Server:
    endpoint_url: str
    region: str
    access_key_id: str
    secret_access_key: str
    name: str

    def client_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }


@contextlib.contextmanager
def s3_server() -> Iterator[Server]:
    if Path(os.environ.get("S3RVER_JS", DEFAULT_S3RVER_JS)).is_file():
        with S3rver.start() as s3rver:
            yield Server(s3rver.endpoint_url, REGION, ACCESS_KEY, SECRET_KEY, "s3rver")
    else:
        with EmbeddedS3Server.start() as moto:
            yield Server(moto.endpoint_url, moto.region, moto.access_key_id, moto.secret_access_key, "moto")


def upload(server: Server, size: int) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        region_name=server.region,
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        config=Config(s3={"addressing_style": "path"}),
    )
    s3.create_bucket(Bucket=BUCKET)
    block = os.urandom(MiB)
    with tempfile.TemporaryFile() as data:
        for _ in range(size // MiB):
            data.write(block)
        data.seek(0)
        s3.upload_fileobj(data, BUCKET, KEY, Config=TransferConfig(multipart_chunksize=8 * MiB))


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def read_throughput(path: Path) -> float:
    """MiB/s of one sequential read of ``path`` from a cold page cache."""
    drop_caches()
    total = 0
    started = time.perf_counter()
    with open(path, "rb", buffering=0) as file:
        while chunk := file.read(READ_CHUNK):
            total += len(chunk)
    return total / MiB / (time.perf_counter() - started)


def publish_timed(node: DemoNode, target: str, fs_group: int) -> float:
    started = time.perf_counter()
    node.publish(
        volume_id=BUCKET,
        target=target,
        volume_context={"bucketName": BUCKET},
        mount_flags=(),
        fs_group=fs_group,
        read_only=False,
        pod=("bench", Path(target).parts[-5], Path(target).parts[-5]),
    )
    return time.perf_counter() - started


def first_publishes(node: DemoNode, rounds: int) -> list[float]:
    samples = []
    for index in range(rounds):
        target = node.target_path(f"first-{index}", "pv")
        samples.append(publish_timed(node, target, 5000 + index))  # a new fsGroup: a new Mountpoint Pod
        node.unpublish(BUCKET, target)
    return samples


def joining_publishes(node: DemoNode, rounds: int) -> list[float]:
    anchor = node.target_path("anchor", "pv")
    publish_timed(node, anchor, 4000)
    targets = [node.target_path(f"join-{index}", "pv") for index in range(rounds)]
    samples = [publish_timed(node, target, 4000) for target in targets]
    for target in [anchor, *targets]:
        node.unpublish(BUCKET, target)
    return samples


def throughputs(node: DemoNode, server: Server, reads: int, workdir: Path) -> tuple[list[float], list[float]]:
    """Alternating which goes first, so neither kind always meets the server (or the noisy machine)
    in the same state."""
    published: list[float] = []
    alone: list[float] = []

    def through_target() -> None:
        target = node.target_path("reader", "pv")
        publish_timed(node, target, 4000)
        try:
            published.append(read_throughput(Path(target) / KEY))
        finally:
            node.unpublish(BUCKET, target)

    def through_mount_alone() -> None:
        with Mount("s3csi", BUCKET, server.endpoint_url, workdir) as mount:
            alone.append(read_throughput(mount.mountpoint / KEY))

    for index in range(reads):
        order = (
            (through_target, through_mount_alone) if index % 2 == 0 else (through_mount_alone, through_target)
        )
        for measure in order:
            measure()
    return published, alone


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.publish", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="publishes per latency figure (default 20)")
    parser.add_argument("--reads", type=int, default=6, help="sequential reads per mount kind (default 6)")
    parser.add_argument("--size-mib", type=int, default=256, help="size of the object read (default 256)")
    args = parser.parse_args(argv)
    for name in ("rounds", "reads", "size_mib"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench.publish: run as root (FUSE mounts, Mountpoint Pods as uid 1000)", file=sys.stderr)
        return 2
    with s3_server() as server, DemoNode(server) as node, tempfile.TemporaryDirectory() as workdir:
        upload(server, args.size_mib * MiB)
        node.start_driver()
        first = first_publishes(node, args.rounds)
        joining = joining_publishes(node, args.rounds)
        published, alone = throughputs(node, server, args.reads, Path(workdir))
        leftovers = node.leftovers()
    ratio = statistics.median(published) / statistics.median(alone)
    print(f"S3 server: {server.name}; {os.cpu_count()} CPUs; object {args.size_mib} MiB\n")
    print(f"{'measure':<44}{'median':>12}{'min':>10}{'max':>10}")
    rows = [
        (f"first publish, new Mountpoint Pod (n={len(first)})", first, 1000, "ms"),
        (f"joining publish, running Pod (n={len(joining)})", joining, 1000, "ms"),
        (f"sequential read, published target (n={len(published)})", published, 1, "MiB/s"),
        (f"sequential read, s3csi mount alone (n={len(alone)})", alone, 1, "MiB/s"),
    ]
    for label, values, scale, unit in rows:
        scaled = [v * scale for v in values]
        print(
            f"{label:<44}{statistics.median(scaled):>8.1f} {unit:<4}{min(scaled):>9.1f}{max(scaled):>10.1f}"
        )
    print(f"\nread throughput, published / mount alone: {ratio:.3f} (target >= 0.95)")
    if leftovers:
        print(f"left behind: {', '.join(leftovers)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
