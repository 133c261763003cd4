"""Reading a directory: S3's pages turned into entries (the directory wins, across pages too), and
readdir's offsets, through S3Operations against a stand-in listing: every name once, however the kernel
splits and resumes the read."""

from __future__ import annotations

import asyncio
import errno
from typing import Any

import pyfuse3
import pytest

from s3csi.fs.inodes import Kind
from s3csi.fs.listing import DirectoryRead, DirectoryWins, Entry
from s3csi.fs.lookups import DirectoryKnowledge
from s3csi.fs.operations import S3Operations
from s3csi.fs.settings import FsSettings
from s3csi.s3.errors import S3Unavailable
from s3csi.s3.wire import ListPage, ObjectInfo
from tests.unit.test_fs_lookup_listing import ListingClient


def obj(key: str) -> ObjectInfo:
    return ObjectInfo(key, len(key), '"e"', 0.0)


def shown(entries: list[Entry]) -> list[tuple[str, str]]:
    return [(entry.name, entry.kind.value) for entry in entries]


# Pages of (objects, prefixes) of a listing of "d/"; the entries each page decides, then those of the end.
ORDER_CASES = [
    ("plain", [(["d/a", "d/b"], ["d/c/"])], [[("a", "file"), ("b", "file"), ("c", "directory")], []]),
    (
        "object and prefix of one name: the directory",
        [(["d/x", "d/x-1", "d/x.txt"], ["d/x/"])],
        [[("x-1", "file"), ("x.txt", "file"), ("x", "directory")], []],
    ),
    (
        "the prefix on the next page",
        [(["d/x", "d/x.txt"], []), ([], ["d/x/"])],
        [[], [("x.txt", "file"), ("x", "directory")], []],
    ),
    (
        "an object held to the end of the listing",
        [(["d/a", "d/x"], []), (["d/x.txt"], [])],
        [[("a", "file")], [], [("x.txt", "file"), ("x", "file")]],
    ),
    (
        "nested holds release innermost first",
        [(["d/x", "d/x-", "d/x-a"], ["d/x-/"]), (["d/y"], [])],
        [[("x-", "directory")], [("x-a", "file"), ("x", "file")], [("y", "file")]],
    ),
    (
        "hidden names: the marker object, an empty prefix",
        [(["d/", "d/a"], ["d//"])],
        [[], [("a", "file")]],
    ),
]


@pytest.mark.parametrize(("pages", "expected"), [c[1:] for c in ORDER_CASES], ids=[c[0] for c in ORDER_CASES])
def test_pages_become_entries_each_name_once(
    pages: list[tuple[list[str], list[str]]], expected: list[list[tuple[str, str]]]
) -> None:
    order = DirectoryWins("d/")
    decided = [shown(order.page([obj(k) for k in keys], prefixes)) for keys, prefixes in pages]
    assert [*decided, shown(order.end())] == expected


def test_a_read_shows_local_names_first_and_stops_keeping_names_past_the_cache_limit() -> None:
    read = DirectoryRead(5, "d/", cache_limit=3)
    read.begin(["new", "made"], now=7.0)
    assert read.names == ["made", "new"] and read.listed_at == 7.0
    assert read.needs_page(2) and not read.needs_page(1)
    first = read.take_page([obj("d/a"), obj("d/new")], [], token="t1")
    assert shown(first) == [("a", "file")]  # "new" waits for the listing to pass "new/"
    assert read.remote == ["a"] and read.token == "t1" and not read.complete
    last = read.take_page([obj("d/p"), obj("d/q")], [], token=None)
    assert shown(last) == [("p", "file"), ("q", "file")]  # "new" is shown once: the local one
    assert read.complete and read.remote is None  # four names: more than the cache keeps
    assert not read.needs_page(10)


# ---- readdir through S3Operations, with pyfuse3's reply buffer stood in for --------------------------------


# "." and ".." come first in every read, at offsets 0 and 1: the names of the directory follow.
DOTS = 2


