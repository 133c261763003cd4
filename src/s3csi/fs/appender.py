"""``--incremental-upload``: appending to an existing object of a directory bucket (S3 Express One Zone).

A directory bucket takes ``PutObject`` with ``x-amz-write-offset-bytes: N``, which appends the body to an
object of exactly ``N`` bytes (and fails, changing nothing, when the object has another size: someone
else appended meanwhile). So a file opened write-only with ``O_APPEND`` (``cmd >> file``) need not be
copied and re-uploaded whole: its new bytes are appended, one ``--write-part-size`` at a time while the
writer goes on, and the rest at close or fsync, which return once S3 holds every byte written.

Everything else stays as it is: reads, new files (one upload at close), ``O_TRUNC`` (which replaces the
object). An append keeps the object's user metadata (the file's mode, owner and times as this mount
stores them), so nothing is copied afterwards.

:class:`AppendWriter` is an :class:`~s3csi.fs.writer.ObjectWriter` whose parts are appends instead of a
multipart upload's parts: one at a time, in order (an append must know where the object ends).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

from s3csi.fs.errors import fail
from s3csi.fs.writer import ObjectWriter


def appends_in_place(flags: int, *, incremental_upload: bool, exists_in_s3: bool) -> bool:
    """Whether an open of an existing file with ``flags`` appends to its object in place: with
    ``--incremental-upload``, a write-only ``O_APPEND`` open that does not truncate."""
    write_only = flags & os.O_ACCMODE == os.O_WRONLY
    return (
        incremental_upload
        and exists_in_s3
        and write_only
        and bool(flags & os.O_APPEND)
        and not flags & os.O_TRUNC
    )


@dataclass
class AppendWriter(ObjectWriter):
    """Appends to an object of ``size`` bytes (set it, and ``etag``, to the object's when made)."""

    # The object's ETag after the last append (the one it had when none was made yet).
    etag: str = ""
    # Bytes S3 holds: where the next append goes.
    stored: int = 0

    def __post_init__(self) -> None:
        self.stored = self.size

    @property
    def max_parts_in_flight(self) -> int:
        return 1  # each append starts where the one before ended

    def buffered_only(self) -> bytes | None:
        # The object exists already: its bytes cannot move to a staged copy from here.
        return None

    def reopen_if_empty(self, offset: int) -> bool:
        """Go on appending after a close or fsync of this file stored every byte written so far: ``sh -c
        'cmd >> file'`` closes the descriptor it opened (a flush) before ``cmd`` writes to its dup."""
        if self.completed is None or self.failure is not None or offset != self.size:
            return False
        self.completed, self._completing = None, None
        return True

    def start_abort(self) -> None:
        # Appends that happened are part of the object; one that did not changed nothing. Nothing to abort.
        return None

    async def _upload_full_part(self) -> None:
        await self._append(memoryview(self._full.pop(0)))

    async def _upload_rest(self) -> str:
        async with self._lock:
            while self._full:
                await self._upload_full_part()
        last = memoryview(self._part)[: self._filled] if self._part is not None else memoryview(b"")
        self._part, self._filled = None, 0
        if last:
            await self._append(last)
        return self.etag

    async def _append(self, body: memoryview) -> None:
        if self.failure is not None:
            raise fail(errno.EIO)
        try:
            async with self.requests:
                # No storage class or encryption headers: the object keeps those it was made with.
                self.etag = await self.client.put_object(
                    self.bucket, self.key, body, write_offset=self.stored
                )
        except BaseException as exc:
            self.failure = exc
            raise
        self.stored += len(body)
