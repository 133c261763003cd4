"""Reading one object through one file handle: parts fetched with ranged GETs, ahead of the reader as
:mod:`s3csi.fs.prefetch` decides, several in flight at once, at most ``--max-threads`` S3 requests in
the whole process."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from s3csi.fs.cache import DiskCache, block_id
from s3csi.fs.prefetch import PrefetchPolicy, PrefetchWindow
from s3csi.s3.client import S3Client
from s3csi.s3.errors import S3Error


@dataclass
class _Part:
    task: asyncio.Task[bytes]
    # Reads awaiting this part right now: a part nobody waits for may be cancelled when dropped.
    waiters: int = 0


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
    cache: DiskCache | None = None
    _window: PrefetchWindow = field(init=False)
    _parts: dict[int, _Part] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self._window = PrefetchWindow(self.policy)

    async def read(self, offset: int, size: int) -> bytes | memoryview:
        end = min(offset + size, self.size)
        if offset >= end:
            return b""
        wanted = self._window.on_read(offset, size, self.size)
        for index in [i for i in self._parts if i not in wanted]:
            dropped = self._parts.pop(index)
            if dropped.waiters == 0:
                dropped.task.cancel()
        for index in wanted:
            if index not in self._parts:
                task = asyncio.create_task(self._fetch(index), name=f"get {self.key}#{index}")
                task.add_done_callback(_retrieve_exception)
                self._parts[index] = _Part(task)
        part_size = self.policy.part_size
        needed = [self._parts[i] for i in range(offset // part_size, (end - 1) // part_size + 1)]
        for part in needed:
            part.waiters += 1
        try:
            pieces = [await part.task for part in needed]
        except S3Error:
            # A failed GET is not remembered: the next read of these bytes tries again.
            for index, part in list(self._parts.items()):
                if part.task.done() and not part.task.cancelled() and part.task.exception() is not None:
                    del self._parts[index]
            raise
        finally:
            for part in needed:
                part.waiters -= 1
        first_start = (offset // part_size) * part_size
        if len(pieces) == 1:
            # A view, not a copy: pyfuse3 replies from any contiguous buffer.
            return memoryview(pieces[0])[offset - first_start : end - first_start]
        joined = b"".join(pieces)
        return joined[offset - first_start : end - first_start]

    def close(self) -> None:
        for part in self._parts.values():
            part.task.cancel()
        self._parts.clear()

    async def _fetch(self, index: int) -> bytes:
        part_size = self.policy.part_size
        start = index * part_size
        end = min(start + part_size, self.size)
        block = block_id(self.bucket, self.key, self.etag, part_size, index) if self.cache else ""
        if self.cache is not None:
            cached = await self.cache.get(block)
            if cached is not None:
                return cached
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
        if self.cache is not None:
            self.cache.put_soon(block, data)
        return data


def _retrieve_exception(task: asyncio.Task[bytes]) -> None:
    # A part dropped by a seek may fail with nobody awaiting it; its error is not worth a warning.
    if not task.cancelled():
        task.exception()
