"""The metadata format of attributes stored with an object, and the modes a process sees (pure)."""

from __future__ import annotations

import stat

import pytest

from s3csi.fs.attributes import (
    NOTHING_STORED,
    StoredAttributes,
    chown_allowed,
    combine,
    decode,
    encode,
    format_time,
    merged,
    parse_mode,
    parse_time,
    shown_permissions,
)

S = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1600000000", 1600000000 * S),  # s3fs: whole seconds
        ("1600000000.5", 1600000000 * S + 500_000_000),  # rclone: a float
        ("1600000000.123456789", 1600000000 * S + 123456789),
        ("1600000000.1234567891234", 1600000000 * S + 123456789),  # past nanoseconds: cut
        (" 7 ", 7 * S),
        ("0", 0),
        ("-1.5", -S - 500_000_000),
        ("", None),
        ("soon", None),
        ("1e9", None),
        ("1.", None),
        ("99999999999999", None),  # more digits than any time
    ],
)
def test_parse_time(text: str, ns: int | None) -> None:
    assert parse_time(text) == ns


@pytest.mark.parametrize(
    ("ns", "text"),
    [(1600000000 * S, "1600000000"), (1600000000 * S + 5, "1600000000.000000005"), (-S // 2, "-1.500000000")],
)
def test_format_time(ns: int, text: str) -> None:
    assert format_time(ns) == text
    if ns >= 0:
        assert parse_time(text) == ns


@pytest.mark.parametrize(
    ("text", "mode"),
    [
        ("33188", stat.S_IFREG | 0o644),  # s3fs: a regular file 0644
        ("41471", stat.S_IFLNK | 0o777),  # s3fs: a symbolic link
        ("16877", stat.S_IFDIR | 0o755),
        ("420", stat.S_IFREG | 0o644),  # permission bits alone
        ("35309", stat.S_IFREG | 0o755),  # setuid dropped: only permission bits are kept
        (str(stat.S_IFIFO | 0o644), None),  # a FIFO: not a kind this file system shows
        ("0644", stat.S_IFREG | 0o204),  # decimal, as s3fs writes it: 644 is 0o1204, bits 0o204
        ("rwx", None),
        ("-1", None),
    ],
)
def test_parse_mode(text: str, mode: int | None) -> None:
    assert parse_mode(text) == mode


@pytest.mark.parametrize(
    ("metadata", "attributes"),
    [
        ({}, NOTHING_STORED),
        ({"mtime": "5", "atime": "6", "mode": "33152"}, StoredAttributes(5 * S, 6 * S, stat.S_IFREG | 0o600)),
        (
            {"mtime": "bad", "mode": "41471", "uid": "0", "gid": "0"},
            StoredAttributes(mode=stat.S_IFLNK | 0o777),
        ),
        ({"other": "kept"}, NOTHING_STORED),
    ],
)
def test_decode(metadata: dict[str, str], attributes: StoredAttributes) -> None:
    assert decode(metadata) == attributes


def test_encode_round_trips_and_merged_keeps_other_keys() -> None:
    attributes = StoredAttributes(mtime_ns=5 * S + 1, mode=stat.S_IFREG | 0o600)
    assert encode(attributes) == {"mtime": "5.000000001", "mode": "33152"}
    assert decode(encode(attributes)) == attributes
    assert encode(NOTHING_STORED) == {}
    assert merged({"mtime": "1", "btime": "2"}, attributes) == {
        "mtime": "5.000000001",
        "btime": "2",
        "mode": "33152",
    }


@pytest.mark.parametrize(
    ("stored", "policy", "shown"),
    [
        (None, 0o660, 0o660),  # nothing stored: the volume's mode
        (stat.S_IFREG | 0o600, 0o660, 0o600),  # narrowed
        (stat.S_IFREG | 0o777, 0o660, 0o660),  # never wider than the volume
        (stat.S_IFREG | 0o644, 0o660, 0o640),
        (stat.S_IFREG | 0o644, 0o600, 0o600),  # fsUser
        (stat.S_IFDIR | 0o755, 0o770, 0o750),
        (stat.S_IFREG | 0o4777, 0o777, 0o777),  # setuid never shown
    ],
)
def test_shown_permissions(stored: int | None, policy: int, shown: int) -> None:
    assert shown_permissions(stored, policy) == shown


@pytest.mark.parametrize(
    ("uid", "gid", "allowed"),
    [
        (None, None, True),
        (1001, None, True),
        (None, 2000, True),
        (1001, 2000, True),
        (0, None, False),
        (None, 0, False),
    ],
)
def test_chown_allowed_only_to_the_volume_owner(uid: int | None, gid: int | None, allowed: bool) -> None:
    assert chown_allowed(1001, 2000, uid, gid) is allowed


def test_combine_sets_only_what_changes() -> None:
    current = StoredAttributes(mtime_ns=1, atime_ns=2, mode=stat.S_IFREG | 0o600)
    assert combine(current, StoredAttributes(mtime_ns=9)) == StoredAttributes(9, 2, stat.S_IFREG | 0o600)
    assert combine(current, NOTHING_STORED) == current
    assert combine(NOTHING_STORED, StoredAttributes(mode=stat.S_IFREG | 0o640)).mode == stat.S_IFREG | 0o640
