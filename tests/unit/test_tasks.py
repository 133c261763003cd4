"""background(): a task nobody awaits says when it dies, and only then."""

from __future__ import annotations

import asyncio
import logging

import pytest

from s3csi.tasks import background


async def _fail() -> None:
    raise RuntimeError("the watcher broke")


async def _succeed() -> None:
    return None


async def _wait_forever() -> None:
    await asyncio.Event().wait()


def test_a_task_that_dies_is_logged_with_its_name_and_traceback(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        task = background(_fail(), name="cert watcher")
        await asyncio.wait([task])

    with caplog.at_level(logging.ERROR, logger="s3csi.tasks"):
        asyncio.run(scenario())
    [record] = caplog.records
    assert record.getMessage() == "background task cert watcher died"
    assert record.exc_info is not None and str(record.exc_info[1]) == "the watcher broke"


def test_a_task_that_ends_well_or_is_cancelled_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        done = background(_succeed(), name="fine")
        cancelled = background(_wait_forever(), name="stopped")
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.wait([done, cancelled])
        assert cancelled.cancelled()

    with caplog.at_level(logging.DEBUG, logger="s3csi.tasks"):
        asyncio.run(scenario())
    assert caplog.records == []
