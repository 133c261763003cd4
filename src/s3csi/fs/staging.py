"""``--staged-writes``: appends, writes at any offset, truncation and read-write opens, which an S3 object
cannot take in place, done on a local copy of the file and uploaded whole on close and fsync.

The decisions are pure functions (:func:`open_plan`, :func:`within_limit`), tested by tables. The copies
live in a fresh sub-directory (mode 0700) of the ``--cache`` directory, removed at unmount. Each copy is
a file created 0600 and unlinked at once, so it exists only as this process's open descriptor: nothing
of it is left on disk, for anyone to read, once the process is gone (a crash included). Disk I/O runs in
worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import errno
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from typing import TypeVar

from s3csi.fs.errors import fail
from s3csi.fs.reader import ShortRead
from s3csi.fs.settings import STAGING_DIR_PREFIX
from s3csi.fs.writer import Completed, ObjectWriter
from s3csi.mountflags import BY_NAME
from s3csi.s3.client import S3Client

# Disk threads of the staging area: reads and writes of the copies, and the upload's reads.
STAGING_THREADS = 4
# Parts of an object downloaded at once into a new copy.
DOWNLOAD_PARTS_IN_FLIGHT = 4

T = TypeVar("T")

STAGED_WRITES = BY_NAME["staged-writes"].option
ALLOW_OVERWRITE = BY_NAME["allow-overwrite"].option


class OpenPlan(Enum):
    """How an open for writing (or a create) is served."""

    STREAM = "stream"
    """A new object written in order and uploaded on close (``fs/writer.py``): the fast path."""
    STAGE_COPY = "stage-copy"
    """A staged copy filled with the object's bytes: appends, writes anywhere, reads back."""
    STAGE_EMPTY = "stage-empty"
    """A staged copy that starts empty: a new file opened read-write or for appending, or O_TRUNC."""


@dataclass(frozen=True)
class Refusal:
    """An open the mount's flags do not allow: the errno, and the flag that would allow it (for the log)."""

    errno: int
    needs: str


def open_plan(flags: int, *, exists: bool, staged_writes: bool, allow_overwrite: bool) -> OpenPlan | Refusal:
    """How to serve an open for writing with ``flags``, of an existing object or a new name (``create``).

    Without ``--staged-writes`` only what S3 takes as it is: a new object written in order, or, with
    ``--allow-overwrite``, an existing one replaced (O_TRUNC). With it, a read-write open and an append
    are staged; changing an existing object still needs ``--allow-overwrite``, since it replaces it.
    Write-only opens that truncate keep the fast path, whose sequential writes need no copy.
    """
    read_write = flags & os.O_ACCMODE == os.O_RDWR
    appends = bool(flags & os.O_APPEND)
    if not exists:
        return OpenPlan.STAGE_EMPTY if staged_writes and (read_write or appends) else OpenPlan.STREAM
    if flags & os.O_TRUNC:
        # Emptied first: write-only writes (appends included) then come in order, as the fast path needs.
        if not allow_overwrite:
            return Refusal(errno.EPERM, ALLOW_OVERWRITE)
        return OpenPlan.STAGE_EMPTY if staged_writes and read_write else OpenPlan.STREAM
    if not staged_writes:
        return Refusal(errno.EPERM, STAGED_WRITES)
    if not allow_overwrite:
        return Refusal(errno.EPERM, ALLOW_OVERWRITE)
    return OpenPlan.STAGE_COPY


def truncate_refusal(*, staged_writes: bool, allow_overwrite: bool) -> Refusal | None:
    """Whether ``truncate`` of a closed, existing object may go through a staged copy."""
    if not staged_writes:
        return Refusal(errno.EPERM, STAGED_WRITES)
    if not allow_overwrite:
        return Refusal(errno.EPERM, ALLOW_OVERWRITE)
    return None


def within_limit(size: int, limit: int) -> bool:
    """Whether a file of ``size`` bytes may be staged under ``--max-staged-file-size`` (``limit`` bytes)."""
    return 0 <= size <= limit


