"""Where a lookup finds its answer (pure): the inode table, a complete listing of the parent directory,
or S3.

A lookup of a name the table does not hold (or holds past ``--metadata-ttl``) asks S3 about that one
name the first time (a listing of keys starting with it: cheap, and what a path walk through a
directory needs). The *second* such lookup in the same directory lists the whole directory (delimiter
``/``, at most ``LOOKUP_LIST_PAGES`` pages) instead: every child lands in the table at once, so a
program opening N files of one directory costs two listings, not N. A complete listing then answers,
for the directory:

- names it holds, until ``--metadata-ttl`` after it (each child's own expiry);
- names it lacks ("no such entry"), until ``--negative-metadata-ttl`` after it;
- when it has expired, the next lookup that needs S3 lists the directory again, once.

A directory with more entries than those pages (or than ``LISTING_CACHE_NAMES``, when readdir listed
it) is *too large*: until ``--metadata-ttl`` later, its lookups ask S3 for the one name instead. A
listing stops answering "no such entry" once the kernel forgets one of its entries (the inode table
drops it), and stands for nothing from the start when the kernel forgot one of its entries while it
was read (readdir lists page by page, and the kernel may let go of the first page's entries before the
last page comes). Names created through this mount are in the table the moment they exist, so they are found
whatever the listing said.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# Pages of (up to) 1000 keys a lookup may list before it calls the directory too large for that.
LOOKUP_LIST_PAGES = 4
# The most names a complete listing (of a lookup or of readdir) is kept for. A larger directory is
# streamed by readdir without being kept, and counts as too large: its lookups ask S3 for the one name.
LISTING_CACHE_NAMES = LOOKUP_LIST_PAGES * 1000


class LookupSource(enum.Enum):
    TABLE = "table"  # the inode the table holds is fresh
    ABSENT = "absent"  # no such entry: a negative entry or a complete listing says so
    LIST_DIRECTORY = "list directory"  # list the parent, then answer from the table
    STAT_NAME = "stat name"  # ask S3 about this one name


@dataclass(frozen=True)
class DirectoryKnowledge:
    """What the table knows of one directory's children as a whole (monotonic seconds)."""

    # Until when the last complete listing stands for the directory (no new listing before then).
    listed_until: float = 0.0
    # Until when a name missing from that listing may be answered "no such entry".
    absent_until: float = 0.0
    # Until when the directory counts as too large to list for a lookup.
    too_large_until: float = 0.0
    # Whether a lookup in it asked S3 about one name since it was last listed.
    asked_by_name: bool = False
    # The names of the last complete listing, sorted (for reading ahead across files).
    names: tuple[str, ...] = ()


NOT_LISTED = DirectoryKnowledge()


def lookup_source(
    now: float, known_until: float | None, negative: bool, directory: DirectoryKnowledge
) -> LookupSource:
    """How to answer a lookup at ``now`` of a name the table holds until ``known_until`` (None: not
    held; ``inf`` for local entries), ``negative`` when a fresh negative entry says it is absent."""
    if known_until is not None and known_until > now:
        return LookupSource.TABLE
    if known_until is None and (negative or directory.absent_until > now):
        return LookupSource.ABSENT
    listable = directory.listed_until <= now and directory.too_large_until <= now
    if listable and directory.asked_by_name:
        return LookupSource.LIST_DIRECTORY
    return LookupSource.STAT_NAME


def recorded_listing(
    names: tuple[str, ...],
    *,
    started: float,
    metadata_ttl_s: float,
    negative_ttl_s: float,
    all_held: bool,
) -> DirectoryKnowledge:
    """What a complete listing begun at ``started`` of the ``names`` (sorted) tells of its directory.
    ``all_held``: whether the table still holds every one of them. When it does not, the kernel forgot
    some while the listing was read, and the table dropped them before there was a listing to withdraw:
    it then stands for nothing (lookups ask S3), as when such an entry is forgotten after the listing."""
    if not all_held:
        return DirectoryKnowledge(names=names)
    return DirectoryKnowledge(
        listed_until=started + metadata_ttl_s, absent_until=started + negative_ttl_s, names=names
    )
