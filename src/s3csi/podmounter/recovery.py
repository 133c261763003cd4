"""When to remount the FUSE session of a Mountpoint Pod whose mounter died (docs/architecture.md,
"Mountpoint Pod crash recovery"): pure, so the back-off is a table in the tests.

A mounter that dies after serving a while is replaced at once: its workloads wait only for the new
mounter to start. One that dies again soon after its session was remounted is in a crash loop (a
bucket it cannot serve, a memory limit it keeps hitting): each further attempt waits twice as long as
the one before, up to a cap, so a crash loop costs a few process starts per minute, never a busy loop.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RecoverySettings:
    # Seconds: a session that dies sooner than this after it was mounted counts as a crash in a loop.
    crash_loop_window_s: float = 10.0
    # Seconds before the second attempt in a loop; each further one doubles it, up to max_delay_s.
    first_delay_s: float = 1.0
    max_delay_s: float = 60.0

    def __post_init__(self) -> None:
        if self.crash_loop_window_s < 0 or self.first_delay_s <= 0 or self.max_delay_s < self.first_delay_s:
            raise ValueError(f"invalid recovery settings: {self}")


def crashes_in_a_row(previous: int, served_s: float, settings: RecoverySettings) -> int:
    """How many crashes in a row a session that served ``served_s`` seconds ends: one more than the
    ``previous`` count when it died within the crash-loop window, else it starts a new count."""
    return previous + 1 if served_s < settings.crash_loop_window_s else 1


def recovery_delay(crashes: int, settings: RecoverySettings) -> float:
    """Seconds to wait before remounting after ``crashes`` crashes in a row (1: at once)."""
    if crashes <= 1:
        return 0.0
    return min(settings.max_delay_s, settings.first_delay_s * 2.0 ** (crashes - 2))
