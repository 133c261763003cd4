"""Benchmark of the ownership manager: how long until a volume has the pod's fsGroup.

    /opt/s3csi/dev-venv/bin/python -m bench.ownership [--files 100000] [--dir /tmp] [--rounds 3]

Builds a tree of ``--files`` files (100 per directory, 10 directories per parent) and times, on that
same tree, reset to root:root 0644/0755 between runs:

- ``chgrp -R G`` + ``chmod -R g+rwX`` (the baseline: what an operator would run by hand);
- ``set_volume_ownership`` with Always (target: within 1.5 x the baseline);
- Always again on a tree that is already right (no chown/chmod call is needed);
- OnRootMismatch on a matching root, for 1,000 files and for ``--files`` (target: < 10 ms, any size);
- the S3 route: ``s3csi mount --gid G --dir-mode 770 --file-mode 660`` gives every entry the group at
  mount time, so time-to-correct-ownership is the mount time, whatever the bucket holds (measured on
  an empty bucket and on one of 1,000 objects, embedded S3 server on 127.0.0.1).

Needs root (chgrp to any group, FUSE). Prints a table: median and best of ``--rounds`` runs (on a
shared machine the best is the cost without interference); OnRootMismatch as the median of 50 calls.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from s3csi.ownership import set_volume_ownership

FILES_PER_DIR = 100
DIRS_PER_PARENT = 10
FS_GROUP = 4321
ON_ROOT_MISMATCH_RUNS = 50
S3_OBJECTS = 1000
MOUNT_TIMEOUT = 30.0


def build_tree(root: Path, files: int) -> int:
    """``files`` empty files under root/pN/dM/fK; returns the number of entries below root."""
    entries = 0
    made = 0
    parent = 0
    while made < files:
        for leaf in range(DIRS_PER_PARENT):
            if made >= files:
                break
            directory = root / f"p{parent}" / f"d{leaf}"
            directory.mkdir(parents=True, mode=0o755)
            entries += 2 if leaf == 0 else 1
            for index in range(min(FILES_PER_DIR, files - made)):
                os.close(os.open(directory / f"f{index}", os.O_CREAT | os.O_WRONLY, 0o644))
                made += 1
                entries += 1
        parent += 1
    return entries


def reset(root: Path) -> None:
    subprocess.run(["chgrp", "-R", "0", str(root)], check=True)
    subprocess.run(["chmod", "-R", "g-w,g-s", str(root)], check=True)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def baseline(root: Path) -> None:
    subprocess.run(["chgrp", "-R", str(FS_GROUP), str(root)], check=True)
    subprocess.run(["chmod", "-R", "g+rwX", str(root)], check=True)


def always(root: Path) -> None:
    report = set_volume_ownership(str(root), FS_GROUP)
    if report.error_count:
        raise SystemExit(f"set_volume_ownership failed: {report.errors[0]}")


def on_root_mismatch_ms(root: Path) -> float:
    """Median of many calls on a root that already matches (the walk must be skipped)."""
    times = []
    for _ in range(ON_ROOT_MISMATCH_RUNS):
        started = time.perf_counter()
        report = set_volume_ownership(str(root), FS_GROUP, policy="OnRootMismatch")
        times.append(time.perf_counter() - started)
        if report.walked:
            raise SystemExit("OnRootMismatch walked a matching root")
    return statistics.median(times) * 1000


def s3_route(base: Path, rounds: int) -> list[tuple[str, str]]:
    """Rows (what, time) for ``s3csi mount --gid`` on an empty bucket and one of S3_OBJECTS objects:
    the time until the mount is there and shows the group, median of ``rounds`` mounts."""
    from s3csi.cli import COMMANDS

    if "mount" not in COMMANDS:
        return [("S3 route: `s3csi mount` is not registered in cli.COMMANDS yet", "not measured")]
    import boto3

    from s3csi.demo.s3server import EmbeddedS3Server

    rows = []
    with EmbeddedS3Server.start() as server:
        client = boto3.client(
            "s3",
            endpoint_url=server.endpoint_url,
            region_name=server.region,
            aws_access_key_id=server.access_key_id,
            aws_secret_access_key=server.secret_access_key,
        )
        for bucket, objects in [("ownership-empty", 0), ("ownership-full", S3_OBJECTS)]:
            client.create_bucket(Bucket=bucket)
            for index in range(objects):
                client.put_object(Bucket=bucket, Key=f"d{index % 10}/f{index}", Body=b"x")
            times = [
                mount_seconds(base / f"{bucket}-{n}", bucket, server.client_env()) for n in range(rounds)
            ]
            what = f"S3 route: s3csi mount --gid {FS_GROUP}, {objects:,} objects (no walk)"
            rows.append((what, f"{statistics.median(times) * 1000:.0f} ms"))
    return rows


def mount_seconds(mount_point: Path, bucket: str, s3_env: dict[str, str]) -> float:
    """Seconds from starting ``s3csi mount`` until the mount point is a mount; checks the ownership."""
    mount_point.mkdir()
    argv = [
        sys.executable, "-m", "s3csi", "mount", bucket, str(mount_point), "--foreground",
        "--gid", str(FS_GROUP), "--dir-mode", "770", "--file-mode", "660", "--allow-other",
    ]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(argv, env={**os.environ, **s3_env}, stderr=subprocess.PIPE)
    try:
        while not os.path.ismount(mount_point):
            if process.poll() is not None:
                error = process.stderr.read().decode().strip() if process.stderr else ""
                raise SystemExit(f"`s3csi mount` exited {process.returncode}: {error[-300:]}")
            if time.perf_counter() - started > MOUNT_TIMEOUT:
                raise SystemExit(f"`s3csi mount` did not mount within {MOUNT_TIMEOUT:.0f} s")
            time.sleep(0.001)
        seconds = time.perf_counter() - started
        seen = [mount_point.stat(), *(entry.stat() for entry in mount_point.iterdir())]
        wrong = [st for st in seen if (st.st_gid, st.st_mode & 0o777) != (FS_GROUP, 0o770)]
        if wrong:
            raise SystemExit(f"{mount_point}: mounted without gid {FS_GROUP} mode 770: {wrong[0]}")
        return seconds
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False, capture_output=True)
        process.terminate()
        process.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ownership", description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--dir", default="/tmp", help="where to build the trees (default /tmp)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-s3", action="store_true", help="do not measure the S3 route")
    args = parser.parse_args()
    if os.geteuid() != 0:
        parser.error("needs root: chgrp to an arbitrary group and FUSE mounts")

    base = Path(tempfile.mkdtemp(prefix="s3csi-bench-ownership-", dir=args.dir))
    try:
        fs_type = subprocess.run(
            ["findmnt", "-n", "-o", "FSTYPE", "-T", str(base)], capture_output=True, text=True, check=True
        ).stdout.split()[-1]  # the mount on top when several are stacked
        big, small = base / "big", base / "small"
        started = time.perf_counter()
        entries = build_tree(big, args.files)
        build_tree(small, 1000)
        print(f"tree: {args.files} files, {entries} entries under {base} ({fs_type}), "
              f"built in {time.perf_counter() - started:.1f} s")  # fmt: skip

        baseline_times, always_times, again_times = [], [], []
        for _ in range(args.rounds):
            reset(big)
            baseline_times.append(timed(lambda: baseline(big)))
            reset(big)
            always_times.append(timed(lambda: always(big)))
            again_times.append(timed(lambda: always(big)))
        set_volume_ownership(str(small), FS_GROUP)
        orm_small = on_root_mismatch_ms(small)
        orm_big = on_root_mismatch_ms(big)
        s3_rows = [] if args.skip_s3 else s3_route(base, args.rounds)

        base_median, base_best = statistics.median(baseline_times), min(baseline_times)
        always_median, always_best = statistics.median(always_times), min(always_times)
        rows = [
            ("chgrp -R + chmod -R g+rwX (baseline)", f"{base_median:.3f} s", f"{base_best:.3f} s", "1.00"),
            (
                "Always",
                f"{always_median:.3f} s",
                f"{always_best:.3f} s",
                f"{always_median / base_median:.2f} ({always_best / base_best:.2f})",
            ),
            (
                "Always, tree already right",
                f"{statistics.median(again_times):.3f} s",
                f"{min(again_times):.3f} s",
                "",
            ),
            ("OnRootMismatch, matching root, 1,000 files", f"{orm_small:.3f} ms", "", ""),
            (f"OnRootMismatch, matching root, {args.files:,} files", f"{orm_big:.3f} ms", "", ""),
            *((what, seconds, "", "") for what, seconds in s3_rows),
        ]
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(f"\nownership of {entries:,} entries on {fs_type}, {args.rounds} rounds, "
              f"{os.cpu_count()} CPUs, load average {load}\n")  # fmt: skip
        print(f"| {'what':<62} | {'median':>9} | {'best':>9} | {'x baseline (best)':>17} |")
        print(f"|{'-' * 64}|{'-' * 11}|{'-' * 11}|{'-' * 19}|")
        for what, median, best, ratio in rows:
            print(f"| {what:<62} | {median:>9} | {best:>9} | {ratio:>17} |")
        return 0
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
