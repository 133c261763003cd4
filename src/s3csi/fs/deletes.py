"""The second half of a rename, DeleteObject of the old key, finishing after ``rename`` has returned.

A rename is CopyObject then DeleteObject (docs/filesystem.md: not atomic). The new name is in S3 once the
copy is made, and this mount shows the old name gone at once; only S3 still holds the old key until the
delete lands. Waiting for it cost every ``rsync -a`` file a third round trip. So the delete runs on its
own, and whatever could see the old key waits for it first: a listing or lookup in S3 of a prefix that
holds it, and any write of that key again (create, symbolic link, rename onto it). At unmount every delete
is waited for; one that failed is logged, leaves the old key in S3 (as a failed delete always did), and
makes the mounter exit 1.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from s3csi.s3.errors import S3Error
from s3csi.tasks import background

log = logging.getLogger(__name__)


class PendingDeletes:
    """The deletes under way, by key (few at a time: one per rename not yet landed)."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[bool]] = {}
        # Keys whose delete failed (reported again at unmount).
        self._failed: list[str] = []

    def start(self, key: str, delete: Callable[[], Awaitable[None]], where: str) -> None:
        """Run ``delete`` of ``key`` (``where`` names it in the log) in the background."""

        async def run() -> bool:
            try:
                await delete()
            except S3Error as exc:
                log.error("rename: %s was copied but could not be deleted, both names exist: %s", where, exc)
                self._failed.append(key)
                return False
            return True

        task = background(run(), name=f"delete {where}")
        self._tasks[key] = task
        task.add_done_callback(lambda done: self._forget(key, done))

    def _forget(self, key: str, done: asyncio.Task[bool]) -> None:
        if self._tasks.get(key) is done:
            del self._tasks[key]

    async def settled(self, key: str) -> None:
        """Once no delete of ``key`` is under way."""
        task = self._tasks.get(key)
        if task is not None:
            await asyncio.wait([task])

    async def settled_under(self, prefix: str) -> None:
        """Once no delete of a key starting with ``prefix`` is under way."""
        tasks = [task for key, task in self._tasks.items() if key.startswith(prefix)]
        if tasks:
            await asyncio.wait(tasks)

    async def finish(self, timeout_s: float) -> list[str]:
        """At unmount: wait for every delete (at most ``timeout_s``); the keys not deleted, each logged."""
        tasks = dict(self._tasks)
        if tasks:
            await asyncio.wait(tasks.values(), timeout=timeout_s)
        failed = list(self._failed)
        for key, task in tasks.items():
            if not task.done():
                log.error("rename: the delete of the old name %s did not finish before unmount", key)
                failed.append(key)
            elif (task.cancelled() or task.exception() is not None) and key not in failed:
                failed.append(key)  # its death was logged (s3csi.tasks)
        return failed
