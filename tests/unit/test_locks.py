from __future__ import annotations

import asyncio

from s3csi.locks import KeyedLocks


def test_one_key_is_serialised_other_keys_are_not_and_locks_are_forgotten() -> None:
    async def scenario() -> list[str]:
        locks = KeyedLocks()
        events: list[str] = []
        a_entered = asyncio.Event()
        release_a = asyncio.Event()

        async def first_a() -> None:
            async with locks.hold("a"):
                events.append("a1 in")
                a_entered.set()
                await release_a.wait()
                events.append("a1 out")

        async def second_a() -> None:
            await a_entered.wait()
            async with locks.hold("a"):
                events.append("a2 in")

        async def b() -> None:
            await a_entered.wait()
            async with locks.hold("b"):
                events.append("b in")  # while "a" is held
            release_a.set()

        await asyncio.gather(first_a(), second_a(), b())
        assert len(locks) == 0
        return events

    assert asyncio.run(scenario()) == ["a1 in", "b in", "a1 out", "a2 in"]


def test_a_failure_inside_releases_the_lock() -> None:
    async def scenario() -> int:
        locks = KeyedLocks()
        try:
            async with locks.hold("k"):
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        async with locks.hold("k"):
            return len(locks)

    assert asyncio.run(scenario()) == 1
