"""Reading one object through one file handle: parts fetched with ranged GETs, ahead of the reader as
:mod:`s3csi.fs.prefetch` decides, several in flight at once (the window's size; the next part starts as
each GET ends), at most ``--max-threads`` S3 requests in the whole process."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field

from s3csi.fs.cache import PartCache, block_id
from s3csi.fs.prefetch import PrefetchCounts, PrefetchPolicy, PrefetchWindow
from s3csi.s3.client import S3Client
from s3csi.s3.errors import S3Error
from s3csi.tasks import log_death

# A part's bytes as S3Client.get_object returns them (the buffer they were received into) or the cache.
PartData = bytes | bytearray


@dataclass
class _Part:
    task: asyncio.Task[PartData]
    # After a seek: the part's first ``seek_head`` bytes, fetched on their own (``task`` joins them on).
    head: asyncio.Task[PartData] | None = None
    # Reads awaiting this part right now: a part nobody waits for may be cancelled when dropped.
    waiters: int = 0

    def cancel(self) -> None:
        self.task.cancel()
        if self.head is not None:
            self.head.cancel()

    def failed(self) -> bool:
        return any(
            t is not None and t.done() and not t.cancelled() and t.exception() is not None
            for t in (self.task, self.head)
        )


class ShortRead(S3Error):
    """S3 sent fewer bytes than the object's size promised: the object changed under the reader."""


