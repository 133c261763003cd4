"""Hypothesis strategies for mount options, shared by the options and policy property tests."""

from __future__ import annotations

import re

from hypothesis import strategies as st

from s3csi.mountflags import (
    MAX_ID,
    MAX_PART_SIZE,
    MAX_THREADS,
    MAX_TTL_S,
    MIN_READ_PART_SIZE,
    MIN_WRITE_PART_SIZE,
    RANGES,
    ValueKind,
)
from s3csi.volume.options import ALLOWED_OPTIONS, DENIED_OPTIONS, DROPPED_OPTIONS

# Alphabets rather than st.from_regex, which is five times slower: the fuzz tests draw 10,000 cases each.
_LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
_SEGMENT_START = "abcdxyz0189=_-"

_VALID_VALUES: dict[ValueKind, st.SearchStrategy[str]] = {
    ValueKind.ID: st.integers(0, MAX_ID).flatmap(lambda n: st.sampled_from([str(n), f"{n:05d}"])),
    ValueKind.MODE: st.integers(0, 0o777).flatmap(lambda m: st.sampled_from([f"{m:03o}", f"{m:04o}"])),
    ValueKind.TTL: st.one_of(st.sampled_from(["indefinite", "minimal"]), st.integers(0, MAX_TTL_S).map(str)),
    ValueKind.PART_SIZE: st.integers(MIN_WRITE_PART_SIZE, MAX_PART_SIZE).map(str),
    ValueKind.READ_PART_SIZE: st.integers(MIN_READ_PART_SIZE, MAX_PART_SIZE).map(str),
    ValueKind.THREADS: st.integers(1, MAX_THREADS).map(str),
    ValueKind.STAGED_FILE_SIZE: st.integers(*RANGES[ValueKind.STAGED_FILE_SIZE]).map(str),
    ValueKind.REGION: st.text(f"{_LOWER}-", max_size=15).map(lambda middle: f"r{middle}0"),
    ValueKind.PREFIX: st.builds(
        lambda lead, segments, last, trail: f"{lead}{''.join(f'{s}/' for s in segments)}{last}{trail}",
        st.sampled_from(["", "/"]),
        st.lists(
            st.builds(
                str.__add__, st.sampled_from(_SEGMENT_START), st.text(f"{_SEGMENT_START}.", max_size=7)
            ),
            max_size=3,
        ),
        st.text(_SEGMENT_START, min_size=1, max_size=8),
        st.sampled_from(["", "/"]),
    ),
    ValueKind.STORAGE_CLASS: st.sampled_from(["STANDARD", "STANDARD_IA", "INTELLIGENT_TIERING"]),
    ValueKind.SSE: st.sampled_from(["aws:kms", "aws:kms:dsse", "AES256"]),
    ValueKind.KMS_KEY_ID: st.sampled_from(["alias/s3", "arn:aws:kms:us-east-1:111122223333:key/ab-12"]),
    ValueKind.USER_AGENT_PREFIX: st.text(f"{_LOWER}ABCXYZ._~/=+@:-", min_size=1, max_size=20),
    ValueKind.BUCKET_TYPE: st.sampled_from(["general-purpose", "directory"]),
    ValueKind.ACCOUNT_ID: st.integers(0, 10**12 - 1).map(lambda n: f"{n:012d}"),
    ValueKind.UPLOAD_CHECKSUMS: st.sampled_from(["crc32c", "off"]),
    ValueKind.THROUGHPUT: st.integers(*RANGES[ValueKind.THROUGHPUT]).map(str),
    ValueKind.DIRECTORY_BUCKET: st.sampled_from(["cache--usw2-az1--x-s3", "shared--use1-az4--x-s3"]),
}

_DASHES = st.sampled_from(["", "--"])


def _valid_entry(name: str) -> st.SearchStrategy[str]:
    kind = ALLOWED_OPTIONS[name]
    if kind is ValueKind.FLAG:
        return _DASHES.map(lambda dashes: f"{dashes}{name}")
    return st.builds(
        lambda dashes, sep, value: f"{dashes}{name}{sep}{value}",
        _DASHES,
        st.sampled_from(["=", " "]),
        _VALID_VALUES[kind],
    )


valid_entries: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(sorted(ALLOWED_OPTIONS)).flatmap(_valid_entry),
    st.sampled_from(["-f", "--foreground", "--help", "--version"]),
)
"""One mount option in any accepted spelling, valid on its own."""

_NAMES = st.sampled_from(
    [*ALLOWED_OPTIONS, *DENIED_OPTIONS, *DROPPED_OPTIONS, "allow_other", "UID", "", "f", "o", "-uid"]
)
_HOSTILE_VALUES = st.one_of(
    st.sampled_from(["2147483648", "-1", "999", "a/../b/", "1;rm", "", "a,b", "$(id)", "x y"]),
    st.text(max_size=12),
)

any_entries: st.SearchStrategy[str] = st.one_of(
    valid_entries,
    st.builds(
        lambda dashes, name, sep, value: f"{dashes}{name}{sep}{value}",
        st.sampled_from(["", "-", "--"]),
        _NAMES,
        st.sampled_from(["=", " ", "  "]),
        _HOSTILE_VALUES,
    ),
    st.text(max_size=30),
)
"""Anything: valid entries, real names with hostile values, and arbitrary text."""


def option_name(entry: str) -> str:
    """The option an entry names, for ``st.lists(..., unique_by=option_name)``."""
    return re.split(r"[=\s]", entry.strip().lstrip("-"), maxsplit=1)[0]
