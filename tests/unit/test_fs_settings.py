"""mount-s3's flags → FsSettings: defaults, parsing and refusals, as tables."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3csi.errors import InvalidArgument
from s3csi.fs.settings import FsFlags, build_settings, parse_mode, parse_ttl
from s3csi.mountflags import CACHED_METADATA_TTL_S, INDEFINITE_TTL_S, MINIMAL_TTL_S, MiB


def build(**changes: Any) -> Any:
    """Settings from BUCKET, DIR and flags named as keywords (``dir_mode="0770"``, ``allow_other=True``)."""
    bucket, directory = changes.pop("bucket", "bucket"), changes.pop("directory", "/mnt/s3")
    flags = FsFlags(bucket, directory, {name.replace("_", "-"): value for name, value in changes.items()})
    return build_settings(flags, default_uid=1000, default_gid=2000)


def test_defaults_match_mount_s3() -> None:
    settings = build()
    assert (settings.uid, settings.gid, settings.dir_mode, settings.file_mode) == (1000, 2000, 0o755, 0o644)
    assert settings.read_part_size == settings.write_part_size == 8 * MiB
    assert settings.metadata_ttl_s == settings.negative_metadata_ttl_s == MINIMAL_TTL_S
    assert settings.max_threads == 16 and settings.prefix == "" and settings.fuse_fd is None
    assert settings.fuse_options == ("fsname=s3csi", "subtype=s3csi", "default_permissions", "noatime")


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"uid": "1001"}, "uid", 1001),
        ({"gid": "0"}, "gid", 0),
        ({"dir_mode": "0770"}, "dir_mode", 0o770),
        ({"file_mode": "660"}, "file_mode", 0o660),
        ({"prefix": "a/b/"}, "prefix", "a/b/"),
        ({"part_size": str(16 * MiB)}, "read_part_size", 16 * MiB),
        ({"part_size": str(16 * MiB)}, "write_part_size", 16 * MiB),
        ({"part_size": str(16 * MiB), "read_part_size": str(MiB)}, "read_part_size", MiB),
        ({"write_part_size": str(5 * MiB)}, "write_part_size", 5 * MiB),
        ({"metadata_ttl": "indefinite"}, "metadata_ttl_s", INDEFINITE_TTL_S),
        ({"metadata_ttl": "30"}, "negative_metadata_ttl_s", 30.0),
        ({"metadata_ttl": "30", "negative_metadata_ttl": "0"}, "negative_metadata_ttl_s", 0.0),
        ({"cache": "/c"}, "metadata_ttl_s", CACHED_METADATA_TTL_S),
        ({"cache": "/c", "max_cache_size": "100"}, "max_cache_size", 100 * MiB),
        ({"max_threads": "64"}, "max_threads", 64),
        ({}, "staged_writes", False),
        ({"cache": "/c", "staged_writes": True}, "staged_writes", True),
        ({"cache": "/c", "staged_writes": True}, "max_staged_file_size", 1024 * MiB),
        (
            {"cache": "/c", "staged_writes": True, "max_staged_file_size": "64"},
            "max_staged_file_size",
            64 * MiB,
        ),
        ({"directory": "/dev/fd/7"}, "fuse_fd", 7),
        ({"sse": "aws:kms", "sse_kms_key_id": "arn:k"}, "sse_kms_key_id", "arn:k"),
        ({"storage_class": "GLACIER_IR"}, "storage_class", "GLACIER_IR"),
    ],
)
def test_values(changes: dict[str, str], field: str, expected: object) -> None:
    assert getattr(build(**changes), field) == expected


@pytest.mark.parametrize(
    ("changes", "option"),
    [
        ({"allow_other": True}, "allow_other"),
        ({"allow_root": True}, "allow_root"),
        ({"read_only": True}, "ro"),
    ],
)
def test_fuse_options_follow_the_flags(changes: dict[str, bool], option: str) -> None:
    assert option in build(**changes).fuse_options
    assert "default_permissions" in build(**changes).fuse_options


def test_auto_unmount_is_not_libfuses() -> None:
    """fusermount3's auto_unmount can leave a killed mounter's mount behind (fs/auto_unmount.py)."""
    assert "auto_unmount" not in build(auto_unmount=True).fuse_options


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"bucket": "-bad"}, "BUCKET"),
        ({"uid": "x"}, "--uid"),
        ({"uid": str(2**32)}, "--uid"),
        ({"uid": "2147483648"}, "--uid"),
        ({"gid": "4294967294"}, "--gid"),
        ({"region": "-"}, "--region"),
        ({"region": "-eu"}, "--region"),
        ({"gid": "-5"}, "--gid"),
        ({"dir_mode": "8"}, "--dir-mode"),
        ({"file_mode": "4755"}, "--file-mode"),
        ({"metadata_ttl": "later"}, "--metadata-ttl"),
        ({"negative_metadata_ttl": "-1"}, "--negative-metadata-ttl"),
        ({"prefix": "a"}, "--prefix"),
        ({"prefix": "/a/"}, "--prefix"),
        ({"prefix": "a//b/"}, "--prefix"),
        ({"part_size": "1"}, "--part-size"),
        ({"read_part_size": "1000"}, "--read-part-size"),
        ({"write_part_size": str(4 * MiB)}, "--write-part-size"),
        ({"max_threads": "0"}, "--max-threads"),
        ({"max_threads": "many"}, "--max-threads"),
        ({"sse": "none"}, "--sse"),
        ({"sse_kms_key_id": "k"}, "--sse-kms-key-id"),
        ({"sse": "AES256", "sse_kms_key_id": "k"}, "--sse-kms-key-id"),
        ({"storage_class": "standard"}, "--storage-class"),
        ({"max_cache_size": "1"}, "--max-cache-size"),
        ({"cache": "/c", "max_cache_size": "0"}, "--max-cache-size"),
        ({"cache": ""}, "--cache"),
        ({"staged_writes": True}, "--staged-writes needs --cache DIR"),
        ({"cache": "/c", "max_staged_file_size": "64"}, "--max-staged-file-size needs --staged-writes"),
        ({"cache": "/c", "staged_writes": True, "max_staged_file_size": "0"}, "--max-staged-file-size"),
        ({"cache": "/c", "staged_writes": True, "read_only": True}, "--read-only"),
        ({"endpoint_url": "localhost:9000"}, "--endpoint-url"),
        ({"region": "EU West"}, "--region"),
        ({"user_agent_prefix": "a\nb"}, "--user-agent-prefix"),
        ({"allow_other": True, "allow_root": True}, "--allow-root"),
        ({"read_only": True, "allow_overwrite": True}, "--read-only"),
        ({"directory": "/dev/fd/3", "auto_unmount": True}, "--auto-unmount"),
        ({"directory": ""}, "DIRECTORY"),
    ],
)
def test_bad_values_are_refused_by_name(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidArgument) as excinfo:
        build(**changes)
    assert named in str(excinfo.value)


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ({"no-such-flag": "1"}, "--no-such-flag: not a flag of s3csi mount"),
        ({"uid": True}, "--uid: needs a value"),
        ({"allow-other": "yes"}, "--allow-other: takes no value"),
    ],
)
def test_flags_must_be_the_specs(given: dict[str, str | bool], problem: str) -> None:
    with pytest.raises(InvalidArgument, match=problem):
        FsFlags("bucket", "/mnt/s3", given)


@pytest.mark.parametrize(
    ("text", "seconds"), [("minimal", 1.0), ("indefinite", INDEFINITE_TTL_S), ("0", 0.0), ("2.5", 2.5)]
)
def test_ttl_spellings(text: str, seconds: float) -> None:
    assert parse_ttl("--metadata-ttl", text) == seconds


@given(st.integers(min_value=0, max_value=0o777))
def test_mode_round_trip(mode: int) -> None:
    assert parse_mode("--file-mode", format(mode, "o")) == mode
    assert parse_mode("--file-mode", format(mode, "04o")) == mode


@given(st.text())
def test_parsers_never_crash_on_any_text(text: str) -> None:
    for parse in (parse_mode, parse_ttl):
        try:
            parse("--flag", text)
        except InvalidArgument as exc:
            assert str(exc).startswith("--flag")
