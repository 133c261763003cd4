"""The back-off of remounting a crash-looping Mountpoint Pod's session (podmounter/recovery.py)."""

from __future__ import annotations

import pytest

from s3csi.podmounter.recovery import RecoverySettings, crashes_in_a_row, recovery_delay

SETTINGS = RecoverySettings(crash_loop_window_s=10.0, first_delay_s=1.0, max_delay_s=60.0)


@pytest.mark.parametrize(
    ("previous", "served_s", "expected"),
    [
        (0, float("inf"), 1),  # the first crash of a session nobody counted yet
        (0, 3.0, 1),
        (1, 3.0, 2),  # died within the window of its remount: the loop goes on
        (4, 9.99, 5),
        (4, 10.0, 1),  # served the whole window: a new count starts
        (7, 3600.0, 1),
    ],
)
def test_crashes_in_a_row(previous: int, served_s: float, expected: int) -> None:
    assert crashes_in_a_row(previous, served_s, SETTINGS) == expected


def test_no_window_makes_every_crash_a_first_one() -> None:
    assert crashes_in_a_row(5, 0.01, RecoverySettings(crash_loop_window_s=0.0)) == 1


@pytest.mark.parametrize(
    ("crashes", "delay"),
    [(0, 0.0), (1, 0.0), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (7, 32.0), (8, 60.0), (50, 60.0)],
)
def test_recovery_delay_doubles_up_to_the_cap(crashes: int, delay: float) -> None:
    assert recovery_delay(crashes, SETTINGS) == delay


@pytest.mark.parametrize(
    "settings",
    [
        {"crash_loop_window_s": -1.0},
        {"first_delay_s": 0.0},
        {"first_delay_s": 5.0, "max_delay_s": 1.0},
    ],
)
def test_invalid_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="invalid recovery settings"):
        RecoverySettings(**settings)
