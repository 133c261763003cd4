"""The disk cache keeps its bound on disk, also when a part is evicted while its write still runs."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from s3csi.fs.cache import DiskCache


class _HeldCache(DiskCache):
    """Writes of ``held`` wait for ``release``: another put can evict it meanwhile."""

    def __init__(self, directory: str, max_bytes: int, held: str) -> None:
        super().__init__(directory, max_bytes)
        self.held = held
        self.started = threading.Event()
        self.release = threading.Event()

    def _write(self, block: str, data: bytes | bytearray, evicted: list[str]) -> None:
        if block == self.held:
            self.started.set()
            assert self.release.wait(30), "the test never released the held write"
        super()._write(block, data, evicted)


def test_a_part_evicted_while_being_written_leaves_no_file(tmp_path: Path) -> None:
    async def scenario() -> None:
        cache = _HeldCache(str(tmp_path), max_bytes=10, held="a")
        first = asyncio.create_task(cache.put("a", b"a" * 10))
        assert await asyncio.to_thread(cache.started.wait, 30)
        await cache.put("b", b"b" * 10)  # evicts "a", whose file does not exist yet
        cache.release.set()
        await first
        assert await cache.get("b") == b"b" * 10
        assert await cache.get("a") is None
        cache._executor.shutdown(wait=True)

    asyncio.run(scenario())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
