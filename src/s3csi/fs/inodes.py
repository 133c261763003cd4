"""The inode table (pure, synchronous): which inode number stands for which S3 key, and what is known
about it until when.

An inode is named by (parent inode, name). The kernel holds *lookup counts*: every successful lookup,
create, mkdir or readdirplus entry adds one, ``forget`` takes them away. An inode leaves the table only
when the kernel has forgotten it entirely and it no longer stands for a name; so a name re-used for an
entry of another kind (a file replaced by a directory) gets a fresh inode number, while the kernel may
still talk about the old one.

Times are ``time.monotonic()`` seconds, passed in by the caller so the table is testable with plain numbers.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass, field

from s3csi.fs.lookups import DirectoryKnowledge

ROOT_INODE = 1
# Negative entries are a cache: past this many, the oldest knowledge is dropped wholesale.
MAX_NEGATIVE_ENTRIES = 65536


class Kind(enum.Enum):
    DIRECTORY = "directory"
    FILE = "file"


class State(enum.Enum):
    REMOTE = "remote"  # backed by S3: an object, or a prefix with objects under it
    LOCAL = "local"  # a directory made by mkdir that holds no object yet
    WRITING = "writing"  # a new file whose upload has not finished


@dataclass
class Inode:
    ino: int
    parent: int
    name: str
    kind: Kind
    # Objects: the whole key. Directories: the prefix, ending in "/" ("" for the bucket's root).
    key: str
    state: State = State.REMOTE
    size: int = 0
    mtime_ns: int = 0
    etag: str | None = None
    # Until when the metadata above may be served without asking S3 again.
    valid_until: float = 0.0
    lookups: int = 0
    # Whether (parent, name) still leads to this inode.
    linked: bool = True
    # Local children (mkdir'd directories, files being written) are shown by readdir even before S3 has them.
    local_children: set[str] = field(default_factory=set)
    # Directories: what the last listing said about the children as a whole (s3csi.fs.lookups).
    listing: DirectoryKnowledge = field(default_factory=DirectoryKnowledge)

    @property
    def is_dir(self) -> bool:
        return self.kind is Kind.DIRECTORY


class InodeTable:
    def __init__(self, root_prefix: str, *, mtime_ns: int) -> None:
        self._next = ROOT_INODE + 1
        root = Inode(ROOT_INODE, ROOT_INODE, "", Kind.DIRECTORY, root_prefix, mtime_ns=mtime_ns)
        root.lookups = 1  # the kernel never forgets the root
        root.valid_until = float("inf")
        self._inodes: dict[int, Inode] = {ROOT_INODE: root}
        self._names: dict[tuple[int, str], int] = {}
        # (parent, name) → until when "no such entry" may be answered without asking S3.
        self._negative: dict[tuple[int, str], float] = {}

    def get(self, ino: int) -> Inode | None:
        return self._inodes.get(ino)

    def child(self, parent: int, name: str) -> Inode | None:
        ino = self._names.get((parent, name))
        return self._inodes[ino] if ino is not None else None

    def children(self, parent: int) -> Iterator[Inode]:
        """Inodes currently linked under ``parent`` (the table's knowledge, not a listing)."""
        for (dir_ino, _name), ino in self._names.items():
            if dir_ino == parent:
                yield self._inodes[ino]

    def upsert(
        self,
        parent: int,
        name: str,
        kind: Kind,
        *,
        key: str,
        valid_until: float,
        size: int = 0,
        mtime_ns: int = 0,
        etag: str | None = None,
        state: State = State.REMOTE,
    ) -> Inode:
        """The inode for (parent, name), refreshed with what S3 (or the caller) just said about it."""
        self._negative.pop((parent, name), None)
        current = self.child(parent, name)
        if current is not None and current.kind is kind:
            if current.state is State.WRITING and state is State.REMOTE:
                return current  # the local upload in progress is newer than any listing
            current.key, current.size, current.mtime_ns, current.etag = key, size, mtime_ns, etag
            current.valid_until, current.state = valid_until, state
            return current
        if current is not None:
            self.unlink(parent, name)
        inode = Inode(self._next, parent, name, kind, key, state, size, mtime_ns, etag, valid_until)
        self._next += 1
        self._inodes[inode.ino] = inode
        self._names[(parent, name)] = inode.ino
        if state is not State.REMOTE:
            self._parent_of(inode).local_children.add(name)
        return inode

    def unlink(self, parent: int, name: str) -> None:
        """(parent, name) no longer leads anywhere; the inode lives on while the kernel remembers it."""
        ino = self._names.pop((parent, name), None)
        dir_inode = self._inodes.get(parent)
        if dir_inode is not None:
            dir_inode.local_children.discard(name)
        if ino is None:
            return
        inode = self._inodes[ino]
        inode.linked = False
        if inode.lookups == 0:
            del self._inodes[ino]

    def move(self, inode: Inode, new_parent: int, new_name: str, new_key: str) -> None:
        """After a rename: the kernel keeps using the source's inode under its new name."""
        self._names.pop((inode.parent, inode.name), None)
        old_parent = self._inodes.get(inode.parent)
        if old_parent is not None:
            old_parent.local_children.discard(inode.name)
        if (new_parent, new_name) in self._names:
            self.unlink(new_parent, new_name)
        self._negative.pop((new_parent, new_name), None)
        inode.parent, inode.name, inode.key, inode.linked = new_parent, new_name, new_key, True
        self._names[(new_parent, new_name)] = inode.ino

    def set_state(self, inode: Inode, state: State) -> None:
        inode.state = state
        parent = self._inodes.get(inode.parent)
        if parent is None or not inode.linked:
            return
        if state is State.REMOTE:
            parent.local_children.discard(inode.name)
        else:
            parent.local_children.add(inode.name)

    def remember(self, inode: Inode) -> None:
        """The kernel was handed this inode once more (lookup, create, readdirplus)."""
        inode.lookups += 1

    def forget(self, ino: int, count: int) -> None:
        inode = self._inodes.get(ino)
        if inode is None or ino == ROOT_INODE:
            return
        inode.lookups = max(0, inode.lookups - count)
        if inode.lookups == 0 and not inode.linked:
            del self._inodes[ino]

    def set_negative(self, parent: int, name: str, until: float) -> None:
        if len(self._negative) >= MAX_NEGATIVE_ENTRIES:
            self._negative.clear()
        self._negative[(parent, name)] = until

    def is_negative(self, parent: int, name: str, now: float) -> bool:
        until = self._negative.get((parent, name))
        if until is None:
            return False
        if until <= now:
            del self._negative[(parent, name)]
            return False
        return True

    def _parent_of(self, inode: Inode) -> Inode:
        return self._inodes[inode.parent]