class ReplyBuffer:
    """What ``pyfuse3.readdir_reply`` fills: at most ``room`` entries per readdir call besides the dots,
    which are kept apart."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.entries: list[tuple[str, int, int]] = []  # (name, inode, next offset)
        self.dots: list[tuple[str, int, int]] = []

    def reply(self, token: object, name: bytes, attrs: pyfuse3.EntryAttributes, next_id: int) -> bool:
        if name in (b".", b".."):
            self.dots.append((name.decode(), attrs.st_ino, next_id))
            return True
        if len(self.entries) == self.room:
            return False
        self.entries.append((name.decode(), attrs.st_ino, next_id))
        return True


def mount(keys: list[str], ttl: float = 300.0) -> tuple[S3Operations, ListingClient]:
    client = ListingClient(keys)
    settings = FsSettings(bucket="b", mountpoint="/mnt", metadata_ttl_s=ttl, negative_metadata_ttl_s=ttl)
    return S3Operations(settings, client), client  # type: ignore[arg-type]


async def readdir(
    ops: S3Operations, fh: int, offset: int, room: int, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[str, int, int]]:
    buffer = ReplyBuffer(room)
    monkeypatch.setattr(pyfuse3, "readdir_reply", buffer.reply)
    await ops.readdir(fh, offset, None)  # type: ignore[arg-type]
    return buffer.entries


async def read_all(
    ops: S3Operations, fh: int, room: int, monkeypatch: pytest.MonkeyPatch, start: int = 0
) -> list[tuple[str, int, int]]:
    entries: list[tuple[str, int, int]] = []
    offset = start
    while batch := await readdir(ops, fh, offset, room, monkeypatch):
        entries += batch
        offset = batch[-1][2]
    return entries


async def lookup_ino(ops: S3Operations, parent: int, name: str) -> int:
    return int((await ops.lookup(parent, name.encode())).st_ino)


def test_a_large_directory_is_listed_a_page_at_a_time_each_name_once(monkeypatch: pytest.MonkeyPatch) -> None:
    names = [f"f{i:05d}" for i in range(4500)]

    async def scenario() -> None:
        ops, client = mount([f"big/{n}" for n in names] + ["big/sub/x"])
        big = await lookup_ino(ops, 1, "big")
        client.calls.clear()
        fh = await ops.opendir(big, None)
        first = await readdir(ops, fh, 0, 30, monkeypatch)
        assert client.calls == ["big/"]  # one page for the first replies, not the whole directory
        rest = await read_all(ops, fh, 30, monkeypatch, start=first[-1][2])
        listed = [name for name, _, _ in first + rest]
        assert sorted(listed) == sorted([*names, "sub"]) and len(listed) == len(set(listed))
        assert client.calls == ["big/"] * 5
        offsets = [offset for _, _, offset in first + rest]
        assert offsets == list(range(DOTS + 1, DOTS + len(listed) + 1))
        # More names than a listing is kept for: lookups ask S3 for the one name, not the listing.
        assert ops.table.get(big).listing.too_large_until > 0  # type: ignore[union-attr]
        await ops.releasedir(fh)
        assert fh not in ops.listings

    asyncio.run(scenario())


def test_a_read_resumed_at_any_offset_goes_on_from_there(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [f"d/f{i:04d}" for i in range(2500)]

    async def scenario() -> None:
        ops, client = mount(keys, ttl=0.0)  # every listing cache and attribute expired at once
        d = await lookup_ino(ops, 1, "d")
        fh = await ops.opendir(d, None)
        whole = await read_all(ops, fh, 97, monkeypatch)
        assert len(whole) == 2500
        client.calls.clear()
        for offset in (0, 1, 999, 1000, 1001, 2400, 2499):
            again = await read_all(ops, fh, 50, monkeypatch, start=DOTS + offset)
            assert [name for name, _, _ in again] == [name for name, _, _ in whole[offset:]]
        assert await readdir(ops, fh, DOTS + 2500, 50, monkeypatch) == []
        assert client.calls == []  # the read keeps its names: S3 is not listed again

    asyncio.run(scenario())


def test_a_resumed_read_replaces_entries_the_kernel_forgot_and_skips_deleted_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> None:
        ops, client = mount(["d/a", "d/b", "d/c"])
        d = await lookup_ino(ops, 1, "d")
        fh = await ops.opendir(d, None)
        whole = await read_all(ops, fh, 10, monkeypatch)
        assert [name for name, _, _ in whole] == ["a", "b", "c"]
        await ops.forget([(ino, 1) for _, ino, _ in whole])
        assert ops.table.children(d) == []
        client.keys.remove("d/b")
        again = await read_all(ops, fh, 10, monkeypatch, start=0)
        assert [name for name, _, _ in again] == ["a", "c"]

    asyncio.run(scenario())


def test_two_reads_of_one_directory_interleave_without_mixing(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [f"d/f{i:04d}" for i in range(2100)]

    async def scenario() -> None:
        ops, _ = mount(keys)
        d = await lookup_ino(ops, 1, "d")
        one, two = await ops.opendir(d, None), await ops.opendir(d, None)
        got: dict[int, list[str]] = {one: [], two: []}
        offsets = {one: 0, two: 0}
        while any(offset is not None for offset in offsets.values()):
            for fh in (one, two):
                if offsets[fh] is None:
                    continue
                batch = await readdir(ops, fh, offsets[fh], 40 if fh == one else 300, monkeypatch)
                got[fh] += [name for name, _, _ in batch]
                offsets[fh] = batch[-1][2] if batch else None  # type: ignore[assignment]
        assert got[one] == got[two] and sorted(got[one]) == [k[2:] for k in keys]

    asyncio.run(scenario())


def test_a_small_directory_listed_by_readdir_answers_lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        ops, client = mount(["d/a", "d/b", "d/x", "d/x/inner"])
        d = await lookup_ino(ops, 1, "d")
        fh = await ops.opendir(d, None)
        listed = await read_all(ops, fh, 2, monkeypatch)
        assert [(name, Kind.DIRECTORY if name == "x" else Kind.FILE) for name, _, _ in listed] == [
            ("a", Kind.FILE),
            ("b", Kind.FILE),
            ("x", Kind.DIRECTORY),
        ]
        knowledge = ops.table.get(d).listing  # type: ignore[union-attr]
        assert knowledge.names == ("a", "b", "x") and knowledge.absent_until > 0
        client.calls.clear()
        assert await lookup_ino(ops, d, "b") and not await lookup_ino(ops, d, "nope")
        assert client.calls == []
        assert isinstance(knowledge, DirectoryKnowledge)

    asyncio.run(scenario())


def test_names_made_through_the_mount_are_shown_once(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        ops, client = mount(["d/a", "d/z"])
        d = await lookup_ino(ops, 1, "d")
        await ops.mkdir(d, b"made", 0o755, None)
        await ops.mkdir(d, b"empty", 0o755, None)
        client.keys = sorted([*client.keys, "d/made/x"])  # S3 has it too now
        fh = await ops.opendir(d, None)
        listed = [name for name, _, _ in await read_all(ops, fh, 10, monkeypatch)]
        assert listed == ["empty", "made", "a", "z"]

    asyncio.run(scenario())


class FailingPages(ListingClient):
    """The listing stand-in, failing every page after the first while ``failing`` is set."""

    failing = True

    async def list_objects_v2(self, bucket: str, **query: Any) -> ListPage:
        if self.failing and query.get("continuation_token"):
            raise S3Unavailable("ListObjectsV2: connection refused", code="ConnectionError")
        return await super().list_objects_v2(bucket, **query)


def test_a_page_that_fails_loses_no_entry_already_in_the_reply(monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [f"d/f{i:04d}" for i in range(1500)]

    async def scenario() -> None:
        ops, _ = mount(keys)
        client = FailingPages(keys)
        ops.client = client  # type: ignore[assignment]
        d = await lookup_ino(ops, 1, "d")
        fh = await ops.opendir(d, None)
        first = await readdir(ops, fh, 0, 5000, monkeypatch)
        # What the first page decided (its last object waits for the next page), not an error for all.
        assert len(first) == 999
        with pytest.raises(pyfuse3.FUSEError) as failed:
            await readdir(ops, fh, DOTS + 999, 5000, monkeypatch)
        assert failed.value.errno == errno.EIO
        client.failing = False
        rest = await readdir(ops, fh, DOTS + 999, 5000, monkeypatch)
        assert [name for name, _, _ in first + rest] == [k[2:] for k in keys]
        # Each entry handed to the kernel once holds one lookup count, whatever failed in between.
        assert {ops.table.child(d, k[2:]).lookups for k in keys} == {1}  # type: ignore[union-attr]

    asyncio.run(scenario())


def test_a_directory_forgotten_while_a_lookup_lists_it_leaves_nothing_behind() -> None:
    async def scenario() -> None:
        ops, client = mount([f"d/f{i}" for i in range(10)])
        d = await lookup_ino(ops, 1, "d")
        f1 = await lookup_ino(ops, d, "f1")  # the first lookup by name; the next lists the directory
        await ops.forget([(f1, 1)])
        gate = asyncio.Event()
        listed = client.list_objects_v2

        async def held(bucket: str, **query: Any) -> ListPage:
            await gate.wait()
            return await listed(bucket, **query)

        client.list_objects_v2 = held  # type: ignore[method-assign]
        lookup = asyncio.create_task(ops.lookup(d, b"f2"))
        for _ in range(100):  # a few turns of the loop until the lookup has started the listing
            if d in ops._lookup_listings:
                break
            await asyncio.sleep(0)
        listing = ops._lookup_listings[d]
        lookup.cancel()  # the request interrupted; the kernel then forgets the directory
        await ops.forget([(d, 1)])
        assert ops.table.get(d) is None
        gate.set()
        assert await listing is False
        assert len(ops.table) == 1  # the root: no children of the forgotten directory

    asyncio.run(scenario())


@pytest.mark.parametrize(("start", "dots"), [(0, [".", ".."]), (1, [".."]), (2, [])], ids=["0", "1", "2"])
def test_dot_entries_come_first_and_a_read_resumes_after_them(
    monkeypatch: pytest.MonkeyPatch, start: int, dots: list[str]
) -> None:
    async def scenario() -> None:
        ops, _ = mount(["d/a", "d/b"])
        d = await lookup_ino(ops, 1, "d")
        fh = await ops.opendir(d, None)
        buffer = ReplyBuffer(10)
        monkeypatch.setattr(pyfuse3, "readdir_reply", buffer.reply)
        await ops.readdir(fh, start, None)  # type: ignore[arg-type]
        assert buffer.dots == [
            (n, d if n == "." else 1, i + 1) for i, n in enumerate([".", ".."]) if i >= start
        ]
        assert [name for name, _, _ in buffer.dots] == dots
        assert [(name, offset) for name, _, offset in buffer.entries] == [("a", 3), ("b", 4)]
        # The kernel takes no lookup count for the dots: none is added.
        assert ops.table.get(d).lookups == 1  # type: ignore[union-attr]

    asyncio.run(scenario())
