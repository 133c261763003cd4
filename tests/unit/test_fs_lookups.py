from __future__ import annotations

import math

import pytest

from s3csi.fs.lookups import DirectoryKnowledge, LookupSource, lookup_source, recorded_listing

NOW = 100.0
UNLISTED = DirectoryKnowledge()
ASKED = DirectoryKnowledge(asked_by_name=True)
LISTED = DirectoryKnowledge(listed_until=NOW + 1, absent_until=NOW + 1)
LISTED_NO_NEGATIVES = DirectoryKnowledge(listed_until=NOW + 1, absent_until=NOW)
EXPIRED = DirectoryKnowledge(listed_until=NOW, absent_until=NOW - 1)
EXPIRED_ASKED = DirectoryKnowledge(listed_until=NOW, absent_until=NOW - 1, asked_by_name=True)
TOO_LARGE = DirectoryKnowledge(too_large_until=NOW + 1, asked_by_name=True)


@pytest.mark.parametrize(
    ("known_until", "negative", "directory", "expected"),
    [
        # A fresh entry answers, whatever the directory.
        (NOW + 1, False, UNLISTED, LookupSource.TABLE),
        (math.inf, False, EXPIRED, LookupSource.TABLE),  # made through this mount
        # Unknown names.
        (None, False, UNLISTED, LookupSource.STAT_NAME),  # the first name asked for: that name
        (None, False, ASKED, LookupSource.LIST_DIRECTORY),  # the second: the whole directory
        (None, True, ASKED, LookupSource.ABSENT),  # a negative entry of its own
        (None, False, LISTED, LookupSource.ABSENT),  # not in the complete listing
        (None, False, LISTED_NO_NEGATIVES, LookupSource.STAT_NAME),  # --negative-metadata-ttl 0
        (None, False, EXPIRED, LookupSource.STAT_NAME),
        (None, False, EXPIRED_ASKED, LookupSource.LIST_DIRECTORY),  # listed again, once
        (None, False, TOO_LARGE, LookupSource.STAT_NAME),
        # Known but stale: never "absent" on the listing's word.
        (NOW, False, LISTED, LookupSource.STAT_NAME),
        (NOW, False, EXPIRED_ASKED, LookupSource.LIST_DIRECTORY),
        (NOW - 5, False, TOO_LARGE, LookupSource.STAT_NAME),
    ],
)
def test_lookup_source(
    known_until: float | None, negative: bool, directory: DirectoryKnowledge, expected: LookupSource
) -> None:
    assert lookup_source(NOW, known_until, negative, directory) is expected


@pytest.mark.parametrize(
    ("all_held", "expected"),
    [
        # Every listed name still in the table: the listing answers for the directory.
        (True, DirectoryKnowledge(listed_until=NOW + 5, absent_until=NOW + 2, names=("a", "b"))),
        # The kernel forgot one while later pages were read: it answers nothing, lookups ask S3.
        (False, DirectoryKnowledge(names=("a", "b"))),
    ],
)
def test_recorded_listing(all_held: bool, expected: DirectoryKnowledge) -> None:
    knowledge = recorded_listing(
        ("a", "b"), started=NOW, metadata_ttl_s=5, negative_ttl_s=2, all_held=all_held
    )
    assert knowledge == expected
    assert (lookup_source(NOW + 1, None, False, knowledge) is LookupSource.ABSENT) is all_held