class StagingArea:
    """The directory of one mount's staged copies, and the threads that read and write them."""

    def __init__(self, directory: str, limit: int) -> None:
        self.directory = directory
        self.limit = limit
        self._executor = ThreadPoolExecutor(STAGING_THREADS, thread_name_prefix="s3csi-staging")

    @classmethod
    def create(cls, parent: str, limit: int) -> StagingArea:
        """A fresh sub-directory of ``parent`` (mkdtemp: mode 0700, a name nobody could have planted)."""
        return cls(tempfile.mkdtemp(prefix=STAGING_DIR_PREFIX, dir=parent), limit)

    async def new_copy(self, *, stored: bool, dirty: bool) -> StagedFile:
        """An empty copy. ``stored``: S3 holds a version of the file already; ``dirty``: the copy differs
        from it (a new file, or a truncated one) and is uploaded at the next close or fsync."""
        fd = await self.run(self._anonymous_file)
        return StagedFile(self, fd, stored=stored, dirty=dirty)

    def _anonymous_file(self) -> int:
        """A 0600 file with no name, so a crash leaves nothing behind. Opened relative to the directory's
        own path as given, never made absolute: a mounter whose cache is named relative to its working
        directory may not be able to search that directory's parents (the local runtime's state dir)."""
        try:
            return os.open(self.directory, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR):
                raise
        # A file system without O_TMPFILE: a fresh name, unlinked at once.
        directory = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            while True:
                name = f"copy-{secrets.token_hex(8)}"
                try:
                    fd = os.open(
                        name, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_CLOEXEC, 0o600, dir_fd=directory
                    )
                except FileExistsError:
                    continue
                os.unlink(name, dir_fd=directory)
                return fd
        finally:
            os.close(directory)

    async def run(self, call: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._remove)

    def _remove(self) -> None:
        self._executor.shutdown(wait=True)
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass(eq=False)
class StagedFile:
    """The staged copy of one file, shared by every handle open on it (readers see the writers' bytes)."""

    area: StagingArea
    fd: int
    stored: bool
    dirty: bool
    size: int = 0
    handles: int = 0
    # Held while the copy is uploaded: a write waits for it, so what is uploaded is one state of the file.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def fill(
        self,
        client: S3Client,
        bucket: str,
        key: str,
        *,
        size: int,
        part_size: int,
        requests: asyncio.Semaphore,
    ) -> None:
        """The first ``size`` bytes of the object into the copy, in ranged GETs of ``part_size``."""
        parts = asyncio.Semaphore(DOWNLOAD_PARTS_IN_FLIGHT)

        async def part(start: int) -> None:
            end = min(start + part_size, size)
            async with parts:
                async with requests:
                    data = await client.get_object(bucket, key, start=start, end=end)
                if len(data) != end - start:
                    raise ShortRead(
                        f"GetObject s3://{bucket}/{key}: {len(data)} bytes at {start}, expected {end - start}"
                        " (the object changed while it was copied)",
                        code="ShortRead",
                        bucket=bucket,
                        key=key,
                    )
                await self.area.run(os.pwrite, self.fd, data, start)

        tasks = [asyncio.create_task(part(start)) for start in range(0, size, part_size)]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
        self.size = size

    async def read(self, offset: int, size: int) -> bytes:
        return await self.area.run(os.pread, self.fd, size, offset)

    async def write(self, offset: int, data: bytes, *, append: bool = False) -> int:
        """Write at ``offset``, or with ``append`` at the copy's end (O_APPEND: the end is the file's,
        whatever size the kernel believed when it computed ``offset``)."""
        async with self.lock:
            if append:
                offset = self.size
            if not within_limit(offset + len(data), self.area.limit):
                raise fail(errno.EFBIG)
            written: int = await self.area.run(os.pwrite, self.fd, data, offset)
            self.size = max(self.size, offset + written)
            self.dirty = True
        return written

    async def truncate(self, size: int) -> None:
        if not within_limit(size, self.area.limit):
            raise fail(errno.EFBIG)
        async with self.lock:
            await self.area.run(os.ftruncate, self.fd, size)
            self.size = size
            self.dirty = True

    async def upload(self, writer: ObjectWriter) -> Completed | None:
        """Upload the whole copy through ``writer`` (one PutObject, or a multipart upload of its parts)
        when it has changes S3 does not have; None when it has none."""
        async with self.lock:
            if not self.dirty:
                return None
            try:
                for offset in range(0, self.size, writer.part_size):
                    chunk = await self.read(offset, min(writer.part_size, self.size - offset))
                    await writer.write(offset, chunk)
                done = await writer.complete()
            except BaseException:
                await writer.abort()
                raise
            self.dirty, self.stored = False, True
            return done

    def close(self) -> None:
        os.close(self.fd)
