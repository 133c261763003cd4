"""The second half of a rename, deleting the old key, finishing after ``rename`` has returned.

A rename is CopyObject then a delete (docs/filesystem.md: not atomic). The new name is in S3 once the
copy is made, and this mount shows the old name gone at once; only S3 still holds the old key until the
delete lands. Waiting for it cost every ``rsync -a`` file a third round trip. So the delete runs on its
own, and whatever could see the old key waits for it first: a listing or lookup in S3 of a prefix that
holds it, and any write of that key again (create, symbolic link, rename onto it). At unmount every delete
is waited for; one that failed is logged, leaves the old key in S3 (as a failed delete always did), and
makes the mounter exit 1.

The deletes go out in batches: one request at a time, carrying every key that waited for it (after
``linger_s``, so that a tool renaming file after file fills a batch), up to ``batch_size`` keys. A tree
of 1,000 renamed files then costs S3 a few DeleteObjects instead of 1,000 DeleteObject requests, which
on a store that is busy with the copies themselves is what the renames wait for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from s3csi.s3.errors import S3Error
from s3csi.tasks import background

log = logging.getLogger(__name__)

# How long the first delete of a batch waits for others to join it.
DELETE_LINGER_S = 0.05

# Deletes the keys it is given; returns why, for each key S3 did not delete.
DeleteBatch = Callable[[list[str]], Awaitable[Mapping[str, str]]]


@dataclass
class _Delete:
    key: str
    where: str  # the key as the log names it (s3://bucket/key)
    done: asyncio.Future[bool]  # True once deleted, False once it failed


class PendingDeletes:
    """The deletes not yet landed, by key."""

    def __init__(self, delete: DeleteBatch, *, batch_size: int, linger_s: float = DELETE_LINGER_S) -> None:
        self._delete = delete
        self._batch_size = batch_size
        self._linger_s = linger_s
        self._queued: list[_Delete] = []
        # The latest delete of each key not yet landed, queued or in flight.
        self._pending: dict[str, _Delete] = {}
        self._sender: asyncio.Task[None] | None = None
        # Keys whose delete failed (reported again at unmount).
        self._failed: list[str] = []

    def start(self, key: str, where: str) -> None:
        """Delete ``key`` (``where`` names it in the log) in the background."""
        pending = _Delete(key, where, asyncio.get_running_loop().create_future())
        self._pending[key] = pending
        self._queued.append(pending)
        if self._sender is None:
            self._sender = background(self._send(), name="rename deletes")

    async def _send(self) -> None:
        batch: list[_Delete] = []
        try:
            while self._queued:
                if len(self._queued) < self._batch_size:
                    await asyncio.sleep(self._linger_s)  # a full batch goes at once
                batch, self._queued = self._queued[: self._batch_size], self._queued[self._batch_size :]
                try:
                    failures = await self._delete([pending.key for pending in batch])
                except S3Error as exc:
                    failures = {pending.key: str(exc) for pending in batch}
                for pending in batch:
                    self._land(pending, failures.get(pending.key))
                batch = []
        finally:
            self._sender = None
            # Only a bug or the loop's end stops this early (a death is logged): nothing may wait forever.
            for pending in [*batch, *self._queued]:
                self._land(pending, "the task sending the deletes ended")
            self._queued = []

    def _land(self, pending: _Delete, failure: str | None) -> None:
        if failure is not None:
            log.error(
                "rename: %s was copied but could not be deleted, both names exist: %s", pending.where, failure
            )
            self._failed.append(pending.key)
        if not pending.done.done():
            pending.done.set_result(failure is None)
        if self._pending.get(pending.key) is pending:
            del self._pending[pending.key]

    async def settled(self, key: str) -> None:
        """Once no delete of ``key`` is under way."""
        pending = self._pending.get(key)
        if pending is not None:
            await asyncio.wait([pending.done])

    async def settled_under(self, prefix: str) -> None:
        """Once no delete of a key starting with ``prefix`` is under way."""
        waits = [pending.done for key, pending in self._pending.items() if key.startswith(prefix)]
        if waits:
            await asyncio.wait(waits)

    async def finish(self, timeout_s: float) -> list[str]:
        """At unmount: wait for every delete (at most ``timeout_s``); the keys not deleted, each logged."""
        pending = list(self._pending.values())
        if pending:
            await asyncio.wait([each.done for each in pending], timeout=timeout_s)
        failed = list(self._failed)
        for each in pending:
            if not each.done.done():
                log.error("rename: the delete of the old name %s did not finish before unmount", each.where)
                failed.append(each.key)
        return failed
