"""The read-ahead window: grows on sequential reads, resets on seeks, bounded by max_parts."""

from __future__ import annotations

import pytest

from s3csi.fs.prefetch import PrefetchPolicy, PrefetchWindow

PART = 100


def reads(window: PrefetchWindow, calls: list[tuple[int, int]], size: int) -> list[range]:
    return [window.on_read(offset, length, size) for offset, length in calls]


def test_sequential_reads_double_the_window_up_to_the_bound() -> None:
    window = PrefetchWindow(PrefetchPolicy(PART, max_parts=8))
    wanted = reads(window, [(0, 50), (50, 50), (100, 50), (200, 50), (300, 50), (400, 50)], size=10_000)
    assert wanted == [range(0, 1), range(0, 2), range(1, 5), range(2, 10), range(3, 11), range(4, 12)]


def test_a_seek_resets_the_window() -> None:
    window = PrefetchWindow(PrefetchPolicy(PART, max_parts=8))
    reads(window, [(0, 50), (50, 50), (100, 50)], size=10_000)
    assert window.on_read(5_000, 10, 10_000) == range(50, 51)
    assert window.window == 1
    assert window.on_read(5_010, 10, 10_000) == range(50, 52)


def test_a_late_concurrent_read_does_not_count_as_a_seek() -> None:
    window = PrefetchWindow(PrefetchPolicy(PART, max_parts=8))
    reads(window, [(0, 50), (50, 50), (100, 50), (200, 50)], size=10_000)
    grown = window.window
    window.on_read(150, 50, 10_000)  # the kernel's read-ahead request for part 1 arrives after part 2's
    assert window.window == grown


@pytest.mark.parametrize(
    ("offset", "length", "size", "expected"),
    [
        (0, 10, 0, range(0)),  # empty object
        (500, 10, 400, range(0)),  # past the end
        (350, 100, 400, range(3, 4)),  # clipped to the last part
        (90, 20, 10_000, range(0, 2)),  # a read across a part boundary needs both parts
    ],
)
def test_edges(offset: int, length: int, size: int, expected: range) -> None:
    assert PrefetchWindow(PrefetchPolicy(PART, max_parts=8)).on_read(offset, length, size) == expected


def test_the_window_never_passes_the_end_of_the_object() -> None:
    window = PrefetchWindow(PrefetchPolicy(PART, max_parts=64))
    for offset in range(0, 1_000, 50):
        assert window.on_read(offset, 50, 1_000).stop <= 10


@pytest.mark.parametrize(
    ("part_size", "max_parts"), [(8 << 20, 8), (64 << 20, 2), (1 << 20, 64), (256 << 20, 2)]
)
def test_memory_budget(part_size: int, max_parts: int) -> None:
    assert PrefetchPolicy.for_part_size(part_size).max_parts == max_parts


def test_a_full_window_holds_the_ready_parts_past_it() -> None:
    window = PrefetchWindow(PrefetchPolicy(PART, max_parts=4, ready_parts=2))
    wanted = reads(window, [(0, 50), (50, 50), (100, 50), (200, 50), (300, 50)], size=10_000)
    # The window grows 1, 2, 4; once it is full (4), two more parts are held past it.
    assert wanted == [range(0, 1), range(0, 2), range(1, 7), range(2, 8), range(3, 9)]
    assert window.on_read(5_000, 10, 10_000) == range(50, 51)  # a seek holds no ready parts


@pytest.mark.parametrize(
    ("part_size", "ready_parts", "max_held"),
    [(8 << 20, 4, 12), (1 << 20, 32, 96), (16 << 20, 2, 6), (64 << 20, 0, 2), (256 << 20, 0, 2)],
)
def test_ready_parts_are_half_the_budget_again(part_size: int, ready_parts: int, max_held: int) -> None:
    policy = PrefetchPolicy.for_part_size(part_size)
    assert (policy.ready_parts, policy.max_held) == (ready_parts, max_held)
