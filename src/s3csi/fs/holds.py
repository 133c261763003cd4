"""Attribute changes held in memory for a moment (pure bookkeeping): the times and mode a tool sets on a
file this mount has just uploaded.

``rsync -a``, ``cp -a`` and many installers write a file, close it (the upload: the bytes are in S3 when
``close`` returns), then set its times and mode, and rsync renames it over its final name. Stored one by
one, each change is a metadata CopyObject of its own, and the rename a third copy. Held instead, for at
most :data:`ATTRIBUTES_HELD_S` after the first change:

- a rename within that time carries them in the copy it makes anyway (its metadata replaced);
- otherwise they are stored together in one metadata copy when the time is up (or at an ``fsync`` of
  the file, or at unmount), whatever happens to the file meanwhile (a new upload of it carries its own).

Only files whose upload this mount completed less than :data:`ATTRIBUTES_HELD_S` ago qualify, until
they are renamed: a change to any other object is stored before the call returns, as before. What this
costs in durability (docs/posix.md): the bytes are in S3 when ``close`` returns, as always; a change of
times or mode made right after may be lost if the mounter dies within that moment (never the data),
and other clients see the object without it until it is stored.
"""

from __future__ import annotations

from collections import OrderedDict

from s3csi.fs.attributes import StoredAttributes, combine

# How long after an upload attribute changes may be held, and how long the first change held waits
# for a rename before it is stored. rsync renames a file within milliseconds of setting its times.
ATTRIBUTES_HELD_S = 2.0


class AttributeHolds:
    """Which files (inode numbers) were just uploaded by this mount, and the changes held for them.

    Times are ``time.monotonic()`` seconds passed in by the caller.
    """

    def __init__(self, hold_s: float = ATTRIBUTES_HELD_S) -> None:
        self.hold_s = hold_s
        # Inode → until when a change of it may be held; in order of those times (uploads in order).
        self._uploaded: OrderedDict[int, float] = OrderedDict()
        self._held: dict[int, StoredAttributes] = {}

    def uploaded(self, ino: int, now: float) -> None:
        """This mount has just completed an upload of ``ino``'s object."""
        self._uploaded.pop(ino, None)
        self._uploaded[ino] = now + self.hold_s
        self._prune(now)

    def hold(self, ino: int, changes: StoredAttributes, now: float) -> bool:
        """Hold ``changes`` of ``ino`` when it qualifies (just uploaded, or changes already held, which
        they join); False when they must be stored now."""
        held = self._held.get(ino)
        if held is not None:
            self._held[ino] = combine(held, changes)
            return True
        self._prune(now)
        until = self._uploaded.get(ino)
        if until is None or until <= now:
            return False
        self._held[ino] = changes
        return True

    def just_uploaded(self, ino: int, now: float) -> bool:
        """Whether this mount completed an upload of ``ino`` less than ``hold_s`` ago (and it was not
        renamed since)."""
        until = self._uploaded.get(ino)
        return until is not None and until > now

    def held(self, ino: int) -> StoredAttributes | None:
        return self._held.get(ino)

    def take(self, ino: int) -> StoredAttributes | None:
        """The changes held for ``ino``, which the caller now stores (or drops); None when none are."""
        return self._held.pop(ino, None)

    def restore(self, ino: int, changes: StoredAttributes) -> None:
        """Changes taken for a copy that failed: held again, under any made since."""
        later = self._held.get(ino)
        self._held[ino] = changes if later is None else combine(changes, later)

    def published(self, ino: int) -> None:
        """``ino`` was renamed or deleted: later changes of it are stored at once."""
        self._uploaded.pop(ino, None)

    def _prune(self, now: float) -> None:
        while self._uploaded:
            ino, until = next(iter(self._uploaded.items()))
            if until > now:
                return
            del self._uploaded[ino]
