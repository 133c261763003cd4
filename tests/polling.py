"""The one way tests wait for something that happens on its own (a process exits, a mount appears, a cache
fills): poll a condition until it holds or a deadline passes.

Never sleep a fixed time and then assert: that passes or fails with the machine's load. Wait on an event
where the code under test gives one; otherwise poll with :func:`wait_until` (or :func:`wait_until_async`
inside an event loop) and assert on what it returns::

    assert wait_until(lambda: not node.leftovers()), node.leftovers()

The deadline only bounds how long a broken test hangs; it is generous, and never a timing assertion.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

TIMEOUT_S = 30.0
INTERVAL_S = 0.05


def wait_until(condition: Callable[[], T], *, within: float = TIMEOUT_S, interval: float = INTERVAL_S) -> T:
    """Call ``condition`` until it returns a true value, and return that value; at the deadline, return
    its last (false) value, for the caller to assert with a message saying what was awaited."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


async def wait_until_async(
    condition: Callable[[], T | Awaitable[T]], *, within: float = TIMEOUT_S, interval: float = INTERVAL_S
) -> T:
    """:func:`wait_until` inside an event loop: the loop runs between calls; ``condition`` may be async."""
    deadline = time.monotonic() + within
    while True:
        called = condition()
        value: T = await called if inspect.isawaitable(called) else called
        if value or time.monotonic() >= deadline:
            return value
        await asyncio.sleep(interval)
