"""tests/polling.py: the tests' one way to wait for a condition, with a deadline."""

from __future__ import annotations

import asyncio
import itertools

from tests.polling import wait_until, wait_until_async


def test_returns_the_first_true_value_without_waiting_for_the_deadline() -> None:
    calls = itertools.count()
    assert wait_until(lambda: next(calls) >= 3 and "ready", within=3600, interval=0) == "ready"
    assert next(calls) == 4


def test_returns_the_last_false_value_at_the_deadline() -> None:
    calls = itertools.count()
    assert wait_until(lambda: [] if next(calls) < 10**9 else [1], within=0, interval=0) == []
    assert next(calls) == 1  # a deadline already passed still asks once


def test_the_async_form_runs_the_loop_between_calls_and_awaits_async_conditions() -> None:
    async def scenario() -> tuple[object, object]:
        done = asyncio.Event()
        asyncio.get_running_loop().call_soon(done.set)
        plain = await wait_until_async(done.is_set, within=3600, interval=0)

        async def awaited() -> str:
            return "value"

        return plain, await wait_until_async(awaited, within=0)

    assert asyncio.run(scenario()) == (True, "value")


def test_the_async_form_returns_the_false_value_at_the_deadline() -> None:
    assert asyncio.run(wait_until_async(lambda: 0, within=0)) == 0
