"""Read-ahead across the small files of a directory.

Programs often read a directory's small files one after another in name order (``cat dir/*``, a build
reading its sources, a loader walking a data set): each open then waits for its own GET, one round
trip per file. When a small file is opened right after the one before it in the directory's last
complete listing, the next ``SIBLINGS_AHEAD`` small files are fetched in parallel, so that their opens
find the bytes on their way.

Fetched bytes serve an open only while the object's ETag is the one the mount knew when it fetched
them, and for at most ``--metadata-ttl`` after (how long the mount trusts what it knows of an object
anyway); writing, renaming or deleting a file through the mount drops them. A bounded number of objects
is held, each at most one read (1 MiB).
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from s3csi.fs.reader import PartData

SIBLINGS_AHEAD = 8
# Objects held at once: those ahead of the reader, plus slack for a reader that skips some.
HELD_OBJECTS = 2 * SIBLINGS_AHEAD
# Directories whose last opened name is remembered; past this, the knowledge is dropped wholesale.
MAX_DIRECTORIES = 1024


def siblings_to_fetch(names: Sequence[str], previous: str | None, opened: str, ahead: int) -> list[str]:
    """The names after ``opened`` to fetch ahead, when it was opened right after ``previous`` (the
    directory's sorted ``names``; at most one name skipped, such as a sub-directory in between)."""
    if previous is None:
        return []
    at, before = bisect_left(names, opened), bisect_left(names, previous)
    if at == len(names) or names[at] != opened or before == len(names) or names[before] != previous:
        return []
    if not 0 < at - before <= 2:
        return []
    return list(names[at + 1 : at + 1 + ahead])


@dataclass
class _Held:
    etag: str
    until: float
    data: asyncio.Task[PartData]


class SiblingReadAhead:
    def __init__(self, capacity: int = HELD_OBJECTS) -> None:
        self.capacity = capacity
        self._held: OrderedDict[str, _Held] = OrderedDict()
        self._last_opened: dict[int, str] = {}

    def opened(self, directory: int, name: str) -> str | None:
        """Record that ``name`` was opened in ``directory``; the name opened there before it."""
        previous = self._last_opened.pop(directory, None)
        if len(self._last_opened) >= MAX_DIRECTORIES:
            self._last_opened.clear()
        self._last_opened[directory] = name
        return previous

    def holds(self, key: str) -> bool:
        return key in self._held

    def hold(self, key: str, etag: str, until: float, data: asyncio.Task[PartData]) -> None:
        self.drop(key)
        self._held[key] = _Held(etag, until, data)
        while len(self._held) > self.capacity:
            _, oldest = self._held.popitem(last=False)
            oldest.data.cancel()

    def pending(self, key: str) -> asyncio.Task[PartData] | None:
        """The fetch of ``key`` held, left held (a lookup waits for it before the open takes it)."""
        held = self._held.get(key)
        return None if held is None else held.data

    def take(self, key: str, etag: str | None, now: float) -> asyncio.Task[PartData] | None:
        """The bytes of ``key`` fetched ahead, if they are still good for an open now."""
        held = self._held.pop(key, None)
        if held is None:
            return None
        failed = held.data.done() and (held.data.cancelled() or held.data.exception() is not None)
        if held.etag != etag or held.until <= now or failed:
            held.data.cancel()
            return None
        return held.data

    def drop(self, key: str) -> None:
        held = self._held.pop(key, None)
        if held is not None:
            held.data.cancel()

    def close(self) -> None:
        for held in self._held.values():
            held.data.cancel()
        self._held.clear()