@dataclass
class ObjectReader:
    client: S3Client
    bucket: str
    key: str
    size: int
    etag: str
    policy: PrefetchPolicy
    requests: asyncio.Semaphore
    cache: PartCache | None = None
    # The mount's read-ahead hits and misses (shared by its readers).
    prefetch: PrefetchCounts = field(default_factory=PrefetchCounts)
    _window: PrefetchWindow = field(init=False)
    _parts: dict[int, _Part] = field(init=False, default_factory=dict)
    # The parts to hold, as the window last said.
    _held: range = field(init=False, default=range(0))
    # Parts this handle has started fetching, for s3csi.fs.allocator's decision at close.
    parts_fetched: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._window = PrefetchWindow(self.policy)

    async def read(self, offset: int, size: int) -> bytes | memoryview:
        end = min(offset + size, self.size)
        if offset >= end:
            return b""
        self._held = self._window.on_read(offset, size, self.size)
        for index in [i for i in self._parts if i not in self._held]:
            dropped = self._parts.pop(index)
            if dropped.waiters == 0:
                dropped.cancel()
        part_size = self.policy.part_size
        first_index = offset // part_size
        needed_indices = range(first_index, (end - 1) // part_size + 1)
        missed = False
        for index in needed_indices:
            if index not in self._parts:
                self._parts[index] = self._start(index, split=self._window.seeked and index == first_index)
                missed = True
        if missed:
            self.prefetch.misses += 1
        else:
            self.prefetch.hits += 1
        self._fetch_ahead()
        needed = [self._parts[i] for i in needed_indices]
        first_start = first_index * part_size
        head = needed[0].head
        if len(needed) == 1 and head is not None and end - first_start <= self.policy.seek_head:
            tasks = [head]
        else:
            tasks = [part.task for part in needed]
        for part in needed:
            part.waiters += 1
        try:
            pieces = [await task for task in tasks]
        except S3Error:
            # A failed GET is not remembered: the next read of these bytes tries again.
            for index, part in list(self._parts.items()):
                if part.failed():
                    del self._parts[index]
            raise
        finally:
            for part in needed:
                part.waiters -= 1
        start, stop = offset - first_start, end - first_start
        if len(pieces) == 1:
            # A view, not a copy: pyfuse3 replies from any contiguous buffer.
            return memoryview(pieces[0])[start:stop]
        # Whole parts, each but the last ``part_size`` long: copy only the bytes asked for.
        last_start = (len(pieces) - 1) * part_size
        middle = [memoryview(piece) for piece in pieces[1:-1]]
        return b"".join([memoryview(pieces[0])[start:], *middle, memoryview(pieces[-1])[: stop - last_start]])

    @property
    def is_small(self) -> bool:
        """Whether the object fits in one read after opening (``seek_head``, else one part)."""
        return 0 < self.size <= (self.policy.seek_head or self.policy.part_size)

    def fetch_small_object(
        self, fetched: asyncio.Task[PartData] | None = None
    ) -> asyncio.Task[PartData] | None:
        """Start fetching a small object as it is opened, so the read that follows finds its GET under
        way; or take ``fetched``, its bytes already on their way. The fetch, or None for a large object."""
        if not self.is_small:
            return None
        if 0 not in self._parts:
            self._parts[0] = _Part(fetched) if fetched is not None else self._start(0, split=False)
        return self._parts[0].task

    def close(self) -> None:
        self._held = range(0)
        for part in self._parts.values():
            part.cancel()
        self._parts.clear()

    def _fetch_ahead(self, _ended: object = None) -> None:
        """Start the held parts not yet fetched, in order, while fewer GETs than the window's size are
        in flight. Called on each read and as each GET ends, so that S3 stays busy while fetched parts
        wait for the reader."""
        in_flight = sum(1 for part in self._parts.values() if not part.task.done())
        for index in self._held:
            if in_flight >= self._window.window:
                return
            if index not in self._parts:
                self._parts[index] = self._start(index, split=False)
                in_flight += 1

    def _start(self, index: int, *, split: bool) -> _Part:
        self.parts_fetched += 1
        start = index * self.policy.part_size
        end = min(start + self.policy.part_size, self.size)
        head_end = start + self.policy.seek_head
        if split and self.cache is None and start < head_end < end:
            head = self._task(self._get(start, head_end), f"get {self.key}#{index} head")
            part = _Part(self._task(self._fetch_rest(head, head_end, end), f"get {self.key}#{index}"), head)
        else:
            part = _Part(self._task(self._fetch(index, start, end), f"get {self.key}#{index}"))
        part.task.add_done_callback(self._fetch_ahead)
        return part

    @staticmethod
    def _task(fetch: Coroutine[None, None, PartData], name: str) -> asyncio.Task[PartData]:
        task = asyncio.create_task(fetch, name=name)
        task.add_done_callback(_retrieve_exception)
        return task

    async def _fetch_rest(self, head: asyncio.Task[PartData], start: int, end: int) -> PartData:
        """The whole part: its head (fetched by a read waiting for it) joined to the rest."""
        rest = self._task(self._get(start, end), f"get {self.key}@{start}")
        try:
            first = await asyncio.shield(head)  # a read may still wait for the head alone
            return first + await rest
        except asyncio.CancelledError:
            head.cancel()
            rest.cancel()
            raise

    async def _fetch(self, index: int, start: int, end: int) -> PartData:
        part_size = self.policy.part_size
        block = block_id(self.bucket, self.key, self.etag, part_size, index) if self.cache else ""
        if self.cache is not None:
            cached = await self.cache.get(block)
            # A shared cache (--cache-xz) is written by other mounts too: only the length it must have.
            if cached is not None and len(cached) == end - start:
                return cached
        data = await self._get(start, end)
        if self.cache is not None:
            self.cache.put_soon(block, data)
        return data

    async def _get(self, start: int, end: int) -> PartData:
        async with self.requests:
            data = await self.client.get_object(self.bucket, self.key, start=start, end=end)
        if len(data) != end - start:
            raise ShortRead(
                f"GetObject s3://{self.bucket}/{self.key}: {len(data)} bytes at {start},"
                f" expected {end - start} (the object changed while it was read)",
                code="ShortRead",
                bucket=self.bucket,
                key=self.key,
            )
        return data


def _retrieve_exception(task: asyncio.Task[PartData]) -> None:
    # A part dropped by a seek may fail with nobody awaiting it: an S3 error is not worth a warning (a
    # read that needs the bytes asks again), anything else is a bug and logged as any dead task is.
    if not task.cancelled() and not isinstance(task.exception(), S3Error):
        log_death(task)
