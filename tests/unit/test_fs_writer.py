"""ObjectWriter against a recording stand-in for the S3 client: parts, order, failures."""

from __future__ import annotations

import asyncio
import errno
from typing import Any

import pyfuse3
import pytest

from s3csi.fs.writer import ObjectWriter
from s3csi.s3.client import WriteOptions
from s3csi.s3.errors import S3Unavailable

PART = 10


class RecordingClient:
    def __init__(self, fail_part: int | None = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail_part = fail_part

    async def put_object(
        self, bucket: str, key: str, body: bytes, options: WriteOptions, metadata: Any = None
    ) -> str:
        self.calls.append(("put", bytes(body)))
        return '"etag"'

    async def create_multipart_upload(
        self, bucket: str, key: str, options: WriteOptions, metadata: Any = None
    ) -> str:
        self.calls.append(("create",))
        return "upload"

    async def upload_part(self, bucket: str, key: str, upload_id: str, number: int, body: bytes) -> str:
        if number == self.fail_part:
            raise S3Unavailable("UploadPart: the endpoint is gone", code="ConnectionError")
        self.calls.append(("part", number, bytes(body)))
        return f'"p{number}"'

    async def complete_multipart_upload(self, bucket: str, key: str, upload_id: str, parts: Any) -> str:
        self.calls.append(("complete", list(parts)))
        return '"etag-2"'

    async def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        self.calls.append(("abort",))


def writer(client: RecordingClient) -> ObjectWriter:
    return ObjectWriter(client, "b", "k", PART, WriteOptions(), asyncio.Semaphore(4))  # type: ignore[arg-type]


def test_small_file_is_one_put() -> None:
    async def scenario() -> list[tuple[Any, ...]]:
        client = RecordingClient()
        w = writer(client)
        await w.write(0, b"hello")
        await w.write(5, b"!")
        done = await w.complete()
        assert (done.size, done.etag) == (6, '"etag"')
        return client.calls

    assert asyncio.run(scenario()) == [("put", b"hello!")]


def test_large_file_is_uploaded_in_parts_while_writing() -> None:
    async def scenario() -> list[tuple[Any, ...]]:
        client = RecordingClient()
        w = writer(client)
        await w.write(0, b"a" * 7)
        await w.write(7, b"b" * 7)  # crosses the first part boundary
        await w.write(14, b"c" * 10)
        await w.complete()
        return client.calls

    calls = asyncio.run(scenario())
    assert calls[0] == ("create",)
    parts = sorted(c for c in calls if c[0] == "part")
    assert parts == [("part", 1, b"a" * 7 + b"bbb"), ("part", 2, b"b" * 4 + b"c" * 6), ("part", 3, b"cccc")]
    assert calls[-1] == ("complete", [(1, '"p1"'), (2, '"p2"'), (3, '"p3"')])


def test_out_of_order_write_is_einval() -> None:
    async def scenario() -> None:
        w = writer(RecordingClient())
        await w.write(0, b"abc")
        with pytest.raises(pyfuse3.FUSEError) as excinfo:
            await w.write(10, b"x")
        assert excinfo.value.errno == errno.EINVAL

    asyncio.run(scenario())


def test_failed_part_fails_completion_and_aborts() -> None:
    async def scenario() -> list[tuple[Any, ...]]:
        client = RecordingClient(fail_part=2)
        w = writer(client)
        for offset in range(0, 30, 5):
            try:
                await w.write(offset, b"z" * 5)
            except pyfuse3.FUSEError:
                break
        with pytest.raises(S3Unavailable):
            await w.complete()
        with pytest.raises(S3Unavailable):
            await w.complete()  # the outcome is kept: a second close reports it too
        return client.calls

    calls = asyncio.run(scenario())
    assert ("abort",) in calls and not any(c[0] == "complete" for c in calls)


def test_empty_object_can_be_replaced_from_offset_zero() -> None:
    async def scenario() -> list[tuple[Any, ...]]:
        client = RecordingClient()
        w = writer(client)
        await w.complete()
        assert w.reopen_if_empty(0)
        await w.write(0, b"late")
        await w.complete()
        assert not w.reopen_if_empty(0)  # only an empty object is replaced
        with pytest.raises(pyfuse3.FUSEError) as excinfo:
            await w.write(4, b"more")
        assert excinfo.value.errno == errno.EBADF
        return client.calls

    assert asyncio.run(scenario()) == [("put", b""), ("put", b"late")]


class FrozenClient(RecordingClient):
    """A server that accepts requests and never answers them (until ``thaw``), as one SIGSTOPped would."""

    def __init__(self, *, freeze: set[str]) -> None:
        super().__init__()
        self.freeze = freeze
        self.thawed = asyncio.Event()
        self.waiting = asyncio.Event()

    async def _hang(self, call: str) -> None:
        if call in self.freeze:
            self.waiting.set()
            await self.thawed.wait()

    async def put_object(
        self, bucket: str, key: str, body: bytes, options: WriteOptions, metadata: Any = None
    ) -> str:
        await self._hang("put")
        return await super().put_object(bucket, key, body, options, metadata)

    async def complete_multipart_upload(self, bucket: str, key: str, upload_id: str, parts: Any) -> str:
        await self._hang("complete")
        return await super().complete_multipart_upload(bucket, key, upload_id, parts)

    async def abort_multipart_upload(self, bucket: str, key: str, upload_id: str) -> None:
        await self._hang("abort")
        await super().abort_multipart_upload(bucket, key, upload_id)


@pytest.mark.parametrize(("size", "frozen"), [(5, {"put"}), (25, {"complete", "abort"})])
def test_completion_without_an_answer_fails_at_the_flush_deadline(size: int, frozen: set[str]) -> None:
    async def scenario() -> None:
        client = FrozenClient(freeze=frozen)
        w = ObjectWriter(
            client,  # type: ignore[arg-type]
            "b",
            "k",
            PART,
            WriteOptions(),
            asyncio.Semaphore(4),
            flush_deadline_s=0.05,
        )
        await w.write(0, b"x" * size)
        with pytest.raises(S3Unavailable) as excinfo:
            await w.complete()  # returns although the server never answers (and its abort hangs too)
        assert "not completed within 0.05 s" in str(excinfo.value)
        assert excinfo.value.errno == errno.EIO
        assert not any(c[0] in ("put", "complete") for c in client.calls)
        client.thawed.set()
        await w.abort()  # the abort started at the deadline goes on, and finishes once S3 answers
        assert (("abort",) in client.calls) == ("abort" in frozen)

    asyncio.run(scenario())


def test_abort_goes_on_when_its_caller_is_cancelled() -> None:
    async def scenario() -> list[tuple[Any, ...]]:
        client = FrozenClient(freeze={"abort"})
        w = writer(client)
        await w.write(0, b"y" * 25)  # a multipart upload with two parts
        caller = asyncio.create_task(w.abort())
        await client.waiting.wait()  # the abort request is on its way
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        client.thawed.set()
        aborting = w.start_abort()  # the same abort, not a new one
        assert aborting is not None
        await aborting
        return client.calls

    assert ("abort",) in asyncio.run(scenario())


@pytest.mark.parametrize(
    ("writes", "completed", "expected"),
    [
        ([], False, b""),
        ([b"abc", b"de"], False, b"abcde"),
        ([b"x" * (PART - 1)], False, b"x" * (PART - 1)),
        ([b"x" * PART], False, None),  # a full part went to S3: the writer cannot hand its bytes over
        ([b"x" * 3], True, None),  # stored already
    ],
    ids=["nothing", "small", "just-under-a-part", "a-part-uploaded", "completed"],
)
def test_bytes_can_be_handed_over_only_before_any_left_for_s3(
    writes: list[bytes], completed: bool, expected: bytes | None
) -> None:
    async def scenario() -> bytes | None:
        w = writer(RecordingClient())
        for data in writes:
            await w.write(w.size, data)
        if completed:
            await w.complete()
        return w.buffered_only()

    assert asyncio.run(scenario()) == expected


@pytest.mark.parametrize("write_size", [100_000, 256 * 1024, 300_000])
def test_the_first_part_starts_small_and_grows_without_losing_bytes(write_size: int) -> None:
    """A small file never zeroes a whole part; one that outgrows the first buffer keeps every byte."""
    part = 1024 * 1024
    data = bytes(range(256)) * (3 * part // 256) + b"tail"

    async def scenario() -> list[tuple[Any, ...]]:
        client = RecordingClient()
        w = ObjectWriter(client, "b", "k", part, WriteOptions(), asyncio.Semaphore(4))  # type: ignore[arg-type]
        await w.write(0, b"x")
        assert len(w._part or b"") < part
        w = ObjectWriter(client, "b", "k", part, WriteOptions(), asyncio.Semaphore(4))  # type: ignore[arg-type]
        for offset in range(0, len(data), write_size):
            await w.write(offset, data[offset : offset + write_size])
        await w.complete()
        return client.calls

    parts = sorted(c for c in asyncio.run(scenario()) if c[0] == "part")
    assert b"".join(p[2] for p in parts) == data
    assert [len(p[2]) for p in parts] == [part, part, part, 4]
