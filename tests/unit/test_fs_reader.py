"""ObjectReader against a stand-in for the S3 client: which ranges are fetched, in parallel, and when."""

from __future__ import annotations

import asyncio
import os

import pytest

from s3csi.fs.prefetch import PrefetchPolicy
from s3csi.fs.reader import ObjectReader, ShortRead
from s3csi.s3.errors import S3Unavailable
from tests.polling import wait_until_async

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


@pytest.mark.parametrize(
    ("offset", "size"),
    [(95, 10), (150, 100), (50, 250), (199, 2), (850, 200), (0, 1_000)],
    ids=["two-parts", "part-edges", "three-parts", "one-byte-each", "past-the-end", "whole"],
)
def test_a_read_across_parts_returns_exactly_its_bytes(offset: int, size: int) -> None:
    async def scenario() -> None:
        r = reader(RangeClient(), max_parts=16)
        assert bytes(await r.read(offset, size)) == DATA[offset : offset + size]
        r.close()

    asyncio.run(scenario())


class GatedClient(RangeClient):
    """Holds every GET but those starting at ``open_starts`` until ``release`` is set."""

    def __init__(self, open_starts: set[int]) -> None:
        super().__init__()
        self.open_starts = open_starts
        self.release = asyncio.Event()

    async def get_object(self, bucket: str, key: str, *, start: int = 0, end: int | None = None) -> bytes:
        if start not in self.open_starts:
            await self.release.wait()
        return await super().get_object(bucket, key, start=start, end=end)


def test_a_read_after_open_or_a_seek_waits_only_for_the_head_of_its_part() -> None:
    async def scenario() -> GatedClient:
        client = GatedClient(open_starts={0, 500})
        policy = PrefetchPolicy(PART, 4, seek_head=30)
        r = ObjectReader(client, "b", "k", len(DATA), '"e"', policy, asyncio.Semaphore(16))  # type: ignore[arg-type]
        # The rest of each part is held back: these reads are answered by the heads alone.
        assert bytes(await r.read(0, 20)) == DATA[:20]
        assert bytes(await r.read(520, 10)) == DATA[520:530]  # a seek: a new head
        client.release.set()
        # Past the head: the whole part, head and rest joined, then sequential parts whole.
        assert bytes(await r.read(530, 200)) == DATA[530:730]
        r.close()
        return client

    client = asyncio.run(scenario())
    assert (0, 30) in client.ranges and (500, 530) in client.ranges
    assert (530, 600) in client.ranges and (600, 700) in client.ranges
    assert (500, 600) not in client.ranges  # the seek's part was never fetched twice


def test_seek_head_only_for_parts_larger_than_it() -> None:
    assert PrefetchPolicy.for_part_size(8 * 1024 * 1024).seek_head == 1024 * 1024
    assert PrefetchPolicy.for_part_size(1024 * 1024).seek_head == 0


def test_a_small_object_is_fetched_as_it_is_opened() -> None:
    async def scenario() -> RangeClient:
        client = RangeClient(DATA[:80])
        r = reader(client)
        fetch = r.fetch_small_object()
        assert fetch is not None
        await fetch  # no read yet
        assert client.ranges == [(0, 80)]
        assert bytes(await r.read(0, 4096)) == DATA[:80]
        r.close()
        return client

    assert asyncio.run(scenario()).ranges == [(0, 80)]  # the read used the GET started at open


def test_a_large_object_is_not_fetched_before_it_is_read() -> None:
    async def scenario() -> RangeClient:
        client = RangeClient()
        r = reader(client)
        assert r.fetch_small_object() is None
        assert asyncio.all_tasks() == {asyncio.current_task()}  # no GET started, not even a slow one
        r.close()
        return client

    assert asyncio.run(scenario()).ranges == []


def test_a_streaming_reader_keeps_the_window_in_flight_as_gets_end() -> None:
    async def scenario() -> RangeClient:
        client = RangeClient()
        policy = PrefetchPolicy(PART, max_parts=2, ready_parts=2)
        r = ObjectReader(client, "b", "k", len(DATA), '"e"', policy, asyncio.Semaphore(16))  # type: ignore[arg-type]
        for offset in range(0, 200, 50):
            await r.read(offset, 50)
        # The reader now pauses in part 1: as the GETs in flight end, the held parts past the window
        # are fetched, two at a time, without another read.
        expected = [(i, i + PART) for i in range(0, 500, PART)]
        assert await wait_until_async(lambda: sorted(set(client.ranges)) == expected), client.ranges
        r.close()
        return client

    client = asyncio.run(scenario())
    assert client.peak <= 2
