"""Which attribute changes are held for a rename to carry, and for how long (s3csi.fs.holds, pure)."""

from __future__ import annotations

import pytest

from s3csi.fs.attributes import StoredAttributes
from s3csi.fs.holds import AttributeHolds

HOLD_S = 2.0
MODE = StoredAttributes(mode=0o100640)
TIMES = StoredAttributes(mtime_ns=5, atime_ns=6)


@pytest.mark.parametrize(
    ("uploaded_at", "changed_at", "held"),
    [
        (10.0, 10.0, True),  # right after the upload (rsync, cp -a)
        (10.0, 11.9, True),
        (10.0, 12.0, False),  # the hold time is up: stored at once
        (None, 10.0, False),  # not uploaded by this mount
    ],
)
def test_only_changes_right_after_this_mounts_upload_are_held(
    uploaded_at: float | None, changed_at: float, held: bool
) -> None:
    holds = AttributeHolds(HOLD_S)
    if uploaded_at is not None:
        holds.uploaded(1, uploaded_at)
    assert holds.hold(1, MODE, changed_at) is held
    assert holds.held(1) == (MODE if held else None)


def test_changes_join_those_held_even_after_the_upload_window() -> None:
    holds = AttributeHolds(HOLD_S)
    holds.uploaded(1, 0.0)
    assert holds.hold(1, TIMES, 1.0)
    assert holds.hold(1, MODE, 5.0)  # joins: one copy stores both
    assert holds.take(1) == StoredAttributes(mtime_ns=5, atime_ns=6, mode=0o100640)
    assert holds.take(1) is None
    assert not holds.hold(1, MODE, 5.0)


def test_a_renamed_file_no_longer_holds_and_a_failed_copy_restores_under_later_changes() -> None:
    holds = AttributeHolds(HOLD_S)
    holds.uploaded(1, 0.0)
    assert holds.just_uploaded(1, 1.0)
    holds.hold(1, StoredAttributes(mode=0o100600, mtime_ns=1), 1.0)
    taken = holds.take(1)
    holds.published(1)
    assert not holds.just_uploaded(1, 1.0)
    assert not holds.hold(1, MODE, 1.0)
    assert taken is not None
    holds.restore(1, MODE)  # as if held while the copy ran
    holds.restore(1, taken)
    assert holds.held(1) == StoredAttributes(mode=0o100640, mtime_ns=1)


def test_old_uploads_are_forgotten() -> None:
    holds = AttributeHolds(HOLD_S)
    for ino in range(100):
        holds.uploaded(ino, float(ino))
    assert not holds.just_uploaded(0, 99.0)
    assert holds.just_uploaded(99, 99.0)
    holds.uploaded(100, 99.5)  # prunes every upload older than the hold time
    assert len(holds._uploaded) == 3  # 98, 99, 100
