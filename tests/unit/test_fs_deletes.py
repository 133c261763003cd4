"""A rename's delete finishing in the background (s3csi.fs.deletes): who waits for it, what unmount says."""

from __future__ import annotations

import asyncio

from s3csi.fs.deletes import PendingDeletes
from s3csi.s3.errors import S3Unavailable


def test_lookups_and_writes_of_the_old_key_wait_for_its_delete_and_others_do_not() -> None:
    async def scenario() -> list[str]:
        deletes = PendingDeletes()
        release = asyncio.Event()
        events: list[str] = []

        async def delete() -> None:
            await release.wait()
            events.append("deleted")

        deletes.start("dir/.f.tmp", delete, "s3://b/dir/.f.tmp")
        await deletes.settled("dir/f")  # another key: no wait
        await deletes.settled_under("other/")
        events.append("unrelated")
        waiting = [
            asyncio.create_task(deletes.settled("dir/.f.tmp")),
            asyncio.create_task(deletes.settled_under("dir/")),
            asyncio.create_task(deletes.settled_under("")),
        ]
        await asyncio.sleep(0)
        assert not any(task.done() for task in waiting)
        release.set()
        await asyncio.gather(*waiting)
        events.append("waited")
        assert await deletes.finish(1.0) == []
        return events

    assert asyncio.run(scenario()) == ["unrelated", "deleted", "waited"]


def test_unmount_reports_deletes_that_failed_or_did_not_finish() -> None:
    async def scenario() -> list[str]:
        deletes = PendingDeletes()

        async def fails() -> None:
            raise S3Unavailable("DeleteObject: gone", code="ConnectionError")

        async def hangs() -> None:
            await asyncio.Event().wait()

        deletes.start("a", fails, "s3://b/a")
        deletes.start("b", hangs, "s3://b/b")
        await deletes.settled("a")  # a failure is waited for like a success
        return sorted(await deletes.finish(0.05))

    assert asyncio.run(scenario()) == ["a", "b"]
