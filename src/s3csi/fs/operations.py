"""The FUSE request handlers: decode, consult the inode table, call S3, reply.

Every handler is async and fails only with ``FUSEError`` (``fuse_errors``). Errno choices for what S3
cannot do are listed in docs/filesystem.md; in short: refused by the mount's flags → EPERM (EROFS
with ``--read-only``), impossible on S3 → ENOTSUP, in use by a writer → EBUSY, out-of-order write →
EINVAL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno
import logging
import math
import os
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyfuse3

from s3csi.fs.allocator import release_free_memory, worth_releasing
from s3csi.fs.appender import AppendWriter, appends_in_place
from s3csi.fs.attributes import (
    NOTHING_STORED,
    NS_PER_S,
    PERMISSION_BITS,
    STORED_KEYS,
    StoredAttributes,
    chown_allowed,
    combine,
    decode,
    encode,
    merged,
    shown_permissions,
)
from s3csi.fs.cache import PartCache
from s3csi.fs.deletes import PendingDeletes
from s3csi.fs.errors import fail, fuse_errors, repeats
from s3csi.fs.holds import AttributeHolds
from s3csi.fs.inodes import ROOT_INODE, Inode, InodeTable, Kind, State
from s3csi.fs.listing import DirectoryRead, Entry, entry_order
from s3csi.fs.lookups import (
    LOOKUP_LIST_PAGES,
    DirectoryKnowledge,
    LookupSource,
    lookup_source,
    recorded_listing,
)
from s3csi.fs.names import fits_in_key, is_visible_name
from s3csi.fs.prefetch import PrefetchCounts, PrefetchPolicy
from s3csi.fs.reader import ObjectReader
from s3csi.fs.settings import FsSettings
from s3csi.fs.siblings import SIBLINGS_AHEAD, SiblingReadAhead, siblings_to_fetch
from s3csi.fs.staging import (
    OpenPlan,
    Refusal,
    StagedFile,
    StagingArea,
    open_plan,
    truncate_refusal,
    within_limit,
)
from s3csi.fs.writer import ObjectWriter, flush_deadline
from s3csi.s3.client import MAX_DELETE_BATCH, ObjectInfo, S3Client, WriteOptions
from s3csi.s3.errors import S3Error
from s3csi.tasks import background

log = logging.getLogger(__name__)

RENAME_NOREPLACE = 1
# Keys a lookup's listing asks for: enough to pass siblings such as name.txt, name-1 … before name/.
LOOKUP_LIST_KEYS = 100
BLOCK_SIZE = 1024 * 1024
# statfs: S3 has no capacity; report a large, fixed one so tools that check free space proceed.
STATFS_BLOCKS = 2**40
STATFS_FILES = 2**32
# A symbolic link's target is at most PATH_MAX bytes: a larger object marked as a link is a file.
PATH_MAX = 4096
SYMLINK_MODE = stat.S_IFLNK | 0o777
PRECONDITION_FAILED = "PreconditionFailed"
DOT_ENTRIES = (b".", b"..")
# A lookup fetches an object this small whole rather than asking a HEAD (its bytes cost about what a
# HEAD costs, and the open that usually follows reads them); a larger one is not fetched by a mere stat.
LOOKUP_FETCH_BYTES = 64 * 1024
UNKNOWN_ATTRIBUTES_TTL_S = 1.0
# The name of a task storing held attributes, before the object's key (what unmount reports as lost).
STORE_TASK_PREFIX = "store attributes of "


@dataclass
class OpenFile:
    inode: Inode
    reader: ObjectReader | None = None
    writer: ObjectWriter | None = None
    # --staged-writes: the local copy this handle reads and (``writes``) writes (s3csi.fs.staging).
    staged: StagedFile | None = None
    writes: bool = False
    appends: bool = False


class S3Operations(pyfuse3.Operations):
    supports_dot_lookup = False
    enable_writeback_cache = False

    def __init__(
        self,
        settings: FsSettings,
        client: S3Client,
        cache: PartCache | None = None,
        staging: StagingArea | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.client = client
        self.cache = cache
        self.staging = staging
        # Inode number → its staged copy, while a handle has it open (or a truncate works on it).
        self.staged: dict[int, StagedFile] = {}
        self.table = InodeTable(settings.prefix, mtime_ns=time.time_ns())
        self.requests = asyncio.Semaphore(settings.max_threads)
        self.read_policy = PrefetchPolicy.for_part_size(settings.read_part_size)
        self.prefetch = PrefetchCounts()
        self.write_options = WriteOptions(settings.storage_class, settings.sse, settings.sse_kms_key_id)
        self.files: dict[int, OpenFile] = {}
        self.listings: dict[int, DirectoryRead] = {}
        # A directory bucket lists in no particular order and only by prefixes ending in "/".
        self.ordered_listings = not settings.directory_bucket
        self._lookup_listings: dict[int, asyncio.Task[bool]] = {}
        self.read_ahead = SiblingReadAhead()
        # Attribute changes of files just uploaded, held for a rename to carry (s3csi.fs.holds); the timer
        # that stores them when their time is up (with the inode, which the kernel may forget meanwhile),
        # and the store under way, per inode.
        self.holds = AttributeHolds()
        self._hold_timers: dict[int, tuple[asyncio.TimerHandle, Inode]] = {}
        self._storing: dict[int, asyncio.Task[bool]] = {}
        # Keys whose held times or mode could not be stored (reported again at unmount).
        self._unstored: list[str] = []
        # A rename's delete of the old key, finishing in the background (s3csi.fs.deletes).
        self.deletes = PendingDeletes(self._delete_keys, batch_size=MAX_DELETE_BATCH)
        self._next_fh = 1
        # Called when the kernel's INIT arrives, just before libfuse answers it.
        self.on_init: Callable[[], object] | None = None

    def init(self) -> None:
        if self.on_init is not None:
            self.on_init()

    # ---- helpers ---------------------------------------------------------------------------------

    def attributes(self, inode: Inode) -> pyfuse3.EntryAttributes:
        attrs = pyfuse3.EntryAttributes()
        attrs.st_ino = inode.ino
        stored = self._stored(inode)
        if inode.is_dir:
            attrs.st_mode = stat.S_IFDIR | shown_permissions(stored.mode, self.settings.dir_mode)
            attrs.st_nlink = 2
        elif self._is_symlink(inode):
            attrs.st_mode = SYMLINK_MODE
            attrs.st_nlink = 1
        else:
            # Never wider than the volume's mode, whatever was stored (s3csi.fs.attributes).
            attrs.st_mode = stat.S_IFREG | shown_permissions(stored.mode, self.settings.file_mode)
            attrs.st_nlink = 1
        attrs.st_uid = self.settings.uid
        attrs.st_gid = self.settings.gid
        size = inode.size
        open_writer = self._writer_of(inode)
        if open_writer is not None:
            size = open_writer.size
        staged = self.staged.get(inode.ino)
        if staged is not None:
            size = staged.size
        attrs.st_size = size
        attrs.st_blocks = (size + 511) // 512
        attrs.st_blksize = BLOCK_SIZE
        mtime_ns = inode.mtime_ns if stored.mtime_ns is None else stored.mtime_ns
        attrs.st_mtime_ns = mtime_ns
        attrs.st_atime_ns = mtime_ns if stored.atime_ns is None else stored.atime_ns
        # S3's own modification time: every metadata copy (chmod, touch) changes it, as ctime changes.
        attrs.st_ctime_ns = inode.mtime_ns
        ttl = self.settings.metadata_ttl_s if inode.state is State.REMOTE else 0.0
        if self._needs_metadata(inode):
            # An entry from a listing, whose stored attributes are not known yet (S3's time, the volume's
            # mode, a file where the object may be a symbolic link): the kernel keeps it at most a second,
            # then looks the name up again, which reads them. The entry, not only the attributes: the
            # kernel refuses a getattr that changes an inode's type, while a lookup may.
            ttl = min(ttl, UNKNOWN_ATTRIBUTES_TTL_S)
        attrs.entry_timeout = ttl
        attrs.attr_timeout = ttl
        return attrs

    def _stored(self, inode: Inode) -> StoredAttributes:
        """What the object's metadata says, as far as this mount knows it for its current version."""
        return NOTHING_STORED if self._needs_metadata(inode) else inode.stored

    def _is_symlink(self, inode: Inode) -> bool:
        return inode.kind is Kind.FILE and self._stored(inode).is_symlink and inode.size < PATH_MAX

    @staticmethod
    def _needs_metadata(inode: Inode) -> bool:
        """Whether the object's stored attributes are unknown for the version the table holds (only an
        object's HEAD has them: a listing does not)."""
        if inode.kind is not Kind.FILE or inode.state is not State.REMOTE:
            return False
        known = inode.stored_for
        if known is None or known[0] != inode.etag:
            return True
        return known[1] is not None and known[1] != inode.mtime_ns // NS_PER_S

    def _learn(self, inode: Inode, info: ObjectInfo) -> None:
        """``info`` from a HeadObject of ``inode``'s object: its size, times and stored attributes."""
        inode.size, inode.etag = info.size, info.etag
        inode.mtime_ns, inode.valid_until = int(info.last_modified * 1e9), self._expiry()
        inode.stored = decode(info.metadata)
        held = self.holds.held(inode.ino)
        if held is not None:
            inode.stored = combine(inode.stored, held)  # what this mount has set, if not stored yet
        inode.stored_for = (info.etag, int(info.last_modified))
        inode.metadata = dict(info.metadata) if info.metadata else None
        inode.content_type = info.content_type

    def _negative_entry(self) -> pyfuse3.EntryAttributes:
        attrs = pyfuse3.EntryAttributes()
        attrs.st_ino = 0  # "no such entry", cached by the kernel for entry_timeout
        attrs.entry_timeout = self.settings.negative_metadata_ttl_s
        return attrs

    def _inode(self, ino: int) -> Inode:
        inode = self.table.get(ino)
        if inode is None:
            raise fail(errno.ENOENT)
        return inode

    def _directory(self, ino: int) -> Inode:
        inode = self._inode(ino)
        if not inode.is_dir:
            raise fail(errno.ENOTDIR)
        return inode

    def _writer_of(self, inode: Inode) -> ObjectWriter | None:
        if inode.state is not State.WRITING:
            return None
        return next((f.writer for f in self.files.values() if f.inode is inode and f.writer), None)

    def _refuse_if_read_only(self) -> None:
        if self.settings.read_only:
            raise fail(errno.EROFS)

    def _new_fh(self) -> int:
        fh, self._next_fh = self._next_fh, self._next_fh + 1
        return fh

    def _expiry(self) -> float:
        return time.monotonic() + self.settings.metadata_ttl_s

    def _object_inode(
        self, parent: Inode, name: str, info: ObjectInfo, valid_until: float | None = None
    ) -> Inode:
        inode = self.table.upsert(
            parent.ino,
            name,
            Kind.FILE,
            size=info.size,
            etag=info.etag,
            mtime_ns=int(info.last_modified * 1e9),
            valid_until=self._expiry() if valid_until is None else valid_until,
        )
        known = inode.stored_for
        if known is not None and known == (info.etag, None):
            # Stored by this mount, whose upload did not tell S3's time: now known for this version.
            inode.stored_for = (info.etag, int(info.last_modified))
        return inode

    def _dir_inode(
        self, parent: Inode, name: str, *, state: State = State.REMOTE, valid_until: float | None = None
    ) -> Inode:
        return self.table.upsert(
            parent.ino,
            name,
            Kind.DIRECTORY,
            mtime_ns=time.time_ns() if state is State.LOCAL else parent.mtime_ns,
            valid_until=self._expiry() if valid_until is None else valid_until,
            state=state,
        )

    async def _head(self, key: str) -> ObjectInfo | None:
        await self.deletes.settled(key)
        try:
            async with self.requests:
                return await self.client.head_object(self.settings.bucket, key)
        except S3Error as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise

    async def _refresh(self, inode: Inode) -> None:
        """Re-read an object's metadata whose time in the table is up; ENOENT when S3 no longer has it."""
        info = await self._head(inode.key)
        if info is None:
            raise fail(errno.ENOENT)
        self._learn(inode, info)

    async def _read_metadata(self, inode: Inode) -> bool:
        """Learn the stored attributes of ``inode``'s object; False when S3 no longer has it.

        A small object (``LOOKUP_FETCH_BYTES``) is fetched whole instead of asked for with a HEAD: the
        GET carries the same headers, and the open that usually follows a lookup takes the bytes (held
        like a sibling read ahead), so that reading a small file costs one request, as before attributes
        were stored. A fetch
        of it already under way (a sibling read ahead) is waited for. Anything else: one HEAD.
        """
        pending = self.read_ahead.pending(inode.key)
        if pending is None and inode.etag is not None and 0 < inode.size <= LOOKUP_FETCH_BYTES:
            pending = self._fetch_whole(inode)
        if pending is not None:
            await asyncio.wait([pending])  # its failure is the HEAD's to report, below
            if not self._needs_metadata(inode):
                return True
        info = await self._head(inode.key)
        if info is None:
            return False
        self._learn(inode, info)
        return True

    def _fetch_whole(self, inode: Inode) -> asyncio.Task[bytes | bytearray]:
        """Fetch a small object whole, learning its attributes from the response; held for an open."""
        key, etag = inode.key, inode.etag or ""

        async def fetch() -> bytes | bytearray:
            async with self.requests:
                data, info = await self.client.get_whole_object(self.settings.bucket, key)
            if inode.key == key and inode.state is State.REMOTE:  # not renamed or being replaced since
                self._learn(inode, info)
            return data

        task = asyncio.create_task(fetch(), name=f"get {key}")
        task.add_done_callback(_ignore_outcome)
        self.read_ahead.hold(key, etag, time.monotonic() + self.settings.metadata_ttl_s, task)
        return task

    async def _has_objects(self, prefix: str) -> bool:
        await self.deletes.settled_under(prefix)
        async with self.requests:
            page = await self.client.list_objects_v2(
                self.settings.bucket, prefix=prefix, delimiter="/", max_keys=1
            )
        return bool(page.objects or page.common_prefixes)

    async def _stat_remote(self, key: str) -> tuple[ObjectInfo | None, bool]:
        """The object ``key`` (or None) and whether ``key/`` holds objects, from one listing when it can.

        Keys starting with ``key`` sort as: ``key`` itself, then ``key`` followed by characters below
        "/" (``key.txt``, ``key-1``), then the prefix ``key/``. One page answers both questions unless
        it ends before reaching ``key/``; only then is a second, one-key listing needed.

        A directory bucket lists only by prefixes ending in "/" and in no order: there a HeadObject and
        a one-key listing of ``key/`` answer the two questions, at once.
        """
        await self.deletes.settled_under(key)
        if not self.ordered_listings:
            info, is_dir = await asyncio.gather(self._head(key), self._has_objects(key + "/"))
            return info, is_dir
        async with self.requests:
            page = await self.client.list_objects_v2(
                self.settings.bucket, prefix=key, delimiter="/", max_keys=LOOKUP_LIST_KEYS
            )
        info = next((o for o in page.objects if o.key == key), None)
        is_dir = key + "/" in page.common_prefixes
        seen = max([o.key for o in page.objects] + page.common_prefixes, default="")
        if not is_dir and page.next_continuation_token is not None and seen < key + "/":
            is_dir = await self._has_objects(key + "/")
        return info, is_dir

    async def _resolve(self, parent: Inode, name: str) -> Inode | None:
        """The entry ``name`` in ``parent``: from the table while it is fresh, else from a listing of
        ``parent`` (s3csi.fs.lookups), else from S3 for this one name.

        Like mount-s3, a directory (any object under ``name/``) wins over an object named ``name``.
        """
        now = time.monotonic()
        known = self.table.child(parent.ino, name)
        source = self._lookup_source(parent, name, known, now)
        if source is LookupSource.LIST_DIRECTORY:
            if await self._list_for_lookup(parent):
                # A complete listing just now: the table holds every child there is.
                return self.table.child(parent.ino, name)
            known = self.table.child(parent.ino, name)
            source = self._lookup_source(parent, name, known, time.monotonic())
        if source is LookupSource.TABLE:
            return known
        if source is LookupSource.ABSENT:
            return None
        parent.listing = dataclasses.replace(parent.listing, asked_by_name=True)
        key = parent.key + name
        info, is_dir = await self._stat_remote(key)
        if is_dir:
            return self._dir_inode(parent, name)
        if info is not None:
            return self._object_inode(parent, name, info)
        current = self.table.child(parent.ino, name)
        if current is not None and current.state is not State.REMOTE:
            return current  # made through this mount while S3 was asked
        if current is not None:
            self.table.unlink(parent.ino, name)
        self.table.set_negative(parent.ino, name, now + self.settings.negative_metadata_ttl_s)
        return None

    def _lookup_source(self, parent: Inode, name: str, known: Inode | None, now: float) -> LookupSource:
        known_until = None
        if known is not None:
            known_until = known.valid_until if known.state is State.REMOTE else math.inf
        negative = known is None and self.table.is_negative(parent.ino, name, now)
        return lookup_source(now, known_until, negative, parent.listing)

    async def _list_for_lookup(self, directory: Inode) -> bool:
        """List ``directory`` into the table (one listing at a time per directory, shared by the lookups
        that wait for it); whether the listing was complete."""
        running = self._lookup_listings.get(directory.ino)
        if running is None:
            running = asyncio.create_task(self._list_into_table(directory), name=f"list {directory.key}")
            self._lookup_listings[directory.ino] = running
            running.add_done_callback(lambda _: self._lookup_listings.pop(directory.ino, None))
        return await asyncio.shield(running)

    async def _list_into_table(self, directory: Inode) -> bool:
        started = time.monotonic()
        entries = await self._list_children(directory, max_pages=LOOKUP_LIST_PAGES)
        if self.table.get(directory.ino) is not directory:
            return False  # forgotten while it was listed (the lookups waiting for it were interrupted)
        if entries is None:
            directory.listing = DirectoryKnowledge(too_large_until=started + self.settings.metadata_ttl_s)
            return False
        valid_until = self._expiry()
        for entry in entries:
            self._entry_inode(directory, entry, valid_until)
        self._record_listing(directory, {entry.name for entry in entries}, started=started)
        return True

    async def _list_children(self, directory: Inode, max_pages: int) -> list[Entry] | None:
        """The entries directly in ``directory``, or None when there are more than ``max_pages`` pages."""
        order = entry_order(directory.key, ordered=self.ordered_listings)
        entries: list[Entry] = []
        token: str | None = None
        await self.deletes.settled_under(directory.key)
        for _ in range(max_pages):
            async with self.requests:
                page = await self.client.list_objects_v2(
                    self.settings.bucket, prefix=directory.key, delimiter="/", continuation_token=token
                )
            entries += order.page(page.objects, page.common_prefixes)
            token = page.next_continuation_token
            if token is None:
                return entries + order.end()
        return None

    def _record_listing(self, directory: Inode, names: set[str], *, started: float) -> None:
        """A complete listing of ``directory``, begun at ``started``, whose entries are in the table: the
        remote children it lacks out of the table, and the directory marked as listed."""
        for stale in self.table.children(directory.ino):
            # A child refreshed after the listing began (an upload completed meanwhile) is newer than it.
            refreshed_since = stale.valid_until > started + self.settings.metadata_ttl_s
            if stale.state is State.REMOTE and stale.name not in names and not refreshed_since:
                self.table.unlink(directory.ino, stale.name)
        directory.listing = recorded_listing(
            tuple(sorted(names)),
            started=started,
            metadata_ttl_s=self.settings.metadata_ttl_s,
            negative_ttl_s=self.settings.negative_metadata_ttl_s,
            all_held=all(self.table.child(directory.ino, name) is not None for name in names),
        )

    def _mark_ancestors_remote(self, inode: Inode) -> None:
        """An object now exists under these directories: they are no longer local only."""
        parent = self.table.get(inode.parent)
        while parent is not None and parent.ino != ROOT_INODE and parent.state is State.LOCAL:
            self.table.set_state(parent, State.REMOTE)
            parent.valid_until = self._expiry()
            parent = self.table.get(parent.parent)

    # ---- names -----------------------------------------------------------------------------------

    @fuse_errors
    async def lookup(self, parent_inode: int, name: bytes, ctx: Any = None) -> pyfuse3.EntryAttributes:
        parent = self._directory(parent_inode)
        text = os.fsdecode(name)
        if not is_visible_name(text):
            raise fail(errno.ENOENT)
        inode = await self._resolve(parent, text)
        # A process that names a file sees its stored times, mode and kind (a listing has none of them).
        if inode is not None and self._needs_metadata(inode) and not await self._read_metadata(inode):
            self.table.unlink(parent.ino, text)
            inode = None
        if inode is None:
            return self._negative_entry()
        self.table.remember(inode)
        return self.attributes(inode)

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        for ino, count in inode_list:
            self.table.forget(ino, count)

    @fuse_errors
    async def getattr(self, inode: int, ctx: Any = None) -> pyfuse3.EntryAttributes:
        found = self._inode(inode)
        if found.kind is Kind.FILE and found.state is State.REMOTE and found.valid_until <= time.monotonic():
            await self._refresh(found)
        elif self._needs_metadata(found) and not await self._read_metadata(found):
            raise fail(errno.ENOENT)
        return self.attributes(found)

    @fuse_errors
    async def setattr(
        self,
        inode: int,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: int | None,
        ctx: Any,
    ) -> pyfuse3.EntryAttributes:
        self._refuse_if_read_only()
        found = self._inode(inode)
        new_uid = attr.st_uid if fields.update_uid else None
        new_gid = attr.st_gid if fields.update_gid else None
        if not chown_allowed(self.settings.uid, self.settings.gid, new_uid, new_gid):
            raise fail(errno.EPERM)  # ownership is the volume's; to the same owner and group, a no-op
        if fields.update_size:
            await self._set_size(found, attr.st_size)
        changes = self._attribute_changes(found, attr, fields)
        if changes != NOTHING_STORED:
            await self._set_attributes(found, changes)
        return self.attributes(found)

    def _attribute_changes(
        self, inode: Inode, attr: pyfuse3.EntryAttributes, fields: pyfuse3.SetattrFields
    ) -> StoredAttributes:
        mode = None
        # chmod of a symbolic link does not exist on Linux (it follows the link).
        if fields.update_mode and not self._is_symlink(inode):
            mode = (stat.S_IFDIR if inode.is_dir else stat.S_IFREG) | (attr.st_mode & PERMISSION_BITS)
        return StoredAttributes(
            mtime_ns=attr.st_mtime_ns if fields.update_mtime else None,
            atime_ns=attr.st_atime_ns if fields.update_atime else None,
            mode=mode,
        )

    async def _set_attributes(self, inode: Inode, changes: StoredAttributes) -> None:
        """chmod/utimensat: kept in memory for a directory (no object to keep them with) and for a
        file being written (they travel with its upload); on an object, a metadata copy."""
        if inode.kind is Kind.DIRECTORY or inode.state is not State.REMOTE:
            inode.stored = combine(inode.stored, changes)
            writer = self._writer_of(inode)
            if writer is not None:
                writer.metadata = merged(writer.metadata, inode.stored)
            staged = self.staged.get(inode.ino)
            if staged is not None:
                staged.dirty = True  # the attributes go with the copy's next upload
            return
        if self.holds.hold(inode.ino, changes, time.monotonic()):
            # Just uploaded by this mount: a rename soon carries them, else one copy stores them all.
            inode.stored = combine(inode.stored, changes)
            self._store_held_later(inode)
            return
        await self._settle_attributes(inode)
        await self._store_attributes(inode, changes)

    def _known_object(self, inode: Inode) -> ObjectInfo | None:
        """The object's current version as this mount knows it (it wrote or read its metadata), or None."""
        if self._needs_metadata(inode) or inode.etag is None:
            return None
        return ObjectInfo(
            inode.key,
            inode.size,
            inode.etag,
            inode.mtime_ns / NS_PER_S,
            inode.metadata or {},
            inode.content_type,
        )

    async def _copy_with_attributes(
        self, inode: Inode, changes: StoredAttributes, dest_key: str
    ) -> tuple[str, dict[str, str]]:
        """Copy ``inode``'s object to ``dest_key`` (its own key: a metadata copy) with ``changes`` in its
        user metadata: one CopyObject when this mount knows the object's current metadata, a HEAD before
        otherwise. The copy is of that version only: if another client replaced the object meanwhile, it
        is read again and the copy made once more. Returns the copy's ETag and metadata."""
        known = self._known_object(inode)
        for attempt in (1, 2):
            if known is None:
                known = await self._head(inode.key)
                if known is None:
                    raise fail(errno.ENOENT)
                self._learn(inode, known)
            metadata = merged(known.metadata, combine(decode(known.metadata), changes))
            try:
                async with self.requests:
                    etag = await self.client.replace_metadata(
                        self.settings.bucket, known, metadata, self.write_options, dest_key=dest_key
                    )
                return etag, metadata
            except S3Error as exc:
                if exc.code != PRECONDITION_FAILED or attempt == 2:
                    raise
                known = None
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def _store_attributes(self, inode: Inode, changes: StoredAttributes) -> None:
        """``changes`` into the object's user metadata: a copy onto itself (``_copy_with_attributes``)."""
        etag, metadata = await self._copy_with_attributes(inode, changes, inode.key)
        self.read_ahead.drop(inode.key)
        inode.etag, inode.valid_until = etag, self._expiry()
        inode.stored, inode.stored_for = decode(metadata), (etag, None)
        inode.metadata = metadata
        held = self.holds.held(inode.ino)
        if held is not None:
            inode.stored = combine(inode.stored, held)  # set while this copy was made, stored next

    # ---- attribute changes held for a moment (s3csi.fs.holds) -----------------------------------

    def _store_held_later(self, inode: Inode) -> None:
        """Store the changes held for ``inode`` when their time is up (unless a rename carries them)."""
        if inode.ino not in self._hold_timers:
            timer = asyncio.get_running_loop().call_later(self.holds.hold_s, self._start_storing_held, inode)
            self._hold_timers[inode.ino] = timer, inode

    def _start_storing_held(self, inode: Inode) -> asyncio.Task[bool]:
        """A task storing what is held for ``inode`` now (the one under way, if any, is waited for first)."""
        self._cancel_timer(inode.ino)
        before = self._storing.get(inode.ino)
        task = background(self._store_held(inode, before), name=STORE_TASK_PREFIX + inode.key)
        self._storing[inode.ino] = task
        task.add_done_callback(lambda done: self._forget_store(inode.ino, done))
        return task

    def _cancel_timer(self, ino: int) -> None:
        timer = self._hold_timers.pop(ino, None)
        if timer is not None:
            timer[0].cancel()

    def _forget_store(self, ino: int, done: asyncio.Task[bool]) -> None:
        if self._storing.get(ino) is done:
            del self._storing[ino]

    async def _store_held(self, inode: Inode, before: asyncio.Task[bool] | None) -> bool:
        """The held changes into S3 with one metadata copy; whether nothing held was lost."""
        if before is not None:
            await asyncio.wait([before])
        changes = self.holds.take(inode.ino)
        if changes is None or not inode.linked or inode.state is not State.REMOTE:
            # Nothing held, or the object is gone or being replaced (its new upload carries its own).
            return True
        try:
            # If another client replaced the object meanwhile, onto its version, as a change stored at
            # once would be (this mount's own uploads wait for this copy: _wait_for_attribute_copy).
            await self._store_attributes(inode, changes)
        except (S3Error, pyfuse3.FUSEError) as exc:
            log.error(
                "times or mode set on s3://%s/%s were not stored: %s", self.settings.bucket, inode.key, exc
            )
            self._unstored.append(inode.key)
            return False
        return True

    async def _wait_for_attribute_copy(self, inode: Inode) -> None:
        """Before an upload replaces ``inode``'s object: a metadata copy of it under way lands first, so
        that it never finds (and re-reads) the new version and puts older times on it."""
        storing = self._storing.get(inode.ino)
        if storing is not None:
            await asyncio.wait([storing])

    async def _settle_attributes(self, inode: Inode) -> bool:
        """Changes held for ``inode`` stored now, and any store of them under way finished, before its
        object is copied or read for a change of its own; whether they were all stored."""
        if self.holds.held(inode.ino) is not None:
            self._start_storing_held(inode)
        storing = self._storing.get(inode.ino)
        return True if storing is None else await asyncio.shield(storing)

    def _drop_held(self, inode: Inode) -> None:
        """The object is deleted or replaced: what was held for it goes with it."""
        self._cancel_timer(inode.ino)
        self.holds.take(inode.ino)
        self.holds.published(inode.ino)

    # ---- directories -----------------------------------------------------------------------------

    @fuse_errors
    async def opendir(self, inode: int, ctx: Any) -> int:
        directory = self._directory(inode)
        fh = self._new_fh()
        self.listings[fh] = DirectoryRead(inode, directory.key, ordered=self.ordered_listings)
        return fh

    @fuse_errors
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        """Entries from offset ``start_id`` until the reply is full, listing S3 a page at a time as the
        read gets past what it has (s3csi.fs.listing)."""
        read = self.listings.get(fh)
        if read is None:
            raise fail(errno.EBADF)
        parent = self._directory(read.ino)
        if not read.begun:
            local = [
                name for name in self.table.local_children(parent.ino) if self.table.child(parent.ino, name)
            ]
            read.begin(local, time.monotonic())
        # "." and "..", offsets 0 and 1, like every file system. The kernel takes no lookup count for
        # them (it knows both inodes already), so none is added here.
        offset = start_id
        while offset < len(DOT_ENTRIES):
            dot = parent if offset == 0 else self.table.get(parent.parent) or parent
            if not pyfuse3.readdir_reply(token, DOT_ENTRIES[offset], self.attributes(dot), offset + 1):
                return
            offset += 1
        # S3 is asked only while this reply is still empty (of entries other than the dots): a failure
        # then fails the call without losing entries already put in the reply, whose lookup counts are
        # taken (the kernel resumes after them and asks again).
        replied = False
        offset -= len(DOT_ENTRIES)  # an index into the names this read has shown
        while True:
            while offset < len(read.names):
                name = read.names[offset]
                inode = self.table.child(parent.ino, name)
                if inode is None:
                    if replied:
                        return
                    # Forgotten by the kernel (or deleted) since this read showed it: ask S3 again.
                    inode = await self._resolve(parent, name)
                if inode is not None:
                    next_offset = offset + 1 + len(DOT_ENTRIES)
                    if not pyfuse3.readdir_reply(
                        token, os.fsencode(name), self.attributes(inode), next_offset
                    ):
                        return
                    self.table.remember(inode)
                    replied = True
                offset += 1
            if replied or not read.needs_page(offset):
                return
            await self._read_page(parent, read)

    async def _read_page(self, directory: Inode, read: DirectoryRead) -> None:
        """The next page of S3's listing into ``read`` and the table; at the end of a small directory,
        the listing cache (s3csi.fs.lookups)."""
        await self.deletes.settled_under(directory.key)
        async with self.requests:
            page = await self.client.list_objects_v2(
                self.settings.bucket, prefix=directory.key, delimiter="/", continuation_token=read.token
            )
        valid_until = self._expiry()
        for entry in read.take_page(page.objects, page.common_prefixes, page.next_continuation_token):
            inode = self._entry_inode(directory, entry, valid_until)
            if inode is not None:
                read.shown(inode.name)
        if not read.complete:
            return
        if read.remote is not None:
            self._record_listing(directory, set(read.remote), started=read.listed_at)
        else:
            directory.listing = DirectoryKnowledge(
                too_large_until=read.listed_at + self.settings.metadata_ttl_s
            )

    def _entry_inode(self, parent: Inode, entry: Entry, valid_until: float) -> Inode | None:
        if entry.info is not None:
            return self._object_inode(parent, entry.name, entry.info, valid_until)
        known = self.table.child(parent.ino, entry.name)
        if known is not None and known.is_dir and known.state is State.LOCAL:
            return known
        return self._dir_inode(parent, entry.name, valid_until=valid_until)

    @fuse_errors
    async def releasedir(self, fh: int) -> None:
        self.listings.pop(fh, None)

    @fuse_errors
    async def mkdir(self, parent_inode: int, name: bytes, mode: int, ctx: Any) -> pyfuse3.EntryAttributes:
        self._refuse_if_read_only()
        parent = self._directory(parent_inode)
        text = os.fsdecode(name)
        if not fits_in_key(parent.key, text):
            raise fail(errno.ENAMETOOLONG)
        if await self._resolve(parent, text) is not None:
            raise fail(errno.EEXIST)
        inode = self._dir_inode(parent, text, state=State.LOCAL)
        self.table.remember(inode)
        return self.attributes(inode)

    @fuse_errors
    async def rmdir(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        self._refuse_if_read_only()
        parent = self._directory(parent_inode)
        text = os.fsdecode(name)
        inode = await self._resolve(parent, text)
        if inode is None:
            raise fail(errno.ENOENT)
        if not inode.is_dir:
            raise fail(errno.ENOTDIR)
        if self.table.local_children(inode.ino):
            raise fail(errno.ENOTEMPTY)
        await self.deletes.settled_under(inode.key)
        async with self.requests:
            page = await self.client.list_objects_v2(
                self.settings.bucket, prefix=inode.key, delimiter="/", max_keys=2
            )
        marker = any(o.key == inode.key for o in page.objects)
        if page.common_prefixes or any(o.key != inode.key for o in page.objects):
            raise fail(errno.ENOTEMPTY)
        if marker:
            # A "directory marker" (the key "name/", which s3fs and the S3 console make): the only
            # object of an empty directory, deleted with it.
            if not self.settings.allow_delete:
                raise fail(errno.EPERM)
            async with self.requests:
                await self.client.delete_object(self.settings.bucket, inode.key)
        # Otherwise nothing in S3 to delete: directories are prefixes, and this one holds no object.
        self.table.unlink(parent.ino, text)

    # ---- files -----------------------------------------------------------------------------------

    @fuse_errors
    async def open(self, inode: int, flags: int, ctx: Any) -> pyfuse3.FileInfo:
        found = self._inode(inode)
        if found.is_dir:
            raise fail(errno.EISDIR)
        fh = self._new_fh()
        staged = self.staged.get(found.ino)
        if flags & os.O_ACCMODE == os.O_RDONLY and staged is not None:
            self._open_staged(fh, found, staged, writes=False)  # the bytes this mount's writers staged
            return pyfuse3.FileInfo(fh=fh)
        if flags & os.O_ACCMODE == os.O_RDONLY:
            if found.state is State.WRITING:
                raise fail(errno.EBUSY)  # its bytes are not in S3 until it is closed
            if found.valid_until <= time.monotonic():
                await self._refresh(found)
            reader = self._reader(found)
            now = time.monotonic()
            # Not a file this mount has just uploaded: tools open those to fchmod them, not to read them
            # (rsync), and a read still fetches it.
            if reader.is_small and not self.holds.just_uploaded(found.ino, now):
                reader.fetch_small_object(self.read_ahead.take(found.key, found.etag, now))
                self._read_siblings_ahead(found)
            self.files[fh] = OpenFile(found, reader=reader)
            return pyfuse3.FileInfo(fh=fh)
        self._refuse_if_read_only()
        if staged is None and appends_in_place(
            flags,
            incremental_upload=self.settings.incremental_upload,
            exists_in_s3=found.state is State.REMOTE,
        ):
            await self._start_appending(fh, found)
            return pyfuse3.FileInfo(fh=fh)
        plan = open_plan(
            flags,
            exists=staged is None or staged.stored,  # a new file staged by another handle is not in S3
            staged_writes=self.staging is not None,
            allow_overwrite=self.settings.allow_overwrite,
        )
        if isinstance(plan, Refusal):
            # S3 objects cannot be modified in place; replacing one needs --allow-overwrite and O_TRUNC,
            # changing one needs --staged-writes.
            self._log_refusal("open for writing", found, plan)
            raise fail(plan.errno)
        if staged is not None:
            # Another writer of a staged file: both write the one copy, as on a local file system.
            if flags & os.O_TRUNC:
                await staged.truncate(0)
            self._open_staged(fh, found, staged, writes=True, flags=flags)
            return pyfuse3.FileInfo(fh=fh)
        if found.state is State.WRITING:
            raise fail(errno.EBUSY)
        if plan is OpenPlan.STREAM:
            self._start_writing(fh, found)
        else:
            staged = await self._stage(found, copy=plan is OpenPlan.STAGE_COPY)
            self._open_staged(fh, found, staged, writes=True, flags=flags)
        return pyfuse3.FileInfo(fh=fh)

    def _log_refusal(self, what: str, inode: Inode, refusal: Refusal) -> None:
        repeats.log(
            log,
            logging.INFO,
            ("refused", what, refusal.needs),
            "%s of s3://%s/%s refused: it needs %s (docs/filesystem.md)",
            what,
            self.settings.bucket,
            inode.key,
            refusal.needs,
        )

    async def _stage(self, inode: Inode, *, copy: bool, size: int | None = None) -> StagedFile:
        """A staged copy of ``inode``, registered as its copy: the object's first ``size`` bytes (all
        of them when None) when ``copy``, else empty. Raises EFBIG past ``--max-staged-file-size``."""
        if self.staging is None:
            raise fail(errno.EPERM)
        # Times or mode held for it are stored first: a copy that is not changed is never uploaded.
        if not await self._settle_attributes(inode):
            raise fail(errno.EIO)
        if copy:
            # Always asked, whatever --metadata-ttl says: a size known from before another client changed
            # the object would cut its tail off when the copy is uploaded.
            await self._refresh(inode)
        length = min(inode.size, inode.size if size is None else size) if copy else 0
        if not within_limit(length, self.staging.limit):
            raise fail(errno.EFBIG)
        staged = await self.staging.new_copy(stored=True, dirty=not copy)
        try:
            await staged.fill(
                self.client,
                self.settings.bucket,
                inode.key,
                size=length,
                part_size=self.settings.read_part_size,
                requests=self.requests,
            )
        except BaseException:
            staged.close()
            raise
        joined = self.staged.get(inode.ino)
        if joined is None and (not inode.linked or inode.state is State.WRITING):
            # Deleted, or opened to be replaced on the fast path, while it was copied.
            staged.close()
            raise fail(errno.EBUSY if inode.linked else errno.ENOENT)
        if joined is not None:
            # Another open staged the same file while this one downloaded: share its copy.
            staged.close()
            if not copy:
                await joined.truncate(0)
            return joined
        self.read_ahead.drop(inode.key)
        self.staged[inode.ino] = staged
        self.table.set_state(inode, State.WRITING)
        return staged

    def _open_staged(
        self, fh: int, inode: Inode, staged: StagedFile, *, writes: bool, flags: int = os.O_RDONLY
    ) -> None:
        staged.handles += 1
        self.files[fh] = OpenFile(inode, staged=staged, writes=writes, appends=bool(flags & os.O_APPEND))

    async def _set_size(self, inode: Inode, size: int) -> None:
        """truncate/ftruncate: of a staged copy, or (--staged-writes) of a closed object through one; of
        a file being written, only the truncation an O_TRUNC open implies while it is still empty."""
        staged = self.staged.get(inode.ino)
        if staged is not None:
            self._content_changed(inode)
            await staged.truncate(size)
            return
        writer = self._writer_of(inode)
        if writer is not None or inode.state is not State.REMOTE:
            if writer is not None and writer.size == size:
                return
            handle = next((f for f in self.files.values() if writer is not None and f.writer is writer), None)
            if handle is None or await self._stage_written(handle) is None:
                raise fail(errno.EPERM)
            await self._set_size(inode, size)
            return
        refusal = truncate_refusal(
            staged_writes=self.staging is not None, allow_overwrite=self.settings.allow_overwrite
        )
        if refusal is not None:
            self._log_refusal("truncate", inode, refusal)
            raise fail(refusal.errno)
        if inode.valid_until <= time.monotonic():
            await self._refresh(inode)
        if size == inode.size:
            return
        if self.staged.get(inode.ino) is not None:
            await self._set_size(inode, size)  # opened while S3 was asked
            return
        # truncate(2) of a file nobody has open: a copy of what stays, and the upload now (no close follows).
        staged = await self._stage(inode, copy=True, size=size)
        staged.handles += 1
        try:
            await staged.truncate(size)
            await self._upload_staged(inode, staged)
        finally:
            staged.handles -= 1
            if staged.handles == 0:
                self._retire_staged(inode, staged)

    def _reader(self, inode: Inode) -> ObjectReader:
        return ObjectReader(
            self.client,
            self.settings.bucket,
            inode.key,
            inode.size,
            inode.etag or "",
            self.read_policy,
            self.requests,
            self.cache,
            self.prefetch,
        )

    def _read_siblings_ahead(self, opened: Inode) -> None:
        """A small file opened right after its predecessor: fetch the small files after it (fs/siblings)."""
        directory = self.table.get(opened.parent)
        previous = self.read_ahead.opened(opened.parent, opened.name)
        if directory is None or not opened.linked:
            return
        now = time.monotonic()
        for name in siblings_to_fetch(directory.listing.names, previous, opened.name, SIBLINGS_AHEAD):
            sibling = self.table.child(directory.ino, name)
            if (
                sibling is None
                or sibling.kind is not Kind.FILE
                or sibling.state is not State.REMOTE
                or sibling.valid_until <= now
                or sibling.etag is None
                or self.read_ahead.holds(sibling.key)
            ):
                continue
            if self._needs_metadata(sibling):
                self._fetch_whole(sibling)  # its attributes come with it, for the lookup before the open
                continue
            fetching = self._reader(sibling).fetch_small_object()
            if fetching is not None:
                self.read_ahead.hold(sibling.key, sibling.etag, now + self.settings.metadata_ttl_s, fetching)

    def _writer_for(self, key: str) -> ObjectWriter:
        return ObjectWriter(
            self.client,
            self.settings.bucket,
            key,
            self.settings.write_part_size,
            self.write_options,
            self.requests,
            flush_deadline_s=flush_deadline(self.client.settings.request_timeout_s),
        )

    async def _start_appending(self, fh: int, inode: Inode) -> None:
        """--incremental-upload: append to the object in place (s3csi.fs.appender), from its size now."""
        await self._refresh(inode)  # always asked: appends must start where the object ends
        writer = AppendWriter(
            self.client,
            self.settings.bucket,
            inode.key,
            self.settings.write_part_size,
            self.write_options,
            self.requests,
            flush_deadline_s=flush_deadline(self.client.settings.request_timeout_s),
            size=inode.size,
            etag=inode.etag or "",
        )
        # Appends keep the object's metadata: nothing to copy once they are done.
        writer.metadata = dict(inode.metadata or {})
        writer.sent_metadata = dict(writer.metadata)
        self.read_ahead.drop(inode.key)
        self.table.set_state(inode, State.WRITING)
        self.files[fh] = OpenFile(inode, writer=writer)

    def _start_writing(self, fh: int, inode: Inode) -> None:
        writer = self._writer_for(inode.key)
        # A file replaced keeps the mode it was given (a narrowed one stays narrow); its times are new.
        inode.stored = StoredAttributes(mode=self._stored(inode).mode)
        self._drop_held(inode)  # the mode among them travels with the new upload
        writer.metadata = encode(inode.stored)
        self.read_ahead.drop(inode.key)
        inode.size, inode.mtime_ns = 0, time.time_ns()
        self.table.set_state(inode, State.WRITING)
        self.files[fh] = OpenFile(inode, writer=writer)

    @fuse_errors
    async def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: Any
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        self._refuse_if_read_only()
        parent = self._directory(parent_inode)
        text = os.fsdecode(name)
        if not fits_in_key(parent.key, text):
            raise fail(errno.ENAMETOOLONG)
        await self.deletes.settled(parent.key + text)  # renamed away a moment ago: gone before it is made
        existing = self.table.child(parent.ino, text)
        if existing is not None and existing.state is not State.REMOTE:
            raise fail(errno.EEXIST)
        if not self.settings.allow_overwrite and await self._head(parent.key + text) is not None:
            # The kernel believed the name free (a cached negative entry), but S3 has it now.
            raise fail(errno.EEXIST)
        plan = open_plan(
            flags,
            exists=False,
            staged_writes=self.staging is not None,
            allow_overwrite=self.settings.allow_overwrite,
        )
        staged = None
        if self.staging is not None and plan is OpenPlan.STAGE_EMPTY:
            staged = await self.staging.new_copy(stored=False, dirty=True)
        inode = self.table.upsert(parent.ino, text, Kind.FILE, valid_until=0.0, state=State.WRITING)
        fh = self._new_fh()
        if staged is None:
            self._start_writing(fh, inode)
        else:
            self.read_ahead.drop(inode.key)
            inode.size, inode.mtime_ns = 0, time.time_ns()
            self.staged[inode.ino] = staged
            self._open_staged(fh, inode, staged, writes=True, flags=flags)
        self.table.remember(inode)
        return pyfuse3.FileInfo(fh=fh), self.attributes(inode)

    @fuse_errors
    # pyfuse3 replies from any contiguous buffer (PyObject_GetBuffer); its stub says bytes.
    async def read(self, fh: int, off: int, size: int) -> bytes | memoryview:  # type: ignore[override]
        handle = self.files.get(fh)
        if handle is None:
            raise fail(errno.EBADF)
        if handle.staged is not None:
            return await handle.staged.read(off, size)
        if handle.reader is None:
            raise fail(errno.EBUSY)  # reading back a file being written
        return await handle.reader.read(off, size)

    @fuse_errors
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        handle = self.files.get(fh)
        if handle is not None and handle.staged is not None and handle.writes:
            if handle.appends and off != handle.staged.size:
                # The kernel took the end from a size it was told before another client changed the object:
                # the append goes to the real end, and the kernel's stale size and pages are dropped.
                self._invalidate_soon(handle.inode.ino)
            self._content_changed(handle.inode)
            return await handle.staged.write(off, buf, append=handle.appends)
        if handle is None or handle.writer is None:
            raise fail(errno.EBADF)
        if handle.writer.reopen_if_empty(off):
            self.table.set_state(handle.inode, State.WRITING)
        staged = await self._stage_written(handle) if off != handle.writer.size else None
        if staged is not None:
            return await staged.write(off, buf)
        return await handle.writer.write(off, buf)

    def _invalidate_soon(self, ino: int) -> None:
        """Have the kernel forget its attributes and pages of ``ino``, once this request is answered: in
        a worker thread, since the kernel may wait for the pages the request holds."""

        def invalidate() -> None:
            try:
                pyfuse3.invalidate_inode(ino, attr_only=False)
            except OSError as exc:  # the inode is gone from the kernel meanwhile, or a kernel without it
                log.debug("cannot invalidate inode %d: %s", ino, exc)

        asyncio.get_running_loop().run_in_executor(None, invalidate)

    async def _stage_written(self, handle: OpenFile) -> StagedFile | None:
        """--staged-writes: a file on the fast path written out of order, or truncated, before any of it
        left for S3 (less than one part written) moves to a staged copy, which this returns."""
        if self.staging is None or handle.writer is None or handle.writer.buffered_only() is None:
            return None
        staged = await self.staging.new_copy(stored=handle.inode.etag is not None, dirty=True)
        data = handle.writer.buffered_only() if handle.writer is not None else None  # again, after the wait
        if data is None or not within_limit(len(data), self.staging.limit):
            staged.close()
            return None
        # Nothing was sent to S3, so there is nothing to abort: the writer is simply dropped.
        handle.writer, handle.staged, handle.writes = None, staged, True
        staged.handles += 1
        self.staged[handle.inode.ino] = staged
        await staged.write(0, data)
        return staged

    async def _finish_upload(self, handle: OpenFile) -> None:
        writer, inode = handle.writer, handle.inode
        if writer is None or writer.completed is not None:
            return
        await self._wait_for_attribute_copy(inode)
        try:
            done = await writer.complete()
        except BaseException:
            log.error("upload of s3://%s/%s failed: the file was not stored", writer.bucket, writer.key)
            if inode.linked and inode.state is State.WRITING:
                self.table.unlink(inode.parent, inode.name)
            raise
        inode.size, inode.etag, inode.valid_until = done.size, done.etag, self._expiry()
        sent = writer.sent_metadata or {}
        inode.stored, inode.stored_for, inode.metadata = decode(sent), (done.etag, None), sent or None
        inode.content_type = None
        self.table.set_state(inode, State.REMOTE)
        self._mark_ancestors_remote(inode)
        self.holds.uploaded(inode.ino, time.monotonic())
        if writer.metadata != sent:
            # Set (futimens, fchmod) after a multipart upload had begun with the metadata it had then.
            await self._store_attributes(inode, decode(writer.metadata))

    def _content_changed(self, inode: Inode) -> None:
        """A write or truncate of a staged copy: the file's times become those of its upload (unless set
        again afterwards); its mode stays (a narrowed file stays narrow)."""
        inode.stored = StoredAttributes(mode=inode.stored.mode)

    async def _upload_staged(self, inode: Inode, staged: StagedFile) -> None:
        """The staged copy to S3 when it has changes S3 lacks (every close and fsync: durable when they
        return). On failure the copy stays as it is, and the next close or fsync tries again. The upload
        replaces the object, so it carries the file's stored attributes and every other tool's metadata."""
        await self._wait_for_attribute_copy(inode)
        writer = self._writer_for(inode.key)
        others = {key: value for key, value in (inode.metadata or {}).items() if key not in STORED_KEYS}
        writer.metadata = merged(others, inode.stored)
        try:
            done = await staged.upload(writer)
        except BaseException:
            log.error("upload of s3://%s/%s failed: its changes are not stored", writer.bucket, writer.key)
            raise
        if done is not None:
            inode.size, inode.etag, inode.mtime_ns = done.size, done.etag, time.time_ns()
            sent = writer.sent_metadata or {}
            inode.stored, inode.stored_for, inode.metadata = decode(sent), (done.etag, None), sent or None
            self._mark_ancestors_remote(inode)
            self.holds.uploaded(inode.ino, time.monotonic())

    def _retire_staged(self, inode: Inode, staged: StagedFile) -> None:
        """The last handle of a staged copy is gone: the copy goes, S3's object stands for the file."""
        if self.staged.get(inode.ino) is staged:
            del self.staged[inode.ino]
        staged.close()
        if staged.dirty:
            log.error(
                "s3://%s/%s closed with changes that are not stored (their upload failed)",
                self.settings.bucket,
                inode.key,
            )
        if staged.stored:
            self.table.set_state(inode, State.REMOTE)
            # A failed upload leaves S3's object as it was: ask S3 again rather than trust the copy.
            inode.valid_until = 0.0 if staged.dirty else self._expiry()
        elif inode.linked and inode.state is State.WRITING:
            self.table.unlink(inode.parent, inode.name)

    @fuse_errors
    async def flush(self, fh: int) -> None:
        handle = self.files.get(fh)
        if handle is not None and handle.staged is not None:
            if handle.writes:
                await self._upload_staged(handle.inode, handle.staged)
        elif handle is not None:
            await self._finish_upload(handle)

    @fuse_errors
    async def fsync(self, fh: int, datasync: bool) -> None:
        handle = self.files.get(fh)
        if handle is not None and handle.staged is not None:
            await self._upload_staged(handle.inode, handle.staged)
        elif handle is not None:
            await self._finish_upload(handle)
        # Times or mode held for it (s3csi.fs.holds) are in S3 when fsync returns, too.
        stored = handle is None or handle.inode.state is not State.REMOTE
        if not stored and handle is not None and not await self._settle_attributes(handle.inode):
            raise fail(errno.EIO)

    @fuse_errors
    async def release(self, fh: int) -> None:
        handle = self.files.pop(fh, None)
        if handle is None:
            return
        if handle.staged is not None:
            handle.staged.handles -= 1
            if handle.staged.handles == 0:
                self._retire_staged(handle.inode, handle.staged)
            return
        if handle.reader is not None:
            handle.reader.close()
            # The parts it freed stay in the heap for the next read (s3csi.fs.allocator) unless none is left.
            readers_open = sum(1 for other in self.files.values() if other.reader is not None)
            if worth_releasing(handle.reader.parts_fetched, readers_open):
                release_free_memory()
        if handle.writer is not None and handle.writer.completed is None:
            # flush always precedes release; an upload still open here failed there and was reported.
            await handle.writer.abort()
            if handle.inode.linked and handle.inode.state is State.WRITING:
                self.table.unlink(handle.inode.parent, handle.inode.name)

    @fuse_errors
    async def unlink(self, parent_inode: int, name: bytes, ctx: Any) -> None:
        self._refuse_if_read_only()
        if not self.settings.allow_delete:
            raise fail(errno.EPERM)
        parent = self._directory(parent_inode)
        text = os.fsdecode(name)
        inode = await self._resolve(parent, text)
        if inode is None:
            raise fail(errno.ENOENT)
        if inode.is_dir:
            raise fail(errno.EISDIR)
        if inode.state is State.WRITING:
            raise fail(errno.EBUSY)
        self._drop_held(inode)
        storing = self._storing.get(inode.ino)
        if storing is not None:
            await asyncio.wait([storing])  # a metadata copy landing after the delete would fail anyway
        self.read_ahead.drop(inode.key)
        async with self.requests:
            await self.client.delete_object(self.settings.bucket, inode.key)
        self.table.unlink(parent.ino, text)

    @fuse_errors
    async def rename(  # noqa: PLR0917 - pyfuse3's signature
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: Any,
    ) -> None:
        self._refuse_if_read_only()
        if not self.settings.allow_rename:
            raise fail(errno.EPERM)
        if flags & ~RENAME_NOREPLACE:
            raise fail(errno.EINVAL)  # RENAME_EXCHANGE, RENAME_WHITEOUT: no way to do them on S3
        old_parent, new_parent = self._directory(parent_inode_old), self._directory(parent_inode_new)
        old_name, new_name = os.fsdecode(name_old), os.fsdecode(name_new)
        if not fits_in_key(new_parent.key, new_name):
            raise fail(errno.ENAMETOOLONG)
        source = await self._resolve(old_parent, old_name)
        if source is None:
            raise fail(errno.ENOENT)
        if source.is_dir:
            raise fail(errno.ENOTSUP)  # a directory is every key under a prefix: no copy of it is a rename
        if source.state is State.WRITING:
            raise fail(errno.EBUSY)
        target = await self._resolve(new_parent, new_name)
        if target is not None:
            if flags & RENAME_NOREPLACE:
                raise fail(errno.EEXIST)
            if target.is_dir:
                raise fail(errno.EISDIR)
            if target.state is State.WRITING:
                raise fail(errno.EBUSY)
            if not self.settings.allow_overwrite:
                raise fail(errno.EPERM)
        new_key = new_parent.key + new_name
        self.read_ahead.drop(source.key)
        self.read_ahead.drop(new_key)
        # Not atomic: between the copy and the delete both names exist (docs/filesystem.md). The delete
        # finishes after rename returns; what could see the old key waits for it (s3csi.fs.deletes).
        await self.deletes.settled(new_key)
        etag, metadata = await self._copy_for_rename(source, new_key)
        self.deletes.start(source.key, f"s3://{self.settings.bucket}/{source.key}")
        self.table.move(source, new_parent.ino, new_name)
        # The copy is known as this mount made it, so the lookup of the new name asks S3 nothing.
        source.etag, source.mtime_ns, source.valid_until = etag, time.time_ns(), self._expiry()
        if metadata is None:
            source.stored_for = None  # the copy has the source's metadata, which the mount did not read
        else:
            source.stored, source.stored_for, source.metadata = decode(metadata), (etag, None), metadata
        self._mark_ancestors_remote(source)

    async def _delete_keys(self, keys: list[str]) -> dict[str, str]:
        """The old keys of renames (s3csi.fs.deletes): one DeleteObjects for several keys of a
        general-purpose bucket, else one DeleteObject each; why, for each key S3 did not delete."""
        if len(keys) > 1 and self.ordered_listings:
            async with self.requests:
                failed = await self.client.delete_batch(self.settings.bucket, keys)
            return {failure.key: f"{failure.code}: {failure.message}" for failure in failed}
        # A directory bucket gets one DeleteObject per key: DeleteObjects there is not tested against its
        # stand-in (tests/integration/express_support.py), and its checksum rules differ.
        results = await asyncio.gather(*(self._delete_one(key) for key in keys), return_exceptions=True)
        failures: dict[str, str] = {}
        for key, result in zip(keys, results, strict=True):
            if isinstance(result, S3Error):
                failures[key] = str(result)
            elif isinstance(result, BaseException):
                raise result
        return failures

    async def _delete_one(self, key: str) -> None:
        async with self.requests:
            await self.client.delete_object(self.settings.bucket, key)

    async def _copy_for_rename(self, source: Inode, new_key: str) -> tuple[str, Mapping[str, str] | None]:
        """The first half of a rename: ``source``'s object copied to ``new_key``, without asking S3 for
        its size first (the mount knows it from the lookup the rename follows). Times and mode held for
        it (s3csi.fs.holds) travel in this copy, which then replaces the metadata; otherwise the copy
        keeps the object's metadata and headers as they are. Returns the copy's ETag and user metadata
        (None when the mount does not know the source's)."""
        storing = self._storing.get(source.ino)
        if storing is not None:
            await asyncio.wait([storing])  # a metadata copy under way lands before this copy reads it
        self._cancel_timer(source.ino)
        held = self.holds.take(source.ino)
        self.holds.published(source.ino)
        if held is not None:
            try:
                return await self._copy_with_attributes(source, held, new_key)
            except BaseException:
                self.holds.restore(source.ino, held)  # still the source's: stored when their time is up
                self._store_held_later(source)
                raise
        metadata = None if self._needs_metadata(source) else dict(source.metadata or {})
        async with self.requests:
            etag = await self.client.copy_object(
                self.settings.bucket, source.key, new_key, self.write_options, size=source.size
            )
        return etag, metadata

    # ---- symbolic links ----------------------------------------------------------------------------

    @fuse_errors
    async def symlink(
        self, parent_inode: int, name: bytes, target: bytes, ctx: Any
    ) -> pyfuse3.EntryAttributes:
        """A new object holding the target, marked as a link by its mode (s3fs's format). Like any new
        file, allowed unless --read-only; it never replaces an entry (the kernel asks only for free
        names). The target is text: nothing in the mount follows it (the kernel resolves links)."""
        self._refuse_if_read_only()
        parent = self._directory(parent_inode)
        text = os.fsdecode(name)
        if not fits_in_key(parent.key, text) or len(target) >= PATH_MAX:
            raise fail(errno.ENAMETOOLONG)
        await self.deletes.settled(parent.key + text)
        if await self._resolve(parent, text) is not None:
            raise fail(errno.EEXIST)
        now = time.time_ns()
        stored = StoredAttributes(mtime_ns=now, mode=SYMLINK_MODE)
        metadata = encode(stored)
        async with self.requests:
            etag = await self.client.put_object(
                self.settings.bucket, parent.key + text, target, self.write_options, metadata
            )
        inode = self.table.upsert(
            parent.ino, text, Kind.FILE, size=len(target), etag=etag, mtime_ns=now, valid_until=self._expiry()
        )
        inode.stored, inode.stored_for, inode.metadata, inode.content_type = (
            stored,
            (etag, None),
            metadata,
            None,
        )
        self._mark_ancestors_remote(inode)
        self.table.remember(inode)
        return self.attributes(inode)

    @fuse_errors
    async def readlink(self, inode: int, ctx: Any) -> bytes:
        found = self._inode(inode)
        if found.kind is Kind.FILE and found.state is State.REMOTE and self._needs_metadata(found):
            await self._refresh(found)
        if not self._is_symlink(found):
            raise fail(errno.EINVAL)  # not a symbolic link
        async with self.requests:
            target = await self.client.get_object(self.settings.bucket, found.key, end=PATH_MAX)
        return bytes(target)

    # ---- what S3 cannot do -----------------------------------------------------------------------

    @fuse_errors
    async def link(
        self, inode: int, new_parent_inode: int, new_name: bytes, ctx: Any
    ) -> pyfuse3.EntryAttributes:
        self._refuse_if_read_only()
        raise fail(errno.ENOTSUP)

    @fuse_errors
    async def mknod(
        self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: Any
    ) -> pyfuse3.EntryAttributes:
        self._refuse_if_read_only()
        raise fail(errno.ENOTSUP)

    # ENOSYS tells the kernel this file system has no extended attributes: it stops asking and answers
    # EOPNOTSUPP itself from then on (so `ls -l` costs no round trip per file for ACLs or labels).
    @fuse_errors
    async def getxattr(self, inode: int, name: bytes, ctx: Any) -> bytes:
        raise fail(errno.ENOSYS)

    @fuse_errors
    async def listxattr(self, inode: int, ctx: Any) -> Sequence[bytes]:
        raise fail(errno.ENOSYS)

    @fuse_errors
    async def setxattr(self, inode: int, name: bytes, value: bytes, ctx: Any) -> None:
        raise fail(errno.ENOSYS)

    @fuse_errors
    async def removexattr(self, inode: int, name: bytes, ctx: Any) -> None:
        raise fail(errno.ENOSYS)

    @fuse_errors
    async def statfs(self, ctx: Any) -> pyfuse3.StatvfsData:
        data = pyfuse3.StatvfsData()
        data.f_bsize = data.f_frsize = BLOCK_SIZE
        data.f_blocks = data.f_bfree = data.f_bavail = STATFS_BLOCKS
        data.f_files = data.f_ffree = data.f_favail = STATFS_FILES
        data.f_namemax = 255
        return data

    # ---- shutdown --------------------------------------------------------------------------------

    async def finish_uploads(self, timeout_s: float) -> list[str]:
        """At unmount: files still open for writing are not stored (they were never closed). Returns
        the keys that did not reach S3, after logging each. Times and modes still held (s3csi.fs.holds)
        are stored first."""
        lost = await self.deletes.finish(timeout_s)
        for _, held in list(self._hold_timers.values()):
            self._start_storing_held(held)
        stores = dict(self._storing)
        if stores:
            await asyncio.wait(stores.values(), timeout=timeout_s)
        lost += [key for key in self._unstored if key not in lost]
        for task in stores.values():
            if task.done() and not task.cancelled() and task.exception() is None:
                continue  # stored, or its failure logged and listed above
            key = task.get_name().removeprefix(STORE_TASK_PREFIX)
            lost.append(key)
            if not task.done():
                log.error(
                    "times or mode set on s3://%s/%s were not stored in time", self.settings.bucket, key
                )
        for fh, handle in list(self.files.items()):
            if handle.staged is not None:
                self.files.pop(fh, None)
                if handle.staged.dirty and handle.writes and handle.inode.key not in lost:
                    lost.append(handle.inode.key)
                    log.error(
                        "unmounted while s3://%s/%s was still open for writing with changes not uploaded:"
                        " they are not stored",
                        self.settings.bucket,
                        handle.inode.key,
                    )
                handle.staged.handles -= 1
                if handle.staged.handles == 0:
                    handle.staged.close()
                continue
            writer = handle.writer
            if writer is None or writer.completed is not None:
                continue
            lost.append(writer.key)
            log.error(
                "unmounted while s3://%s/%s was still open for writing: its upload is aborted, the object is"
                " not stored",
                writer.bucket,
                writer.key,
            )
            try:
                await asyncio.wait_for(writer.abort(), timeout_s)
            except (TimeoutError, S3Error) as exc:
                log.error("could not abort the upload of s3://%s/%s: %s", writer.bucket, writer.key, exc)
            self.files.pop(fh, None)
        return lost


def _ignore_outcome(task: asyncio.Task[Any]) -> None:
    # A fetch ahead may fail or be dropped with nobody awaiting it: whoever needs the bytes or the
    # attributes asks again, and reports the failure then.
    if not task.cancelled():
        task.exception()
