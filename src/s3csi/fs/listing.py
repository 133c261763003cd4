"""Reading a directory (pure parts): S3's listing pages in, directory entries out, at offsets that stay put.

``readdir`` streams a directory: it asks S3 for the next ListObjectsV2 page only when the kernel asks for
entries past those it has, and stops when the kernel's reply buffer is full, so a directory of any size
is read one page (1000 keys) at a time.

Offsets. The kernel resumes a read at an offset a reply handed it (``start_id``: the next entry after a
full buffer, or any earlier one after ``seekdir``/``rewinddir``), and must then get no entry twice and
miss none. Offset ``n`` means "after the first ``n`` entries of this read": each open directory handle
keeps the names it has shown, in order (references to the strings the inode table holds for the same
entries, 8 bytes each), so a resumed read shows exactly the entries it showed before, whatever S3 or the
listing cache say by then. Sizes and times are not kept per handle: they come from the inode table, or
from S3 again for an entry the kernel has forgotten since.

Order. Entries this mount made and S3 does not have yet (directories made by mkdir, files being
written) come first; then S3's, in key order, where an object ``x`` and objects under ``x/`` are one
entry, the directory (as everywhere in the mount). ``x`` sorts before ``x/`` with keys such as
``x.txt`` or ``x-1`` in between (their next character sorts below "/"), possibly on a later page: an
object is held back until the listing has passed the place where ``x/`` would be.

A directory bucket (S3 Express One Zone) lists in no particular order, within a page and across pages.
There :class:`AnyOrderEntries` takes the place of :class:`DirectoryWins`: a directory is decided as soon
as its prefix comes (a prefix comes once per listing, and the directory wins anyway), an object only at the
end of the listing, when every prefix that could hide it has come. The objects are held for the whole
listing, so a directory's files show after its sub-directories; the offsets are as stable as ever (the
names a read has shown are kept, whatever the order they came in).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from s3csi.fs.inodes import Kind
from s3csi.fs.lookups import LISTING_CACHE_NAMES
from s3csi.fs.names import child_name
from s3csi.s3.wire import ObjectInfo


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    kind: Kind
    # An object's metadata as the listing gave it; None for a directory.
    info: ObjectInfo | None


class EntryOrder(Protocol):
    """Turns a directory's listing pages into entries, each name once, a directory over an object."""

    def page(self, objects: Sequence[ObjectInfo], prefixes: Sequence[str]) -> list[Entry]: ...

    def end(self) -> list[Entry]: ...


class DirectoryWins:
    """The entries of one listing of the directory ``prefix``, fed page by page in S3's key order, each
    name once."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        # Objects whose ``key + "/"`` the listing has not passed yet. Each one held after another sorts
        # between it and its ``key + "/"``, so the last one held is always the first to release.
        self._held: list[ObjectInfo] = []

    def page(self, objects: Sequence[ObjectInfo], prefixes: Sequence[str]) -> list[Entry]:
        """The entries decided by one page (``objects`` and ``prefixes`` each in key order)."""
        decided: list[Entry] = []
        items: Iterable[tuple[str, ObjectInfo | None]] = heapq.merge(
            ((info.key, info) for info in objects),
            ((prefix, None) for prefix in prefixes),
            key=lambda item: item[0],
        )
        for key, info in items:
            self._release(decided, before=key)
            if info is not None:
                if child_name(self.prefix, key) is not None:
                    self._held.append(info)
                continue
            if self._held and self._held[-1].key + "/" == key:
                self._held.pop()  # the directory wins over the object of the same name
            name = child_name(self.prefix, key)
            if name is not None:
                decided.append(Entry(name, Kind.DIRECTORY, None))
        return decided

    def end(self) -> list[Entry]:
        """The entries still held when the listing is over."""
        decided: list[Entry] = []
        self._release(decided, before=None)
        return decided

    def _release(self, decided: list[Entry], before: str | None) -> None:
        while self._held and (before is None or self._held[-1].key + "/" < before):
            info = self._held.pop()
            name = child_name(self.prefix, info.key)
            if name is not None:
                decided.append(Entry(name, Kind.FILE, info))


class AnyOrderEntries:
    """The entries of one listing of the directory ``prefix`` whose pages come in any order (a directory
    bucket's): directories at once, objects at the end."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._directories: set[str] = set()
        self._objects: dict[str, ObjectInfo] = {}

    def page(self, objects: Sequence[ObjectInfo], prefixes: Sequence[str]) -> list[Entry]:
        decided: list[Entry] = []
        for info in objects:
            name = child_name(self.prefix, info.key)
            if name is not None:
                self._objects.setdefault(name, info)
        for prefix in prefixes:
            name = child_name(self.prefix, prefix)
            if name is not None and name not in self._directories:
                self._directories.add(name)
                decided.append(Entry(name, Kind.DIRECTORY, None))
        return decided

    def end(self) -> list[Entry]:
        objects, self._objects = self._objects, {}
        return [
            Entry(name, Kind.FILE, info)
            for name, info in sorted(objects.items())
            if name not in self._directories
        ]


def entry_order(prefix: str, *, ordered: bool) -> EntryOrder:
    """The merge for a listing in S3's key order (general-purpose buckets) or in any order (directory
    buckets)."""
    return DirectoryWins(prefix) if ordered else AnyOrderEntries(prefix)


@dataclass
class DirectoryRead:
    """One open directory handle's read: the names shown so far and where S3's listing stands."""

    ino: int
    prefix: str
    # Every name this read has (offset n resumes at names[n]): local ones first, then S3's as they come.
    names: list[str] = field(default_factory=list)
    # The local names shown first; S3's entries of the same names are not shown again.
    local: frozenset[str] = frozenset()
    begun: bool = False
    # The next page's continuation token; None before the first page and after the last.
    token: str | None = None
    complete: bool = False
    # When the first page was asked for (monotonic seconds): what a complete listing stands for from.
    listed_at: float = 0.0
    # S3's names while there are at most ``cache_limit`` of them (for the listing cache); None past that.
    remote: list[str] | None = field(default_factory=list)
    cache_limit: int = LISTING_CACHE_NAMES
    # False for a directory bucket, whose listing pages come in no particular order.
    ordered: bool = True
    order: EntryOrder = field(init=False)

    def __post_init__(self) -> None:
        self.order = entry_order(self.prefix, ordered=self.ordered)

    def begin(self, local: Iterable[str], now: float) -> None:
        """The first readdir: show the ``local`` names first, then list S3 from ``now``."""
        self.local = frozenset(local)
        self.names = sorted(self.local)
        self.begun, self.listed_at = True, now

    def needs_page(self, offset: int) -> bool:
        """Whether the kernel, asking for entries from ``offset``, is past every name this read has."""
        return offset >= len(self.names) and not self.complete

    def take_page(
        self, objects: Sequence[ObjectInfo], prefixes: Sequence[str], token: str | None
    ) -> list[Entry]:
        """One page of S3's listing: the entries to add to the read, in order (call ``shown`` with the
        name of each entry added). ``token`` is the page's continuation token (None: the last page)."""
        entries = self.order.page(objects, prefixes)
        self.token = token
        if token is None:
            entries += self.order.end()
            self.complete = True
        if self.remote is not None:
            self.remote.extend(entry.name for entry in entries)
            if len(self.remote) > self.cache_limit:
                self.remote = None
        return [entry for entry in entries if entry.name not in self.local]

    def shown(self, name: str) -> None:
        self.names.append(name)
