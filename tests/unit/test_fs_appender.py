"""--incremental-upload (s3csi.fs.appender): which opens append in place, which buckets take the flag (the
mount's settings and the volume policy say the same), and an append writer's requests."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from s3csi.errors import InvalidArgument
from s3csi.fs.appender import AppendWriter, appends_in_place
from s3csi.fs.settings import FsFlags, build_settings
from s3csi.s3.client import WriteOptions
from s3csi.volume.policy import AccessMode, PolicyInput, check_bucket_type, effective_mount

DIRECTORY_BUCKET = "data--usw2-az1--x-s3"
W, A, T, C = os.O_WRONLY, os.O_APPEND, os.O_TRUNC, os.O_CREAT


@pytest.mark.parametrize(
    ("flags", "incremental", "exists", "appends"),
    [
        (W | A, True, True, True),
        (W | A | C, True, True, True),  # `>>` in a shell
        (W | A, False, True, False),  # without the flag: as before (refused, or staged)
        (W | A, True, False, False),  # a new file: written whole, as before
        (W | A | T, True, True, False),  # truncated: replaced, as before
        (os.O_RDWR | A, True, True, False),  # reading back needs a copy: --staged-writes
        (W, True, True, False),  # writes at offset 0 of an existing object: not an append
    ],
)
def test_which_opens_append_in_place(flags: int, incremental: bool, exists: bool, appends: bool) -> None:
    assert appends_in_place(flags, incremental_upload=incremental, exists_in_s3=exists) is appends


@pytest.mark.parametrize(
    ("bucket", "extra", "problem"),
    [
        (DIRECTORY_BUCKET, {}, None),
        ("general-purpose", {}, "general-purpose bucket"),
        (DIRECTORY_BUCKET, {"read-only": True}, "--read-only"),
    ],
)
def test_the_flag_needs_a_directory_bucket(bucket: str, extra: dict[str, Any], problem: str | None) -> None:
    flags = FsFlags(bucket, "/mnt", {"incremental-upload": True, **extra})
    if problem is None:
        assert build_settings(flags, default_uid=0, default_gid=0).incremental_upload
        return
    with pytest.raises(InvalidArgument, match="--incremental-upload") as refused:
        build_settings(flags, default_uid=0, default_gid=0)
    assert problem in str(refused.value)


@pytest.mark.parametrize(("bucket", "refused"), [(DIRECTORY_BUCKET, False), ("general-purpose", True)])
def test_a_volume_is_refused_at_publish_rather_than_in_the_mountpoint_pod(bucket: str, refused: bool) -> None:
    mount = effective_mount(
        PolicyInput(("incremental-upload",), None, None, None, False, AccessMode.MULTI_NODE_MULTI_WRITER)
    )
    if refused:
        with pytest.raises(InvalidArgument, match=f"--incremental-upload needs a directory bucket.*{bucket}"):
            check_bucket_type(mount, bucket)
    else:
        check_bucket_type(mount, bucket)
    read_only = effective_mount(
        PolicyInput(("incremental-upload",), None, None, None, True, AccessMode.MULTI_NODE_MULTI_WRITER)
    )
    assert "--incremental-upload" not in read_only.args  # removed with the other write permissions
    check_bucket_type(read_only, "general-purpose")


class Appends:
    """Records PutObjects; the object is ``size`` bytes long, as a directory bucket checks."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.calls: list[tuple[int, bytes]] = []

    async def put_object(self, bucket: str, key: str, body: memoryview, *, write_offset: int) -> str:
        assert write_offset == self.size
        self.calls.append((write_offset, bytes(body)))
        self.size += len(body)
        return f'"etag-{self.size}"'


def test_an_append_writer_appends_part_by_part_then_the_rest() -> None:
    store = Appends(size=10)

    async def scenario() -> None:
        writer = AppendWriter(
            store,  # type: ignore[arg-type]
            DIRECTORY_BUCKET,
            "k",
            part_size=4,
            options=WriteOptions(),
            requests=asyncio.Semaphore(4),
            size=10,
            etag='"old"',
        )
        await writer.write(10, b"abcdef")  # one full part goes at once
        assert store.calls == [(10, b"abcd")]
        done = await writer.complete()
        assert (done.size, done.etag) == (16, '"etag-16"')
        # `sh -c 'cmd >> f'`: the opener's descriptor is closed (flushed) before cmd writes to its copy.
        assert writer.reopen_if_empty(16)
        await writer.write(16, b"g")
        assert (await writer.complete()).size == 17
        assert not writer.reopen_if_empty(3)  # anywhere but the end: no

    asyncio.run(scenario())
    assert store.calls == [(10, b"abcd"), (14, b"ef"), (16, b"g")]
