"""glibc takes the thresholds a mount process sets: part-sized buffers then come from the heap, stay
there once freed, and go back to the kernel on release_free_memory (each case in a child process: the
test runner's allocator stays as it was)."""

from __future__ import annotations

import json
import subprocess
import sys

PROGRAM = """
import ctypes, json, os, sys
from s3csi.fs.allocator import malloc_thresholds, release_free_memory, tune_malloc
from s3csi.fs.prefetch import PrefetchPolicy

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
        "keepcost")]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
tuned = None
if sys.argv[1] == "tuned":
    tuned = tune_malloc(malloc_thresholds(PrefetchPolicy.for_part_size(8 << 20)))
mmapped_before = mallinfo2().hblks
parts = [b"\x01" * (8 << 20) for _ in range(4)]  # touched pages, unlike calloc's
mmapped_while_held = mallinfo2().hblks - mmapped_before
del parts

def resident_pages():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1])

kept, free_in_heap = resident_pages(), mallinfo2().fordblks
release_free_memory()
print(json.dumps({
    "tuned": tuned,
    "mmapped": mmapped_while_held,
    "free_in_heap": free_in_heap,
    "released_bytes": (kept - resident_pages()) * os.sysconf("SC_PAGESIZE"),
}))
"""
MiB = 1024 * 1024


def allocator_state(mode: str) -> dict[str, int | bool | None]:
    completed = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, timeout=60, check=True
    )
    state: dict[str, int | bool | None] = json.loads(completed.stdout)
    return state


def test_parts_come_from_the_heap_and_stay_there_once_freed() -> None:
    state = allocator_state("tuned")
    assert state["tuned"] is True
    assert state["mmapped"] == 0
    assert isinstance(state["free_in_heap"], int) and state["free_in_heap"] >= 32 * MiB
    # release_free_memory hands the freed parts' pages back to the kernel.
    assert isinstance(state["released_bytes"], int) and state["released_bytes"] >= 24 * MiB


def test_without_the_thresholds_glibc_mmaps_each_new_part() -> None:
    # The control: what the thresholds change.
    assert allocator_state("default")["mmapped"] == 4
