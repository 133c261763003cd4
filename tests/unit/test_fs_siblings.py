from __future__ import annotations

import asyncio

import pytest

from s3csi.fs.siblings import SiblingReadAhead, siblings_to_fetch

NAMES = ("a", "b", "c", "d", "e", "f")


@pytest.mark.parametrize(
    ("previous", "opened", "expected"),
    [
        (None, "a", []),  # the first open in the directory
        ("a", "b", ["c", "d", "e"]),
        ("a", "c", ["d", "e", "f"]),  # one name skipped (a sub-directory, a large file)
        ("a", "d", []),  # a jump: no scan in order
        ("c", "b", []),  # backwards
        ("b", "b", []),  # the same file again
        ("e", "f", []),  # the last one
        ("a", "zz", []),  # not in the listing (made after it)
        ("gone", "b", []),
    ],
)
def test_siblings_to_fetch(previous: str | None, opened: str, expected: list[str]) -> None:
    assert siblings_to_fetch(NAMES, previous, opened, 3) == expected


async def _bytes(data: bytes) -> bytes:
    return data


async def _fail() -> bytes:
    raise OSError("reset")


def test_held_bytes_serve_one_open_with_the_same_etag_before_they_expire() -> None:
    async def scenario() -> None:
        ahead = SiblingReadAhead(capacity=2)
        assert ahead.opened(1, "a") is None
        assert ahead.opened(1, "b") == "a"
        assert ahead.opened(2, "x") is None  # per directory
        ahead.hold("k", '"e1"', 10.0, asyncio.create_task(_bytes(b"data")))
        assert ahead.holds("k")
        task = ahead.take("k", '"e1"', 5.0)
        assert task is not None and await task == b"data"
        assert ahead.take("k", '"e1"', 5.0) is None  # taken once

        ahead.hold("k", '"e1"', 10.0, asyncio.create_task(_bytes(b"old")))
        assert ahead.take("k", '"e2"', 5.0) is None  # the object changed since
        ahead.hold("k", '"e1"', 10.0, asyncio.create_task(_bytes(b"old")))
        assert ahead.take("k", '"e1"', 10.0) is None  # expired
        failing = asyncio.create_task(_fail())
        ahead.hold("k", '"e1"', 10.0, failing)
        await asyncio.wait([failing])
        assert ahead.take("k", '"e1"', 5.0) is None  # a failed fetch: the open fetches again

        first = asyncio.create_task(_bytes(b"1"))
        for key in ("k1", "k2", "k3"):
            ahead.hold(key, '"e"', 10.0, first if key == "k1" else asyncio.create_task(_bytes(b"")))
        assert not ahead.holds("k1") and ahead.holds("k3")  # bounded: the oldest went
        ahead.drop("k3")
        assert not ahead.holds("k3")
        ahead.close()
        assert not ahead.holds("k2")

    asyncio.run(scenario())
