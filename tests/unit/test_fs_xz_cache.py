"""--cache-xz (s3csi.fs.xz_cache): a miss, a hit, a cache object that is not the part its name says, and
the cache bucket's failures, which never fail a read."""

from __future__ import annotations

import asyncio
from typing import Any

from s3csi.fs.xz_cache import SOURCE_META, Layered, SharedCache, cache_key
from s3csi.s3.errors import make_error
from s3csi.s3.wire import ObjectInfo


class Bucket:
    """A cache bucket: whole-object GETs and PUTs with user metadata; ``failing`` refuses every call."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.failing = False

    async def get_whole_object(self, bucket: str, key: str) -> tuple[bytes, ObjectInfo]:
        if self.failing or key not in self.objects:
            code, status = ("AccessDenied", 403) if self.failing else ("NoSuchKey", 404)
            raise make_error("GetObject", code=code, message="", status=status, bucket=bucket, key=key)
        data, metadata = self.objects[key]
        return data, ObjectInfo(key, len(data), '"e"', 0.0, metadata)

    async def put_object(self, bucket: str, key: str, body: bytes, *, metadata: dict[str, str]) -> str:
        if self.failing:
            raise make_error("PutObject", code="SlowDown", message="", status=503, bucket=bucket, key=key)
        self.objects[key] = (body, metadata)
        return '"e"'


def test_parts_round_trip_and_wrong_ones_are_misses() -> None:
    bucket = Bucket()

    async def scenario() -> None:
        shared = SharedCache(bucket, "cache--usw2-az1--x-s3", asyncio.Semaphore(4))  # type: ignore[arg-type]
        assert await shared.get("abc.0") is None  # nothing yet
        shared.put_soon("abc.0", b"part bytes")
        await shared.close()  # waits for the writes
        assert await shared.get("abc.0") == b"part bytes"
        # Another part's bytes under this name (its metadata names the other part): ignored.
        bucket.objects[cache_key("abc.1")] = (b"part bytes", {SOURCE_META: "abc.0/10"})
        assert await shared.get("abc.1") is None
        assert (shared.hits, shared.misses) == (1, 2)
        # The cache bucket failing: misses and nothing raised, reads go to S3.
        bucket.failing = True
        assert await shared.get("abc.0") is None
        shared.put_soon("abc.2", b"x")
        await shared.close()

    asyncio.run(scenario())


class Local:
    def __init__(self) -> None:
        self.parts: dict[str, bytes | bytearray] = {}
        self.hits = self.misses = 0

    async def get(self, block: str) -> bytes | bytearray | None:
        return self.parts.get(block)

    def put_soon(self, block: str, data: bytes | bytearray) -> None:
        self.parts[block] = data

    async def close(self) -> None:
        pass


def test_the_local_cache_is_asked_first_and_keeps_what_the_shared_one_had() -> None:
    local, bucket = Local(), Bucket()

    async def scenario() -> Any:
        shared = SharedCache(bucket, "cache--usw2-az1--x-s3", asyncio.Semaphore(4))  # type: ignore[arg-type]
        layered = Layered(local, shared)
        layered.put_soon("p.0", b"bytes")
        await layered.close()
        local.parts.clear()
        assert await layered.get("p.0") == b"bytes"  # from the shared cache
        assert local.parts == {"p.0": b"bytes"}  # and now local too
        bucket.objects.clear()
        return await layered.get("p.0")  # the local copy answers

    assert asyncio.run(scenario()) == b"bytes"
