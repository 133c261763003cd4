"""A rename's delete finishing in the background, in batches (s3csi.fs.deletes): who waits for it, what goes
in one request, what unmount says."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from s3csi.fs.deletes import PendingDeletes
from s3csi.s3.errors import S3Unavailable


class Store:
    """Records each batch it is asked to delete; answers once ``release`` is set (at once when None)."""

    def __init__(
        self, *, release: asyncio.Event | None = None, refuse: Mapping[str, str] | None = None
    ) -> None:
        self.batches: list[list[str]] = []
        self.deleted: list[str] = []
        self.release = release
        self.refuse = dict(refuse or {})
        self.asked = asyncio.Event()

    async def delete(self, keys: list[str]) -> Mapping[str, str]:
        self.batches.append(keys)
        self.asked.set()
        if self.release is not None:
            await self.release.wait()
        self.deleted += [key for key in keys if key not in self.refuse]
        return {key: why for key, why in self.refuse.items() if key in keys}


def test_lookups_and_writes_of_the_old_key_wait_for_its_delete_and_others_do_not() -> None:
    async def scenario() -> list[str]:
        store = Store(release=asyncio.Event())
        deletes = PendingDeletes(store.delete, batch_size=1000, linger_s=0)
        events: list[str] = []
        deletes.start("dir/.f.tmp", "s3://b/dir/.f.tmp")
        await deletes.settled("dir/f")  # another key: no wait
        await deletes.settled_under("other/")
        events.append("unrelated")
        waiting = [
            asyncio.create_task(deletes.settled("dir/.f.tmp")),
            asyncio.create_task(deletes.settled_under("dir/")),
            asyncio.create_task(deletes.settled_under("")),
        ]
        await asyncio.sleep(0.01)
        assert not any(task.done() for task in waiting)
        assert store.release is not None
        store.release.set()
        await asyncio.gather(*waiting)
        events.append(f"waited, {store.deleted} deleted")
        assert await deletes.finish(1.0) == []
        return events

    assert asyncio.run(scenario()) == ["unrelated", "waited, ['dir/.f.tmp'] deleted"]


def test_renames_in_a_row_share_one_request_each_batch_at_most_batch_size() -> None:
    async def scenario() -> Store:
        store = Store()
        deletes = PendingDeletes(store.delete, batch_size=3, linger_s=0.01)
        for index in range(7):
            deletes.start(f"k{index}", f"s3://b/k{index}")
        await deletes.settled_under("k")
        deletes.start("k7", "s3://b/k7")  # after the others landed: a batch of its own
        await deletes.settled("k7")
        assert await deletes.finish(1.0) == []
        return store

    store = asyncio.run(scenario())
    assert store.batches == [["k0", "k1", "k2"], ["k3", "k4", "k5"], ["k6"], ["k7"]]


def test_a_key_renamed_again_while_its_delete_is_in_flight_is_deleted_again_after_it() -> None:
    async def scenario() -> Store:
        store = Store(release=asyncio.Event())
        deletes = PendingDeletes(store.delete, batch_size=1000, linger_s=0)
        deletes.start("a", "s3://b/a")
        await store.asked.wait()  # the first delete is in flight
        deletes.start("a", "s3://b/a")  # made again and renamed away again meanwhile
        assert store.release is not None
        store.release.set()
        await deletes.settled("a")
        assert await deletes.finish(1.0) == []
        return store

    assert asyncio.run(scenario()).batches == [["a"], ["a"]]


@pytest.mark.parametrize("whole_request_fails", [False, True])
def test_unmount_reports_deletes_that_failed_or_did_not_finish(
    whole_request_fails: bool, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> list[str]:
        store = Store(refuse={"a": "AccessDenied: no"})

        async def delete(keys: list[str]) -> Mapping[str, str]:
            if whole_request_fails:
                raise S3Unavailable("DeleteObjects: gone", code="ConnectionError")
            return await store.delete(keys)

        deletes = PendingDeletes(delete, batch_size=1000, linger_s=0)
        deletes.start("a", "s3://b/a")
        deletes.start("c", "s3://b/c")
        await deletes.settled("a")  # a failure is waited for like a success

        async def never(keys: list[str]) -> Mapping[str, str]:
            await asyncio.Event().wait()
            return {}

        hanging = PendingDeletes(never, batch_size=1000, linger_s=0)
        hanging.start("b", "s3://b/b")
        return sorted(await deletes.finish(0.05) + await hanging.finish(0.05))

    expected = ["a", "b", "c"] if whole_request_fails else ["a", "b"]
    assert asyncio.run(scenario()) == expected
    assert "s3://b/a was copied but could not be deleted, both names exist" in caplog.text
    assert "the delete of the old name s3://b/b did not finish before unmount" in caplog.text
