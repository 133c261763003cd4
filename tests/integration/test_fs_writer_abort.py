"""An upload whose abort is cancelled still aborts: checked on the S3 server, which must list no
multipart upload afterwards (an upload left behind is billed storage nobody sees)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from s3csi.fs.writer import ObjectWriter
from s3csi.s3 import Credentials, S3Client, S3Settings, StaticCredentials, WriteOptions
from tests.polling import wait_until_async

pytestmark = pytest.mark.integration

MiB = 1024 * 1024
PART = 5 * MiB  # S3's smallest part
DEADLINE_S = 30.0


def uploads(s3: Any, bucket: str) -> list[str]:
    return [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


async def wait_until_no_uploads(s3: Any, bucket: str) -> list[str]:
    """Poll the server (from a thread: the loop must go on running the abort) until no upload is left
    or the deadline passes; what is left."""
    left: list[str] = []

    async def none_left() -> bool:
        nonlocal left
        left = await asyncio.to_thread(uploads, s3, bucket)
        return not left

    await wait_until_async(none_left, within=DEADLINE_S)
    return left


def test_cancelled_abort_mid_upload_leaves_no_multipart_upload(
    s3_server: EmbeddedS3Server, s3: Any, bucket: str
) -> None:
    settings = S3Settings(endpoint_url=s3_server.endpoint_url, region=s3_server.region, force_path_style=True)
    credentials = StaticCredentials(Credentials(s3_server.access_key_id, s3_server.secret_access_key))

    async def scenario() -> tuple[list[str], list[str]]:
        async with S3Client(settings, credentials) as client:
            writer = ObjectWriter(client, bucket, "cancelled.bin", PART, WriteOptions(), asyncio.Semaphore(8))
            await writer.write(0, os.urandom(2 * PART + MiB))  # two parts on their way
            started = await asyncio.to_thread(uploads, s3, bucket)
            caller = asyncio.create_task(writer.abort(), name="release")
            await asyncio.sleep(0)  # the caller starts the abort…
            caller.cancel()  # …and is cancelled at once, as a FUSE request is at shutdown
            with pytest.raises(asyncio.CancelledError):
                await caller
            return started, await wait_until_no_uploads(s3, bucket)

    started, left = asyncio.run(scenario())
    assert started == ["cancelled.bin"]
    assert left == []
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)
