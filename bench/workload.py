"""File workloads run in a child process (`python -m bench.workload KIND ...`), one JSON line of results.

A child process, so that a mounter that hangs cannot hang the benchmark: the parent kills the child and
lazily unmounts after a timeout.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

BLOCK = 1024 * 1024


def sequential_read(path: Path) -> dict[str, float]:
    buffer = bytearray(BLOCK)
    total = 0
    started = time.perf_counter()
    with open(path, "rb", buffering=0) as file:
        while count := file.readinto(buffer):
            total += count
    return {"seconds": time.perf_counter() - started, "bytes": total}


def first_byte(path: Path) -> dict[str, float]:
    started = time.perf_counter()
    with open(path, "rb", buffering=0) as file:
        data = file.read(1)
        seconds = time.perf_counter() - started
    return {"seconds": seconds, "bytes": len(data)}


def small_reads(directory: Path, names: list[str]) -> dict[str, float]:
    total = 0
    started = time.perf_counter()
    for name in names:
        with open(directory / name, "rb", buffering=0) as file:
            total += len(file.read())
    return {"seconds": time.perf_counter() - started, "bytes": total}


def write(path: Path, size: int) -> dict[str, float]:
    # Random data, so no layer can shortcut it; one block repeated keeps the generator out of the timing.
    block = os.urandom(BLOCK)
    started = time.perf_counter()
    with open(path, "wb", buffering=0) as file:
        for _ in range(size // BLOCK):
            file.write(block)
    return {"seconds": time.perf_counter() - started, "bytes": size}


def main(argv: list[str]) -> int:
    kind, path = argv[0], Path(argv[1])
    if kind == "read":
        result = sequential_read(path)
    elif kind == "first-byte":
        result = first_byte(path)
    elif kind == "small-reads":
        result = small_reads(path, sys.stdin.read().split())
    elif kind == "write":
        result = write(path, int(argv[2]))
    else:
        print(f"unknown workload {kind!r}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
