"""Writing one new object: bytes arrive in order, full parts of ``--write-part-size`` are uploaded while
the writer goes on (a multipart upload, several parts in flight), and :meth:`ObjectWriter.complete`
makes the object durable. A small file is one PutObject.

Memory is bounded: at most ``max_parts_in_flight`` parts are being uploaded, plus the part being
filled; a writer that outruns S3 waits in ``write``.

Time is bounded too: completing the upload (what ``close`` and ``fsync`` wait for) fails after
:func:`flush_deadline`, however many retries the client would still make against a server that
accepts connections but never answers. An upload that fails is aborted by a task of its own, which
neither the caller's cancellation nor its deadline stops.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from dataclasses import dataclass, field

from s3csi.fs.errors import fail
from s3csi.s3.client import S3Client, WriteOptions
from s3csi.s3.errors import TIMEOUT, S3Error, S3Unavailable
from s3csi.s3.settings import S3Settings
from s3csi.tasks import background

log = logging.getLogger(__name__)

MiB = 1024 * 1024
# Part uploads in flight per file: enough to keep a link busy, small enough to bound memory.
UPLOAD_BYTES_IN_FLIGHT = 64 * MiB
# The first part starts this large and is allocated at its full size only when a file outgrows it: most
# files are small, and zeroing 8 MiB for each (``tar -xf``, ``rsync -a`` of small files) cost more CPU
# than the rest of their write path. Growing copies this much at most, once per file.
FIRST_BUFFER_BYTES = 256 * 1024
# A flush waits for S3 at most this many request timeouts: one attempt that got no answer and one
# whole retry on a fresh connection (what heals a connection that died silently). Quick failures
# (throttling, 5xx) are still retried within it: their backoffs add up to seconds, not minutes. A
# server that has not answered for that long is taken as gone.
FLUSH_REQUEST_TIMEOUTS = 2


def flush_deadline(request_timeout_s: float) -> float:
    """How long completing an upload may take, the abort of a failed one included."""
    return FLUSH_REQUEST_TIMEOUTS * request_timeout_s


@dataclass
class Completed:
    size: int
    etag: str


@dataclass
class ObjectWriter:
    client: S3Client
    bucket: str
    key: str
    part_size: int
    options: WriteOptions
    requests: asyncio.Semaphore
    # flush_deadline() of the client's request timeout (the default's when not given).
    flush_deadline_s: float = flush_deadline(S3Settings.request_timeout_s)
    # User metadata for the object (s3csi.fs.attributes), set while the file is open: it travels with
    # the request that starts the upload. ``sent_metadata`` is what that request carried (None before):
    # metadata set after a multipart upload began needs a metadata copy once it is complete.
    metadata: dict[str, str] = field(default_factory=dict)
    sent_metadata: dict[str, str] | None = None
    size: int = 0
    completed: Completed | None = None
    failure: BaseException | None = None
    # The part being filled (allocated whole, so no part is ever joined from pieces) and its length;
    # full parts waiting for an upload slot.
    _part: bytearray | None = None
    _filled: int = 0
    _full: list[bytearray] = field(default_factory=list)
    _upload_id: str | None = None
    _parts: list[asyncio.Task[tuple[int, str]]] = field(default_factory=list)
    _completing: asyncio.Task[Completed] | None = None
    _aborting: asyncio.Task[None] | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def max_parts_in_flight(self) -> int:
        return max(2, UPLOAD_BYTES_IN_FLIGHT // self.part_size)

    async def write(self, offset: int, data: bytes) -> int:
        if self.completed is not None or self._completing is not None:
            # Already uploaded by an earlier close (flush) or fsync of this file: S3 objects cannot grow.
            raise fail(errno.EBADF)
        if self.failure is not None:
            raise fail(errno.EIO)
        if offset != self.size:
            raise fail(errno.EINVAL)  # S3 objects are written in order, like mount-s3
        self._buffer(memoryview(data))
        self.size += len(data)
        if self._full:
            async with self._lock:  # one part boundary at a time, whoever's write crossed it
                while self._full:
                    await self._upload_full_part()
        return len(data)

    def _buffer(self, data: memoryview) -> None:
        while data:
            if self._part is None:
                first = not self._full and self._upload_id is None
                size = min(FIRST_BUFFER_BYTES, self.part_size) if first else self.part_size
                self._part, self._filled = bytearray(size), 0
            if len(self._part) < self.part_size and self._filled + len(data) > len(self._part):
                grown = bytearray(self.part_size)
                grown[: self._filled] = memoryview(self._part)[: self._filled]
                self._part = grown
            count = min(len(data), self.part_size - self._filled)
            self._part[self._filled : self._filled + count] = data[:count]
            self._filled += count
            data = data[count:]
            if self._filled == self.part_size:
                self._full.append(self._part)
                self._part, self._filled = None, 0

    def reopen_if_empty(self, offset: int) -> bool:
        """Start over after an *empty* object was stored, when writing begins at offset 0.

        ``sh -c 'cmd > file'`` opens the file, dup2()s the descriptor and closes the original: that close
        flushes (storing an empty object) before the first byte is written. The bytes that follow
        replace the empty object; any other write after completion is refused.
        """
        if self.completed is None or self.completed.size != 0 or offset != 0:
            return False
        self.completed, self._completing, self.failure = None, None, None
        return True

    def buffered_only(self) -> bytes | None:
        """Every byte written so far, when none has left for S3 yet (no part uploaded or waiting, nothing
        completed), so a writer that turns out not to be sequential can move them elsewhere; else None."""
        if self._upload_id is not None or self._full or self._completing is not None or self.completed:
            return None
        return bytes(memoryview(self._part)[: self._filled]) if self._part is not None else b""

    async def complete(self) -> Completed:
        """Finish the upload (once; concurrent and later callers share the outcome)."""
        if self.completed is not None:
            return self.completed
        if self._completing is None:
            self._completing = asyncio.create_task(self._complete(), name=f"complete {self.key}")
        return await asyncio.shield(self._completing)

    async def abort(self) -> None:
        """Stop the parts and abort the multipart upload, waiting for the abort. Cancelling the caller
        does not stop the abort: it runs in a task of its own (:meth:`start_abort`)."""
        aborting = self.start_abort()
        if aborting is not None:
            await asyncio.shield(aborting)

    def start_abort(self) -> asyncio.Task[None] | None:
        """Stop the parts and start aborting the multipart upload, if there is one; the task that aborts
        (the same one to every caller), or None when there is nothing to abort."""
        for task in self._parts:
            task.cancel()
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            self._aborting = background(self._abort_upload(upload_id), name=f"abort upload of {self.key}")
        return self._aborting

    async def _abort_upload(self, upload_id: str) -> None:
        try:
            await self.client.abort_multipart_upload(self.bucket, self.key, upload_id)
        except S3Error as exc:
            log.warning("could not abort the upload of s3://%s/%s: %s", self.bucket, self.key, exc)

    async def _complete(self) -> Completed:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.flush_deadline_s
        try:
            if self.failure is not None:
                raise self.failure
            timeout = asyncio.timeout_at(deadline)
            try:
                async with timeout:
                    etag = await self._upload_rest()
            except TimeoutError:
                if not timeout.expired():
                    raise
                where = f"s3://{self.bucket}/{self.key}"
                raise S3Unavailable(
                    f"upload of {where} not completed within {self.flush_deadline_s:g} s (S3 did not answer)",
                    code=TIMEOUT,
                    bucket=self.bucket,
                    key=self.key,
                ) from None
        except BaseException as exc:
            self.failure = self.failure or exc
            aborting = self.start_abort()
            if aborting is not None:
                # Within what is left of the deadline; an abort still running then carries on alone.
                await asyncio.wait([aborting], timeout=max(0.0, deadline - loop.time()))
            raise
        self.completed = Completed(self.size, etag)
        return self.completed

    async def _upload_rest(self) -> str:
        """Upload what is still buffered and finish the upload; the object's ETag."""
        async with self._lock:  # full parts a cancelled write left waiting for a slot
            while self._full:
                await self._upload_full_part()
        last = memoryview(self._part)[: self._filled] if self._part is not None else memoryview(b"")
        self._part, self._filled = None, 0
        if self._upload_id is None:
            self.sent_metadata = dict(self.metadata)
            async with self.requests:
                return await self.client.put_object(
                    self.bucket, self.key, last, self.options, self.sent_metadata
                )
        upload_id = self._upload_id
        if last:
            self._start_part(upload_id, last)
        parts = await asyncio.gather(*self._parts)
        async with self.requests:
            etag = await self.client.complete_multipart_upload(
                self.bucket, self.key, upload_id, sorted(parts)
            )
        self._upload_id = None
        return etag

    async def _upload_full_part(self) -> None:
        if self._upload_id is None:
            self.sent_metadata = dict(self.metadata)
            async with self.requests:
                self._upload_id = await self.client.create_multipart_upload(
                    self.bucket, self.key, self.options, self.sent_metadata
                )
        upload_id = self._upload_id
        in_flight = [task for task in self._parts if not task.done()]
        if len(in_flight) >= self.max_parts_in_flight:
            await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
        failed = next((t for t in self._parts if t.done() and not t.cancelled() and t.exception()), None)
        if failed is not None:
            self.failure = failed.exception()
            raise fail(errno.EIO)
        self._start_part(upload_id, memoryview(self._full.pop(0)))

    def _start_part(self, upload_id: str, body: memoryview) -> None:
        number = len(self._parts) + 1
        task = asyncio.create_task(self._upload_part(upload_id, number, body), name=f"part {number}")
        self._parts.append(task)

    async def _upload_part(self, upload_id: str, number: int, body: memoryview) -> tuple[int, str]:
        async with self.requests:
            etag = await self.client.upload_part(self.bucket, self.key, upload_id, number, body)
        return number, etag
