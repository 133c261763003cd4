"""The everyday-tools rows: `tar -xf` of a 1,000-file archive and `rsync -a` of the same tree into a mount.

The tree is built once per run on local disk: 1,000 files of 4 KiB of random bytes in 10 directories, with
varied modes and modification times, so that both tools must set times and modes on every file (as root,
owners too: to the mount's own owner, which every mounter accepts). A row's time runs from the tool's start
until it has exited *and* every file is in S3 with its size (listed with boto3); the tool's exit is reported
too. A tool that exits non-zero, or bytes that did not arrive, fail the row with the tool's message.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DIRECTORIES = 10
FILES = 1000
FILE_SIZE = 4096
# Permission bits cycled over the files, and the directories' own; 0755 files are wider than s3csi's default
# --file-mode (0644): accepted and stored there, shown as 0644.
FILE_MODES = (0o644, 0o600, 0o640, 0o755, 0o444)
DIRECTORY_MODE = 0o755
# Modification times: one per file, a day apart from a fixed day in 2024, so none equals the extraction time.
MTIME_BASE = 1_704_067_200
MTIME_STEP = 86_400 + 17
# How many files' bytes are read back from S3 and compared after each run (every file's size is checked).
SAMPLE = 20
TOOL_TIMEOUT = 600.0
VISIBLE_TIMEOUT = 60.0
POLL_INTERVAL = 0.05


def relative_paths() -> list[str]:
    """The tree's files, e.g. ``dir-03/file-0307``, in a fixed order."""
    per_directory = FILES // DIRECTORIES
    return [
        f"dir-{directory:02d}/file-{directory * per_directory + index:04d}"
        for directory in range(DIRECTORIES)
        for index in range(per_directory)
    ]


@dataclass(frozen=True)
class Tree:
    root: Path
    archive: Path
    paths: tuple[str, ...]


def build(workdir: Path) -> Tree:
    """Writes the tree under ``workdir/tree`` and its tar archive ``workdir/tree.tar``."""
    root = workdir / "tree"
    paths = relative_paths()
    for index, relative in enumerate(paths):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(FILE_SIZE))
        path.chmod(FILE_MODES[index % len(FILE_MODES)])
        mtime = MTIME_BASE + index * MTIME_STEP
        os.utime(path, (mtime, mtime))
    for directory in range(DIRECTORIES):
        path = root / f"dir-{directory:02d}"
        path.chmod(DIRECTORY_MODE)
        mtime = MTIME_BASE - directory * MTIME_STEP
        os.utime(path, (mtime, mtime))
    archive = workdir / "tree.tar"
    subprocess.run(["tar", "-cf", str(archive), "-C", str(root), "."], check=True, timeout=TOOL_TIMEOUT)
    return Tree(root, archive, tuple(paths))


def tar_argv(tree: Tree, destination: Path) -> list[str]:
    return ["tar", "-xf", str(tree.archive), "-C", str(destination)]


def rsync_argv(tree: Tree, destination: Path) -> list[str]:
    return ["rsync", "-a", f"{tree.root}/", f"{destination}/"]


@dataclass(frozen=True)
class Timing:
    exited_s: float
    in_s3_s: float


def run_tool(argv: list[str], tool: str) -> float:
    """Runs a tool to completion; its wall time. A non-zero exit raises with the tool's last lines."""
    started = time.perf_counter()
    completed = subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        lines = (completed.stderr or completed.stdout).strip().splitlines()
        errors = len(lines)
        shown = " | ".join(lines[:2])
        raise RuntimeError(f"{tool} exited {completed.returncode} ({errors} lines on stderr: {shown})")
    return seconds


def missing(s3: Any, bucket: str, prefix: str, tree: Tree) -> list[str]:
    """The tree's files not (yet) in S3 under `prefix` with their size; directory markers are ignored."""
    sizes: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            sizes[entry["Key"][len(prefix) :]] = entry["Size"]
    return [path for path in tree.paths if sizes.get(path) != FILE_SIZE]


def measure(argv: list[str], s3: Any, bucket: str, prefix: str, tree: Tree) -> Timing:
    """Runs `argv` (which writes the tree under `prefix` of `bucket`), then waits until S3 has every file.

    The time in S3 is the start of the first listing that found every file, or the tool's exit when the first
    listing after it did (a mounter that uploads at close): generous to a mounter that uploads later.
    """
    tool = f"{argv[0]} {argv[1]}"
    started = time.perf_counter()
    exited = started + run_tool(argv, tool)
    deadline = time.perf_counter() + VISIBLE_TIMEOUT
    first = True
    while True:
        listed_at = time.perf_counter()
        absent = missing(s3, bucket, prefix, tree)
        if not absent:
            in_s3 = exited if first else listed_at
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(
                f"{tool}: {len(absent)} of {len(tree.paths)} files not in S3 with {FILE_SIZE} bytes "
                f"{VISIBLE_TIMEOUT:.0f} s after it exited (first: {absent[0]})"
            )
        first = False
        time.sleep(POLL_INTERVAL)
    compare_sample(tool, s3, bucket, prefix, tree)
    return Timing(exited - started, in_s3 - started)


def compare_sample(tool: str, s3: Any, bucket: str, prefix: str, tree: Tree) -> None:
    """Reads every (len/SAMPLE)-th file back from S3 and compares it with the local tree, byte for byte."""
    for relative in tree.paths[:: max(1, len(tree.paths) // SAMPLE)]:
        body = s3.get_object(Bucket=bucket, Key=prefix + relative)["Body"].read()
        if body != (tree.root / relative).read_bytes():
            raise RuntimeError(f"{tool}: {prefix}{relative} in S3 differs from the file it copied")


def delete_prefix(s3: Any, bucket: str, prefix: str) -> None:
    """Removes what a run left under `prefix`, so that later listings of the bucket cost what they did."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": entry["Key"]} for entry in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
