"""ObjectReader against a stand-in for the S3 client: which ranges are fetched, in parallel, and when."""

from __future__ import annotations

import asyncio
import os

import pytest

from s3csi.fs.prefetch import PrefetchPolicy
from s3csi.fs.reader import ObjectReader, ShortRead
from s3csi.s3.errors import S3Unavailable

PART = 100
DATA = os.urandom(1_000)


class RangeClient:
    def __init__(self, data: bytes = DATA, fail_once_at: int | None = None, truncate: bool = False) -> None:
        self.data = data
        self.ranges: list[tuple[int, int]] = []
        self.in_flight = 0
        self.peak = 0
        self.fail_once_at = fail_once_at
        self.truncate = truncate

    async def get_object(self, bucket: str, key: str, *, start: int = 0, end: int | None = None) -> bytes:
        self.ranges.append((start, end or len(self.data)))
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0.001)
            if start == self.fail_once_at:
                self.fail_once_at = None
                raise S3Unavailable("GetObject: connection reset", code="ConnectionLost")
            body = self.data[start:end]
            return body[:-1] if self.truncate else body
        finally:
            self.in_flight -= 1


def reader(client: RangeClient, max_parts: int = 4, threads: int = 16) -> ObjectReader:
    policy = PrefetchPolicy(PART, max_parts)
    return ObjectReader(client, "b", "k", len(client.data), '"e"', policy, asyncio.Semaphore(threads))  # type: ignore[arg-type]


def test_sequential_reads_return_the_bytes_and_fetch_ahead_in_parallel() -> None:
    async def scenario() -> RangeClient:
        client = RangeClient()
        r = reader(client)
        out = b"".join([bytes(await r.read(offset, 30)) for offset in range(0, 1_000, 30)])
        assert out == DATA
        r.close()
        return client

    client = asyncio.run(scenario())
    assert sorted(set(client.ranges)) == [(i, i + PART) for i in range(0, 1_000, PART)]
    assert len(client.ranges) == 10  # every part fetched once
    assert client.peak > 1


def test_a_seek_drops_the_read_ahead() -> None:
    async def scenario() -> RangeClient:
        client = RangeClient()
        r = reader(client, max_parts=8)
        for offset in range(0, 300, 50):
            await r.read(offset, 50)
        assert bytes(await r.read(905, 10)) == DATA[905:915]
        r.close()
        return client

    client = asyncio.run(scenario())
    assert (900, 1_000) in client.ranges


def test_max_threads_bounds_parallel_gets() -> None:
    async def scenario() -> RangeClient:
        client = RangeClient()
        r = reader(client, max_parts=8, threads=2)
        for offset in range(0, 1_000, 100):
            await r.read(offset, 100)
        r.close()
        return client

    assert asyncio.run(scenario()).peak <= 2


def test_a_failed_get_is_retried_by_the_next_read() -> None:
    async def scenario() -> None:
        client = RangeClient(fail_once_at=0)
        r = reader(client)
        with pytest.raises(S3Unavailable):
            await r.read(0, 10)
        assert bytes(await r.read(0, 10)) == DATA[:10]
        r.close()

    asyncio.run(scenario())


def test_a_short_body_is_an_error_not_wrong_bytes() -> None:
    async def scenario() -> None:
        r = reader(RangeClient(truncate=True))
        with pytest.raises(ShortRead):
            await r.read(0, 10)
        r.close()

    asyncio.run(scenario())


def test_reads_past_the_end_are_empty() -> None:
    async def scenario() -> None:
        r = reader(RangeClient())
        assert await r.read(1_000, 10) == b""
        assert bytes(await r.read(995, 10)) == DATA[995:]

    asyncio.run(scenario())
