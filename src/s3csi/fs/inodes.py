"""The inode table (pure, synchronous): which inode number stands for which S3 key, and what is known
about it until when.

An inode is named by (parent inode, name). The kernel holds *lookup counts*: every successful lookup,
create, mkdir or readdirplus entry adds one, ``forget`` takes them away. A name re-used for an entry of
another kind (a file replaced by a directory) gets a fresh inode number, while the kernel may still talk
about the old one: an inode that no longer stands for a name leaves the table when the kernel forgets it.

The table keeps what the kernel holds, and little more: when the kernel forgets an entry backed by S3
(its lookup count back to 0), the entry leaves the table, name and all, and the next lookup asks S3 (or a
listing) again. Listing a directory of 100,000 objects hands the kernel 100,000 entries; the kernel
forgets them as it reclaims its caches, and the table shrinks with it. Entries only this mount knows
(directories made by mkdir that hold no object yet, files being written) stay until they are gone.
Each entry is kept small (slots, no per-file sets) for the same reason: a listed directory costs one
``Inode`` per entry for as long as the kernel holds it.

Times are ``time.monotonic()`` seconds, passed in by the caller so the table is testable with plain numbers.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace

from s3csi.fs.attributes import NOTHING_STORED, StoredAttributes
from s3csi.fs.lookups import NOT_LISTED, DirectoryKnowledge

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


@dataclass(slots=True)
class Inode:
    ino: int
    parent: int
    name: str
    kind: Kind
    # The key of the directory it is in: one string shared by every child of that directory (a
    # listed directory holds one per entry). The root's is the mount's prefix.
    dir_key: str
    state: State = State.REMOTE
    size: int = 0
    mtime_ns: int = 0
    etag: str | None = None
    # Until when the metadata above may be served without asking S3 again.
    valid_until: float = 0.0
    lookups: int = 0
    # Whether (parent, name) still leads to this inode.
    linked: bool = True
    # Directories: what the last listing said about the children as a whole (s3csi.fs.lookups).
    listing: DirectoryKnowledge = NOT_LISTED
    # Attributes stored with the object (s3csi.fs.attributes); for a directory or a file being written,
    # those set through this mount (kept in memory).
    stored: StoredAttributes = NOTHING_STORED
    # The version of the object ``stored`` was read from or written with: (ETag, S3's modification time
    # in whole seconds, None until a listing or HEAD tells it). None: not read yet.
    stored_for: tuple[str, int | None] | None = None
    # That version's whole user metadata (None: none) and content type: a metadata copy keeps them.
    metadata: Mapping[str, str] | None = None
    content_type: str | None = None

    @property
    def is_dir(self) -> bool:
        return self.kind is Kind.DIRECTORY

    @property
    def key(self) -> str:
        """Objects: the whole key. Directories: the prefix, ending in "/" ("" for the bucket's root)."""
        if self.is_dir and self.name:
            return f"{self.dir_key}{self.name}/"
        return self.dir_key + self.name


class InodeTable:
    def __init__(self, root_prefix: str, *, mtime_ns: int) -> None:
        self._next = ROOT_INODE + 1
        root = Inode(ROOT_INODE, ROOT_INODE, "", Kind.DIRECTORY, root_prefix, mtime_ns=mtime_ns)
        root.lookups = 1  # the kernel never forgets the root
        root.valid_until = float("inf")
        self._inodes: dict[int, Inode] = {ROOT_INODE: root}
        # Directory inode → its key, the one string its children share as their ``dir_key``.
        self._dir_keys: dict[int, str] = {}
        # Directory inode → its named children (one dict per directory: a listing walks its own only).
        self._children: dict[int, dict[str, Inode]] = {}
        # Directory inode → its local children (mkdir'd directories, files being written), which readdir
        # shows even before S3 has them.
        self._local: dict[int, set[str]] = {}
        # (parent, name) → until when "no such entry" may be answered without asking S3.
        self._negative: dict[tuple[int, str], float] = {}

    def __len__(self) -> int:
        return len(self._inodes)

    def get(self, ino: int) -> Inode | None:
        return self._inodes.get(ino)

    def child(self, parent: int, name: str) -> Inode | None:
        named = self._children.get(parent)
        return named.get(name) if named is not None else None

    def children(self, parent: int) -> list[Inode]:
        """Inodes currently linked under ``parent`` (the table's knowledge, not a listing)."""
        return list(self._children.get(parent, {}).values())

    def local_children(self, parent: int) -> frozenset[str]:
        return frozenset(self._local.get(parent, ()))

    def upsert(
        self,
        parent: int,
        name: str,
        kind: Kind,
        *,
        valid_until: float,
        size: int = 0,
        mtime_ns: int = 0,
        etag: str | None = None,
        state: State = State.REMOTE,
    ) -> Inode:
        """The inode for (parent, name), refreshed with what S3 (or the caller) just said about it; its
        key is the directory's key followed by the name (and "/" for a directory)."""
        self._negative.pop((parent, name), None)
        current = self.child(parent, name)
        if current is not None and current.kind is kind:
            if current.state is State.WRITING and state is State.REMOTE:
                return current  # the local upload in progress is newer than any listing
            current.size, current.mtime_ns, current.etag = size, mtime_ns, etag
            current.valid_until = valid_until
            self.set_state(current, state)
            return current
        if current is not None:
            self.unlink(parent, name)
        dir_key = self._dir_key(parent)
        inode = Inode(self._next, parent, name, kind, dir_key, state, size, mtime_ns, etag, valid_until)
        self._next += 1
        self._inodes[inode.ino] = inode
        self._children.setdefault(parent, {})[name] = inode
        if state is not State.REMOTE:
            self._local.setdefault(parent, set()).add(name)
        return inode

    def unlink(self, parent: int, name: str) -> None:
        """(parent, name) no longer leads anywhere; the inode lives on while the kernel remembers it."""
        self._discard_local(parent, name)
        inode = self._pop_name(parent, name)
        if inode is None:
            return
        inode.linked = False
        if inode.lookups == 0:
            self._drop(inode)

    def move(self, inode: Inode, new_parent: int, new_name: str) -> None:
        """After a rename: the kernel keeps using the source's inode under its new name."""
        self._pop_name(inode.parent, inode.name)
        self._discard_local(inode.parent, inode.name)
        if self.child(new_parent, new_name) is not None:
            self.unlink(new_parent, new_name)
        self._negative.pop((new_parent, new_name), None)
        inode.parent, inode.name, inode.dir_key, inode.linked = (
            new_parent,
            new_name,
            self._dir_key(new_parent),
            True,
        )
        self._children.setdefault(new_parent, {})[new_name] = inode
        if inode.state is not State.REMOTE:
            self._local.setdefault(new_parent, set()).add(new_name)

    def set_state(self, inode: Inode, state: State) -> None:
        inode.state = state
        if not inode.linked or inode.parent not in self._inodes:
            return
        if state is State.REMOTE:
            self._discard_local(inode.parent, inode.name)
        else:
            self._local.setdefault(inode.parent, set()).add(inode.name)

    def remember(self, inode: Inode) -> None:
        """The kernel was handed this inode once more (lookup, create, readdirplus)."""
        inode.lookups += 1

    def forget(self, ino: int, count: int) -> None:
        """The kernel dropped ``count`` of its references. Once it holds none, an inode leaves the table
        if it no longer has a name, or if S3 backs it (and, for a directory, everything the table holds
        under it is the same): the next lookup asks again."""
        inode = self._inodes.get(ino)
        if inode is None or ino == ROOT_INODE:
            return
        inode.lookups = max(0, inode.lookups - count)
        if inode.lookups > 0:
            return
        if not inode.linked:
            self._drop(inode)
        elif self._evictable(inode):
            self._pop_name(inode.parent, inode.name)
            inode.linked = False
            self._drop(inode)
            parent = self._inodes.get(inode.parent)
            if parent is not None and parent.listing.absent_until > 0:
                # Its last listing no longer stands for the directory: the table lacks this name now.
                parent.listing = replace(parent.listing, listed_until=0.0, absent_until=0.0)

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

    def _evictable(self, inode: Inode) -> bool:
        """Nothing but S3's knowledge is lost by dropping ``inode`` and everything under it."""
        if inode.lookups > 0 or inode.state is not State.REMOTE or inode.ino == ROOT_INODE:
            return False
        return all(self._evictable(child) for child in self._children.get(inode.ino, {}).values())

    def _dir_key(self, directory: int) -> str:
        key = self._dir_keys.get(directory)
        if key is None:
            key = self._dir_keys[directory] = self._inodes[directory].key
        return key

    def _drop(self, inode: Inode) -> None:
        """``inode`` (no name, no lookups) out of the table, with the children it still names."""
        self._inodes.pop(inode.ino, None)
        self._local.pop(inode.ino, None)
        self._dir_keys.pop(inode.ino, None)
        for child in self._children.pop(inode.ino, {}).values():
            child.linked = False
            if child.lookups == 0:
                self._drop(child)

    def _pop_name(self, parent: int, name: str) -> Inode | None:
        named = self._children.get(parent)
        if named is None:
            return None
        inode = named.pop(name, None)
        if not named:
            del self._children[parent]
        return inode

    def _discard_local(self, parent: int, name: str) -> None:
        local = self._local.get(parent)
        if local is not None:
            local.discard(name)
            if not local:
                del self._local[parent]
