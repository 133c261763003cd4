"""RepeatLimiter: one line per cause per interval, with the count of the repeats it dropped."""

from __future__ import annotations

import logging

import pytest

from s3csi.log_limit import RepeatLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("reports", "admitted"),
    [
        # (time offset, cause) → what admit() answers: None (dropped) or the repeats dropped before it.
        ([(0, "a")], [0]),
        ([(0, "a"), (1, "a"), (59.9, "a")], [0, None, None]),
        ([(0, "a"), (1, "a"), (2, "a"), (60, "a")], [0, None, None, 2]),
        ([(0, "a"), (61, "a")], [0, 0]),
        ([(0, "a"), (1, "b"), (2, "a"), (3, "b")], [0, 0, None, None]),
        # The interval counts from the line that was logged, not from the last repeat.
        ([(0, "a"), (59, "a"), (60, "a"), (100, "a"), (120, "a")], [0, None, 1, None, 1]),
    ],
)
def test_admit(reports: list[tuple[float, str]], admitted: list[int | None]) -> None:
    clock = Clock()
    limiter = RepeatLimiter(60.0, clock=clock)
    answers = []
    for offset, cause in reports:
        clock.now = 1000.0 + offset
        answers.append(limiter.admit(cause))
    assert answers == admitted


def test_memory_is_bounded_by_forgetting_the_oldest_cause() -> None:
    clock = Clock()
    limiter = RepeatLimiter(60.0, clock=clock, max_causes=2)
    assert [limiter.admit(c) for c in ("a", "b", "c")] == [0, 0, 0]
    assert limiter.admit("a") == 0  # forgotten, so logged again
    assert limiter.admit("c") is None


def test_log_writes_one_line_per_cause_and_counts_the_dropped(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    limiter = RepeatLimiter(60.0, clock=clock)
    logger = logging.getLogger("test.log_limit")
    with caplog.at_level(logging.WARNING, logger="test.log_limit"):
        for call in range(100):
            limiter.log(logger, logging.WARNING, "creds", "read %d: no usable AWS credentials", call)
        clock.now += 60
        limiter.log(logger, logging.WARNING, "creds", "read %d: no usable AWS credentials", 100)
    assert [r.getMessage() for r in caplog.records] == [
        "read 0: no usable AWS credentials",
        "read 100: no usable AWS credentials (and 99 more times since it was last logged)",
    ]
