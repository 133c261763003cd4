"""Background tasks that nobody awaits: started with :func:`background`, so that one that dies says so.

A task's exception is only seen by whoever awaits it. A task started to run on its own (a certificate
watcher, a cache write, an abort that must survive its caller) would otherwise die in silence, or with
asyncio's "exception was never retrieved" at garbage collection, long after the fact.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


def log_death(task: asyncio.Task[Any]) -> None:
    """Done callback: log a task that ended with an exception (not one that was cancelled)."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("background task %s died", task.get_name(), exc_info=exc)


def background(coro: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
    """Start ``coro`` as a task whose death is logged. The caller keeps the task (asyncio holds only a
    weak reference to it) and may still await it."""
    task = asyncio.create_task(coro, name=name)
    task.add_done_callback(log_death)
    return task
