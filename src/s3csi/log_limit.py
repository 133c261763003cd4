"""Logging a failure once per cause per interval, not once per call.

A broken credentials file or an unreachable endpoint fails every system call on a mount; a line for each
would bury the one line an operator needs. :class:`RepeatLimiter` lets the first report of a cause
through, drops its repeats for ``interval_s`` seconds, and lets the next one through with the count of
what it dropped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Hashable
from typing import Any

# One line per cause per minute: an operator still sees that the failure goes on, and a mount that
# fails thousands of calls a second writes a handful of lines.
DEFAULT_INTERVAL_S = 60.0
# Causes remembered at once; the oldest are forgotten first (a forgotten cause is merely logged again).
MAX_CAUSES = 1024


class RepeatLimiter:
    """Decides which reports of a cause are logged. ``clock`` is injected by tests."""

    def __init__(
        self,
        interval_s: float = DEFAULT_INTERVAL_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_causes: int = MAX_CAUSES,
    ) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._max_causes = max_causes
        # cause → (when it was last logged, repeats dropped since), oldest logged first.
        self._causes: dict[Hashable, tuple[float, int]] = {}

    def admit(self, cause: Hashable) -> int | None:
        """None when this report must be dropped; else the number of reports of the same cause dropped
        since it was last logged (0 the first time)."""
        now = self._clock()
        seen = self._causes.get(cause)
        if seen is not None and now - seen[0] < self.interval_s:
            self._causes[cause] = (seen[0], seen[1] + 1)
            return None
        self._causes.pop(cause, None)
        while len(self._causes) >= self._max_causes:
            del self._causes[next(iter(self._causes))]
        self._causes[cause] = (now, 0)
        return 0 if seen is None else seen[1]

    def log(
        self,
        logger: logging.Logger,
        level: int,
        cause: Hashable,
        message: str,
        *args: Any,
        exc_info: bool = False,
    ) -> None:
        """``logger.log(level, message, *args)`` unless ``cause`` was logged less than an interval ago;
        a line after dropped repeats says how many."""
        dropped = self.admit(cause)
        if dropped is None:
            return
        if dropped:
            message += " (and %d more times since it was last logged)"
            args = (*args, dropped)
        logger.log(level, message, *args, exc_info=exc_info, stacklevel=2)  # the caller's line
