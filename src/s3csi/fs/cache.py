"""``--cache DIR``: read parts kept on local disk, bounded by ``--max-cache-size``, least recently used
evicted first.

A part is named by the object's bucket, key and ETag and the part's index and size, so a changed
object never serves stale bytes. The cache lives in a fresh sub-directory of DIR that only this
process uses and that is removed when the file system stops. Bookkeeping runs on the event loop;
every file operation runs in a worker thread so a slow disk never stalls other requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import shutil
import tempfile
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from s3csi.fs.settings import CACHE_DIR_PREFIX
from s3csi.tasks import background

log = logging.getLogger(__name__)

# Without --max-cache-size, like mount-s3, leave 5% of the disk's free space (measured at mount time) free.
DEFAULT_CACHE_FRACTION_OF_FREE_DISK = 0.95
CACHE_THREADS = 4


class PartCache(Protocol):
    """What a reader asks of a cache of parts (DiskCache; SharedCache and Layered in s3csi.fs.xz_cache)."""

    @property
    def hits(self) -> int: ...

    @property
    def misses(self) -> int: ...

    async def get(self, block: str) -> bytes | bytearray | None: ...

    def put_soon(self, block: str, data: bytes | bytearray) -> None: ...

    async def close(self) -> None: ...


def block_id(bucket: str, key: str, etag: str, part_size: int, index: int) -> str:
    digest = hashlib.sha256(f"{bucket}\0{key}\0{etag}\0{part_size}".encode()).hexdigest()
    return f"{digest}.{index}"


class DiskCache:
    def __init__(self, directory: str, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._sizes: OrderedDict[str, int] = OrderedDict()  # block id → bytes, least recently used first
        self._used = 0
        self._pending: set[str] = set()  # counted, being written
        self._writes: set[asyncio.Task[None]] = set()
        self._executor = ThreadPoolExecutor(CACHE_THREADS, thread_name_prefix="s3csi-cache")
        self.hits = 0
        self.misses = 0

    @classmethod
    def create(cls, parent: str, max_bytes: int | None) -> DiskCache:
        directory = tempfile.mkdtemp(prefix=CACHE_DIR_PREFIX, dir=parent)
        if max_bytes is None:
            usage = shutil.disk_usage(directory)
            max_bytes = int(usage.free * DEFAULT_CACHE_FRACTION_OF_FREE_DISK)
        return cls(directory, max_bytes)

    async def get(self, block: str) -> bytes | None:
        if block not in self._sizes or block in self._pending:
            self.misses += 1
            return None
        self._sizes.move_to_end(block)
        data = await asyncio.get_running_loop().run_in_executor(self._executor, self._read, block)
        if data is None or len(data) != self._sizes.get(block):
            self._forget(block)
            self.misses += 1
            return None
        self.hits += 1
        return data

    def put_soon(self, block: str, data: bytes | bytearray) -> None:
        """Store the part in the background: the reader that fetched it need not wait for the disk."""
        task = background(self.put(block, data), name=f"cache put {block}")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def put(self, block: str, data: bytes | bytearray) -> None:
        if len(data) > self.max_bytes or block in self._sizes:
            return
        evicted = []
        while self._used + len(data) > self.max_bytes and self._sizes:
            old, size = self._sizes.popitem(last=False)
            self._used -= size
            evicted.append(old)
        # Counted before the write so that concurrent puts cannot overshoot the bound together.
        self._sizes[block] = len(data)
        self._used += len(data)
        self._pending.add(block)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor, self._write, block, data, evicted)
            if block not in self._sizes:
                # Evicted by another put while its write was still running in another thread: that put's
                # unlink came before this file existed, so it falls to this one to keep the bound.
                await loop.run_in_executor(self._executor, self._unlink, block)
        except OSError as exc:
            log.warning("cache: cannot store a part in %s: %s", self.directory, exc)
            self._forget(block)
        finally:
            self._pending.discard(block)

    async def close(self) -> None:
        if self._writes:
            await asyncio.wait(self._writes)
        await asyncio.get_running_loop().run_in_executor(None, self._remove)

    def _remove(self) -> None:
        self._executor.shutdown(wait=True)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _forget(self, block: str) -> None:
        size = self._sizes.pop(block, None)
        if size is not None:
            self._used -= size

    def _path(self, block: str) -> str:
        return os.path.join(self.directory, block)

    def _read(self, block: str) -> bytes | None:
        try:
            with open(self._path(block), "rb") as file:
                return file.read()
        except OSError:
            return None

    def _unlink(self, block: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(block))

    def _write(self, block: str, data: bytes | bytearray, evicted: list[str]) -> None:
        for old in evicted:
            self._unlink(old)
        temporary = self._path(block) + ".tmp"
        with open(temporary, "wb") as file:
            file.write(data)
        os.replace(temporary, self._path(block))
