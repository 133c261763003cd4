"""Read-ahead policy (pure): which parts of an object a file handle should hold or have in flight.

An object is read in parts of ``part_size`` bytes, part ``i`` being bytes ``[i * part_size, (i+1) *
part_size)``, each one ranged GET. A read that lands where the previous one ended, or in a part already
wanted, is *sequential*: the window of parts fetched ahead doubles (1, 2, 4, …) up to ``max_parts``, so
a streaming reader soon has several GETs in flight in parallel. Any other read is a *seek*: the window
falls back to the parts the read itself needs, and parts fetched for the old position are dropped.

Once the window is full, a handle also holds up to ``ready_parts`` more parts past it: the parts in
flight share the connection's bandwidth and tend to arrive together, and without room past them the
next GETs would only start as the reader consumes them, leaving S3 idle meanwhile. The reader
(``reader.py``) keeps at most ``window`` GETs in flight and starts the next held part as each one
ends. Memory per handle is bounded by ``(max_parts + ready_parts) * part_size``.

The first read after opening, and each seek, waits for a whole part before it can be answered; so the
first ``seek_head`` bytes of the part such a read lands in are fetched by a GET of their own, in
parallel with the rest of the part, and answer the read as soon as they arrive.
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024
# Read-ahead in flight per file handle; at least two parts so one can be consumed while the next arrives.
# Half as much again may wait for the reader, fetched (``ready_parts``).
READ_AHEAD_BYTES = 64 * MiB
# What the first read after a seek waits for at most: one FUSE request's worth (1 MiB).
SEEK_HEAD_BYTES = 1 * MiB


@dataclass(frozen=True)
class PrefetchPolicy:
    part_size: int
    # The most GETs in flight for one handle (the window's bound).
    max_parts: int
    # 0: a seek's part is fetched whole.
    seek_head: int = 0
    # Parts held past a full window, fetched and waiting for the reader.
    ready_parts: int = 0

    @classmethod
    def for_part_size(cls, part_size: int, budget: int = READ_AHEAD_BYTES) -> PrefetchPolicy:
        seek_head = SEEK_HEAD_BYTES if part_size > SEEK_HEAD_BYTES else 0
        ready_parts = budget // 2 // part_size
        return cls(part_size, max(2, budget // part_size), seek_head, ready_parts)

    @property
    def max_held(self) -> int:
        """The most parts one handle holds: in flight, or fetched and not yet read."""
        return self.max_parts + self.ready_parts


@dataclass
class PrefetchCounts:
    """Reads of a mount that found every part they needed already fetched or on its way (``hits``: fetched
    ahead, or at open), and reads that had to start a GET of their own (``misses``). Plain integers, read
    by the metrics endpoint when scraped (fs/metrics.py): counting costs a reader nothing more."""

    hits: int = 0
    misses: int = 0


@dataclass
class PrefetchWindow:
    """The read-ahead state of one file handle."""

    policy: PrefetchPolicy
    window: int = 1
    # Where a sequential reader's next read starts; None before the first read.
    next_offset: int | None = None
    # Part indices [first, end) currently wanted.
    first: int = 0
    end: int = 0
    # Whether the last read was a seek (or the first read).
    seeked: bool = False

    def on_read(self, offset: int, size: int, file_size: int) -> range:
        """Record a read of ``size`` bytes at ``offset`` and return the parts to hold from now on: the
        window, and ``ready_parts`` more once it is full. At most ``window`` of them are fetched at once."""
        part = self.policy.part_size
        if offset >= file_size or size <= 0:
            return range(0)
        last_byte = min(offset + size, file_size) - 1
        first, last = offset // part, last_byte // part
        # The kernel sends read-ahead requests concurrently, so one may arrive a part late.
        sequential = self.next_offset is not None and self.first - 1 <= first <= self.end
        self.seeked = not sequential
        if not sequential:
            self.window = 1
        elif first > self.first or self.window == 1:
            self.window = min(self.window * 2, self.policy.max_parts)
        parts_in_file = (file_size + part - 1) // part
        self.first = first
        ahead = self.window + (self.policy.ready_parts if self.window == self.policy.max_parts else 0)
        self.end = min(parts_in_file, max(last + 1, first + ahead))
        self.next_offset = last_byte + 1
        return range(self.first, self.end)
