"""S3Operations' lookups against a stand-in for the S3 client's listing: how many ListObjectsV2 pages
each costs, for a directory that fits the lookup's page budget and one that does not."""

from __future__ import annotations

import asyncio
import bisect

import pyfuse3

from s3csi.fs.lookups import LOOKUP_LIST_PAGES
from s3csi.fs.operations import S3Operations
from s3csi.fs.settings import FsSettings
from s3csi.s3.wire import ListPage, ObjectInfo

PAGE = 1000


class ListingClient:
    def __init__(self, keys: list[str]) -> None:
        self.keys = sorted(keys)
        self.calls: list[str] = []
        # What a lookup of an object asks for its stored attributes (a HEAD, or a GET of a small
        # object): counted apart from the listings.
        self.heads: list[str] = []

    async def list_objects_v2(
        self,
        bucket: str,
        *,
        prefix: str = "",
        delimiter: str = "",
        max_keys: int = PAGE,
        continuation_token: str | None = None,
    ) -> ListPage:
        self.calls.append(prefix)
        start = int(continuation_token) if continuation_token else bisect.bisect_left(self.keys, prefix)
        objects: list[ObjectInfo] = []
        prefixes: list[str] = []
        index = start
        while (
            index < len(self.keys)
            and self.keys[index].startswith(prefix)
            and len(objects) + len(prefixes) < max_keys
        ):
            key = self.keys[index]
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            if cut >= 0:
                common = key[: cut + 1]
                prefixes.append(common)
                while index < len(self.keys) and self.keys[index].startswith(common):
                    index += 1
                continue
            objects.append(ObjectInfo(key, len(key), '"e"', 0.0))
            index += 1
        more = index < len(self.keys) and self.keys[index].startswith(prefix)
        return ListPage(objects, prefixes, str(index) if more else None)

    async def head_object(self, bucket: str, key: str) -> ObjectInfo:
        self.heads.append(key)
        return ObjectInfo(key, len(key), '"e"', 0.0)

    async def get_whole_object(self, bucket: str, key: str) -> tuple[bytes, ObjectInfo]:
        """A small object's lookup fetches it whole (its attributes come with it): counted as a HEAD."""
        self.heads.append(key)
        return key.encode(), ObjectInfo(key, len(key), '"e"', 0.0)


def operations(keys: list[str]) -> tuple[S3Operations, ListingClient]:
    client = ListingClient(keys)
    settings = FsSettings(
        bucket="bucket", mountpoint="/mnt", metadata_ttl_s=300.0, negative_metadata_ttl_s=300.0
    )
    return S3Operations(settings, client), client  # type: ignore[arg-type]


async def found(ops: S3Operations, parent: int, name: str) -> int:
    """The inode number of ``name`` (0: no such entry)."""
    attributes: pyfuse3.EntryAttributes = await ops.lookup(parent, name.encode())
    return int(attributes.st_ino)


def test_a_directory_is_listed_once_for_its_lookups_hits_and_misses() -> None:
    async def scenario() -> None:
        ops, client = operations([f"d/f{i:04d}" for i in range(1500)] + ["d/sub/x", "e"])
        d = await found(ops, 1, "d")
        assert d and client.calls == ["d"]  # the first name asked in the root: that name
        assert await found(ops, d, "f0000")
        assert client.calls[1:] == ["d/f0000"]
        client.calls.clear()
        results = await asyncio.gather(*(found(ops, d, name) for name in ("f0001", "f1499", "sub", "nope")))
        assert [bool(r) for r in results] == [True, True, True, False]
        assert client.calls == ["d/", "d/"]  # one listing of two pages, shared by the lookups
        client.calls.clear()
        assert await found(ops, d, "f0700") and not await found(ops, d, "f9999")
        assert client.calls == []
        # Each object looked up is asked for once for its attributes; a name known already is not.
        assert client.heads == ["d/f0000", "d/f0001", "d/f1499", "d/f0700"]
        assert await found(ops, d, "f0700") and client.heads.count("d/f0700") == 1

    asyncio.run(scenario())


def test_a_directory_too_large_to_list_is_asked_by_name() -> None:
    async def scenario() -> None:
        ops, client = operations([f"big/f{i:05d}" for i in range(LOOKUP_LIST_PAGES * PAGE + 1)])
        big = await found(ops, 1, "big")
        assert await found(ops, big, "f00000")
        client.calls.clear()
        assert await found(ops, big, "f04000")  # past the pages a lookup may list
        assert client.calls == ["big/"] * LOOKUP_LIST_PAGES + ["big/f04000"]
        client.calls.clear()
        assert await found(ops, big, "f00001")
        assert not await found(ops, big, "missing")
        assert client.calls == ["big/f00001", "big/missing"]  # not listed again while known too large

    asyncio.run(scenario())
