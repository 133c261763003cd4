"""``--cache-xz BUCKET``: read parts shared through a directory bucket (S3 Express One Zone), as mount-s3's
express cache does.

Every part a reader fetches from S3 is also written, in the background, as an object of the cache bucket;
a reader asks the cache bucket before S3. Mounts on many nodes that name the same cache bucket share what
any of them read: a directory bucket in the nodes' Availability Zone answers sooner than a regional bucket,
and a model or a data set read by a hundred pods is read from its bucket once.

An object of the cache is named by what the part is: ``s3csi-cache/V1/`` + the SHA-256 of the source
bucket, key, ETag and part size (:func:`s3csi.fs.cache.block_id`) + ``.INDEX``. A changed object has another
ETag, so its old parts are never served; they are left for the cache bucket's lifecycle rule to expire
(the cache never deletes: other mounts may be reading them). Each cache object also carries the part's
source and length as user metadata, and a part read back whose length or source is not what the name says
is ignored (fetched from S3, and written again): the cache bucket may be written by anyone its users trust,
but a wrong length never reaches a reader. The cache's failures (no access, throttling, a missing bucket)
never fail a read: the part comes from S3, and the failure is logged once per cause.

With ``--cache DIR`` too, the local disk is asked first, then the cache bucket, then S3 (:class:`Layered`).
"""

from __future__ import annotations

import asyncio
import errno
import logging

from s3csi.fs.cache import PartCache
from s3csi.fs.errors import repeats
from s3csi.s3.client import S3Client
from s3csi.s3.errors import S3Error
from s3csi.tasks import background

log = logging.getLogger(__name__)

CACHE_PREFIX = "s3csi-cache/V1/"
# The user metadata of a cache object: which part it is (checked when read back).
SOURCE_META = "s3csi-source"


def cache_key(block: str) -> str:
    return CACHE_PREFIX + block


class SharedCache:
    """Parts as objects of the directory bucket ``bucket``, through ``client`` (its session keys come with
    it: s3csi.s3.express)."""

    def __init__(self, client: S3Client, bucket: str, requests: asyncio.Semaphore) -> None:
        self.client = client
        self.bucket = bucket
        self.requests = requests
        self.hits = 0
        self.misses = 0
        self._writes: set[asyncio.Task[None]] = set()

    async def check(self) -> None:
        """Before mounting, like the source bucket: the cache bucket can be listed with these credentials."""
        await self.client.list_objects_v2(self.bucket, prefix=CACHE_PREFIX, max_keys=1)

    async def get(self, block: str) -> bytes | bytearray | None:
        try:
            async with self.requests:
                data, info = await self.client.get_whole_object(self.bucket, cache_key(block))
        except S3Error as exc:
            if exc.errno != errno.ENOENT:  # an ordinary miss
                repeats.log(log, logging.WARNING, exc.cause, "cache bucket %s: %s", self.bucket, exc)
            self.misses += 1
            return None
        if info.metadata.get(SOURCE_META) != _source(block, len(data)):
            self.misses += 1  # not the part its name says: ignored, and written again by the reader
            return None
        self.hits += 1
        return data

    def put_soon(self, block: str, data: bytes | bytearray) -> None:
        """Write the part in the background: the reader that fetched it need not wait for the cache."""
        task = background(self._put(block, bytes(data)), name=f"cache-xz put {block}")
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _put(self, block: str, data: bytes) -> None:
        try:
            async with self.requests:
                await self.client.put_object(
                    self.bucket, cache_key(block), data, metadata={SOURCE_META: _source(block, len(data))}
                )
        except S3Error as exc:
            repeats.log(log, logging.WARNING, exc.cause, "cache bucket %s: %s", self.bucket, exc)

    async def close(self) -> None:
        if self._writes:
            await asyncio.wait(self._writes)


def _source(block: str, length: int) -> str:
    return f"{block}/{length}"


class Layered:
    """The local disk cache first, then the shared one; a part found in the shared one is kept locally."""

    def __init__(self, local: PartCache, shared: PartCache) -> None:
        self.local = local
        self.shared = shared

    @property
    def hits(self) -> int:
        return self.local.hits + self.shared.hits

    @property
    def misses(self) -> int:
        return self.shared.misses

    async def get(self, block: str) -> bytes | bytearray | None:
        data = await self.local.get(block)
        if data is None:
            data = await self.shared.get(block)
            if data is not None:
                self.local.put_soon(block, data)
        return data

    def put_soon(self, block: str, data: bytes | bytearray) -> None:
        self.local.put_soon(block, data)
        self.shared.put_soon(block, data)

    async def close(self) -> None:
        await self.shared.close()
        await self.local.close()
