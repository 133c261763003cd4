"""The allocator thresholds of a mount process: parts from the heap, a read-ahead window of freed
parts kept there."""

from __future__ import annotations

import pytest

from s3csi.fs.allocator import (
    GLIBC_MAX_MMAP_THRESHOLD,
    MAX_THRESHOLD,
    MallocThresholds,
    malloc_thresholds,
    worth_releasing,
)
from s3csi.fs.prefetch import PrefetchPolicy

MiB = 1024 * 1024
GiB = 1024 * MiB


@pytest.mark.parametrize(
    ("part_size", "expected"),
    [
        # The default: 8 parts of 8 MiB in the window and 4 ready, 192 MiB of freed parts kept.
        (8 * MiB, MallocThresholds(mmap=32 * MiB, trim=192 * MiB)),
        # Small parts: the window is still 64 MiB, the ready parts 32 MiB.
        (1 * MiB, MallocThresholds(mmap=32 * MiB, trim=192 * MiB)),
        # Parts beyond the budget: the window holds two of them.
        (48 * MiB, MallocThresholds(mmap=32 * MiB, trim=192 * MiB)),
        # Five-GiB parts: clipped to what mallopt's C int holds.
        (5 * GiB, MallocThresholds(mmap=32 * MiB, trim=MAX_THRESHOLD)),
    ],
)
def test_thresholds_follow_the_read_ahead_window(part_size: int, expected: MallocThresholds) -> None:
    assert malloc_thresholds(PrefetchPolicy.for_part_size(part_size)) == expected


def test_mmap_threshold_is_the_largest_glibc_accepts() -> None:
    assert GLIBC_MAX_MMAP_THRESHOLD == 4 * 1024 * 1024 * 8  # DEFAULT_MMAP_THRESHOLD_MAX on 64-bit


@pytest.mark.parametrize(
    ("parts_fetched", "readers_open", "expected"),
    [
        (0, 0, False),  # opened, never read
        (1, 0, False),  # a small file: one part
        (2, 0, True),  # streamed, nothing else reading
        (64, 0, True),
        (64, 1, False),  # another file is being read: it reuses the freed parts
        (2, 5, False),
    ],
)
def test_freed_parts_go_back_only_after_streaming_and_no_other_read(
    parts_fetched: int, readers_open: int, expected: bool
) -> None:
    assert worth_releasing(parts_fetched, readers_open) is expected
