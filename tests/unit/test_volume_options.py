"""MountOptions: every accepted spelling, the deny-list, value validation, and the value-type operations."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3csi.errors import InvalidArgument
from s3csi.mountflags import ValueKind
from s3csi.volume.options import (
    ALLOWED_OPTIONS,
    DENIED_OPTIONS,
    DROPPED_OPTIONS,
    MountOptions,
)
from tests.unit.volume_strategies import any_entries, option_name, valid_entries

ACCEPTED = [
    # (mount_flags, expected to_args())
    pytest.param(["uid=1001"], ("--uid=1001",), id="key=value"),
    pytest.param(["--uid=1001"], ("--uid=1001",), id="--key=value"),
    pytest.param(["--uid 1001"], ("--uid=1001",), id="--key value"),
    pytest.param(["uid 1001"], ("--uid=1001",), id="key value"),
    pytest.param(["  --uid   1001  "], ("--uid=1001",), id="surrounding-whitespace"),
    pytest.param(["--uid\t1001"], ("--uid=1001",), id="tab-separated"),
    pytest.param(["allow-other"], ("--allow-other",), id="flag"),
    pytest.param(["--allow-other"], ("--allow-other",), id="--flag"),
    pytest.param(["prefix=env=prod/"], ("--prefix=env=prod/",), id="split-on-first-equals"),
    pytest.param(["--prefix env=prod/"], ("--prefix=env=prod/",), id="space-before-equals"),
    pytest.param(["region us-east-1"], ("--region=us-east-1",), id="region-with-space"),
    pytest.param(["--prefix data"], ("--prefix=data/",), id="prefix-gets-trailing-slash"),
    pytest.param(["prefix=/a/b"], ("--prefix=a/b/",), id="prefix-loses-leading-slash"),
    pytest.param(["uid=0001"], ("--uid=1",), id="uid-canonical-decimal"),
    pytest.param(["uid=0"], ("--uid=0",), id="uid-root"),
    pytest.param(["gid=2147483647"], ("--gid=2147483647",), id="gid-max"),
    pytest.param(["dir-mode=0770"], ("--dir-mode=770",), id="mode-4-digits"),
    pytest.param(["file-mode=644"], ("--file-mode=644",), id="mode-3-digits"),
    pytest.param(["file-mode=000"], ("--file-mode=000",), id="mode-zero"),
    pytest.param(["metadata-ttl=indefinite"], ("--metadata-ttl=indefinite",), id="ttl-indefinite"),
    pytest.param(["metadata-ttl=minimal"], ("--metadata-ttl=minimal",), id="ttl-minimal"),
    pytest.param(["metadata-ttl=0300"], ("--metadata-ttl=300",), id="ttl-seconds"),
    pytest.param(["negative-metadata-ttl=0"], ("--negative-metadata-ttl=0",), id="negative-ttl-zero"),
    pytest.param(["part-size=8388608"], ("--part-size=8388608",), id="part-size"),
    pytest.param(["part-size=5242880"], ("--part-size=5242880",), id="part-size-5MiB"),
    pytest.param(["write-part-size=5368709120"], ("--write-part-size=5368709120",), id="part-size-5GiB"),
    pytest.param(["read-part-size=65536"], ("--read-part-size=65536",), id="read-part-size-64KiB"),
    pytest.param(["max-threads=16"], ("--max-threads=16",), id="max-threads"),
    pytest.param(["max-threads=1024"], ("--max-threads=1024",), id="max-threads-most"),
    pytest.param(["metadata-ttl=3153600000"], ("--metadata-ttl=3153600000",), id="ttl-longest"),
    pytest.param(["-d"], ("--debug",), id="short-debug"),
    pytest.param(["storage-class=STANDARD_IA"], ("--storage-class=STANDARD_IA",), id="storage-class"),
    pytest.param(["sse=aws:kms"], ("--sse=aws:kms",), id="sse-kms"),
    pytest.param(["sse AES256"], ("--sse=AES256",), id="sse-aes"),
    pytest.param(
        ["sse-kms-key-id=arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab"],
        ("--sse-kms-key-id=arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab",),
        id="sse-kms-key-arn",
    ),
    pytest.param(["user-agent-prefix=team-a/1.0"], ("--user-agent-prefix=team-a/1.0",), id="user-agent"),
    pytest.param(["--foreground"], (), id="drop-foreground"),
    pytest.param(["foreground"], (), id="drop-foreground-bare"),
    pytest.param(["-f"], (), id="drop-f"),
    pytest.param(["--help", "-h"], (), id="drop-help"),
    pytest.param(["--version", "-V"], (), id="drop-version"),
    pytest.param(["uid=1", "--uid 1", "uid=001"], ("--uid=1",), id="repeat-same-value"),
    pytest.param(["allow-other", "--allow-other"], ("--allow-other",), id="repeat-flag"),
    pytest.param(
        ["uid=1", "allow-delete", "--gid=2", "-f"],
        ("--allow-delete", "--gid=2", "--uid=1"),
        id="sorted",
    ),
    pytest.param(
        ["uid=1001", "gid=1001", "allow-other"],
        ("--allow-other", "--gid=1001", "--uid=1001"),
        id="fsgroup-example-mount-options",
    ),
    pytest.param([], (), id="none"),
]


@pytest.mark.parametrize(("mount_flags", "expected"), ACCEPTED)
def test_parse_accepts_every_spelling(mount_flags: list[str], expected: tuple[str, ...]) -> None:
    assert MountOptions.parse(mount_flags).to_args() == expected


@pytest.mark.parametrize("name", sorted(n for n, kind in ALLOWED_OPTIONS.items() if kind is ValueKind.FLAG))
def test_every_allowed_flag_parses(name: str) -> None:
    assert MountOptions.parse([name]).to_args() == (f"--{name}",)


REJECTED = [
    # (entry, a fragment the message must contain: the option or what is wrong with it)
    pytest.param("uid=-1", "--uid must be a decimal id", id="negative-uid"),
    pytest.param("uid=2147483648", "--uid must be a decimal id in 0..2147483647", id="uid-above-2^31-1"),
    pytest.param("uid=4294967295", "--uid", id="uid-unsigned-minus-one"),
    pytest.param("uid=1;rm", "'uid=1;rm'", id="injection-semicolon"),
    pytest.param("uid=1 && reboot", "--uid", id="injection-and"),
    pytest.param("uid=$(id -u)", "--uid", id="injection-substitution"),
    pytest.param("uid=1\nrm -rf /", "--uid", id="injection-newline"),
    pytest.param("uid=abc", "--uid", id="uid-not-a-number"),
    pytest.param("uid=+1", "--uid", id="uid-with-sign"),
    pytest.param("uid=\uff11", "--uid", id="uid-fullwidth-digit"),
    pytest.param("gid=1.5", "--gid", id="gid-fraction"),
    pytest.param("dir-mode=999", "--dir-mode must be an octal mode", id="mode-999"),
    pytest.param("dir-mode=1777", "--dir-mode", id="mode-sticky-bit"),
    pytest.param("file-mode=77", "--file-mode", id="mode-2-digits"),
    pytest.param("file-mode=07777", "--file-mode", id="mode-5-digits"),
    pytest.param("file-mode=rw-r--r--", "--file-mode", id="mode-symbolic"),
    pytest.param("", "empty mount option", id="empty-entry"),
    pytest.param("   ", "empty mount option", id="blank-entry"),
    pytest.param("=1", "option name is empty", id="empty-key"),
    pytest.param("--", "option name is empty", id="only-dashes"),
    pytest.param("--=1", "option name is empty", id="empty-key-with-dashes"),
    pytest.param("-", "unknown short option", id="single-dash"),
    pytest.param("--endpoint-url=http://evil", "--endpoint-url is not allowed", id="endpoint-url"),
    pytest.param("endpoint-url http://evil", "--endpoint-url is not allowed", id="endpoint-url-bare"),
    pytest.param("--profile=default", "--profile is not allowed", id="profile"),
    pytest.param("--cache=/", "--cache is not allowed", id="cache-root"),
    pytest.param("cache /var/lib/kubelet", "--cache is not allowed", id="cache-host-path"),
    pytest.param("--log-directory=/tmp", "--log-directory is not allowed", id="log-directory"),
    pytest.param("-o allow_other", "-o is not allowed", id="fstab-o"),
    pytest.param("-o", "-o is not allowed", id="fstab-o-alone"),
    pytest.param("--ca-bundle=/etc/ssl/evil.pem", "--ca-bundle is not allowed", id="ca-bundle"),
    pytest.param("--bogus-flag", "unknown option --bogus-flag", id="unknown-flag"),
    pytest.param("--run-as-user=0", "unknown option --run-as-user", id="unknown-with-value"),
    pytest.param("allow_other", "did you mean --allow-other?", id="underscore-hint"),
    pytest.param("UID=1", "malformed option name", id="uppercase-key"),
    pytest.param("---uid=1", "malformed option name", id="three-dashes"),
    pytest.param("-x", "unknown short option", id="unknown-short"),
    pytest.param("allow-other=true", "--allow-other takes no value", id="flag-with-value"),
    pytest.param("read-only=false", "--read-only takes no value", id="read-only-false"),
    pytest.param("allow-other=", "--allow-other takes no value", id="flag-with-empty-value"),
    pytest.param("--foreground=yes", "--foreground takes no value", id="dropped-with-value"),
    pytest.param("uid", "--uid needs a value", id="uid-without-value"),
    pytest.param("--region", "--region needs a value", id="region-without-value"),
    pytest.param("uid=", "--uid must be", id="uid-empty-value"),
    pytest.param("max-cache-size=1024", "--max-cache-size is not allowed", id="max-cache-size"),
    pytest.param("auto-unmount", "--auto-unmount is not allowed", id="auto-unmount"),
    pytest.param("part-size=0", "--part-size must be a size in bytes from 5242880", id="size-zero"),
    pytest.param("part-size=5242879", "--part-size", id="size-below-5MiB"),
    pytest.param("write-part-size=5368709121", "--write-part-size", id="size-above-5GiB"),
    pytest.param("read-part-size=65535", "--read-part-size", id="read-size-below-64KiB"),
    pytest.param("part-size=-5", "--part-size", id="size-negative"),
    pytest.param("part-size=8M", "--part-size", id="size-with-unit"),
    pytest.param("part-size=abc", "--part-size", id="size-not-a-number"),
    pytest.param("max-threads=0", "--max-threads must be a whole number from 1", id="threads-zero"),
    pytest.param("max-threads=1025", "--max-threads", id="threads-too-many"),
    pytest.param("metadata-ttl=3153600001", "--metadata-ttl", id="ttl-too-long"),
    pytest.param("region=EU-WEST-1", "--region", id="region-uppercase"),
    pytest.param("region=eu_west_1", "--region", id="region-underscore"),
    pytest.param("metadata-ttl=forever", "--metadata-ttl must be a whole number of seconds", id="ttl-word"),
    pytest.param("metadata-ttl=-1", "--metadata-ttl", id="ttl-negative"),
    pytest.param("metadata-ttl=1.5", "--metadata-ttl", id="ttl-fraction"),
    pytest.param("prefix=../etc/", "--prefix", id="prefix-dotdot"),
    pytest.param("prefix=a/../b/", "--prefix", id="prefix-inner-dotdot"),
    pytest.param("prefix=a/./b/", "--prefix", id="prefix-dot"),
    pytest.param("prefix=a//b/", "--prefix", id="prefix-empty-segment"),
    pytest.param("prefix=/", "--prefix", id="prefix-only-slash"),
    pytest.param("prefix=a b/", "--prefix", id="prefix-space"),
    pytest.param("prefix=$(reboot)/", "--prefix", id="prefix-shell"),
    pytest.param("region=us-east-1;ls", "--region", id="region-injection"),
    pytest.param("region=", "--region", id="region-empty"),
    pytest.param("storage-class=standard", "--storage-class", id="storage-class-lowercase"),
    pytest.param("sse=none", "--sse must be one of", id="sse-unknown"),
    pytest.param("user-agent-prefix=a b", "--user-agent-prefix", id="user-agent-space"),
    pytest.param("uid=1,gid=2", "comma-separated", id="comma-separated-values"),
    pytest.param("allow-other,allow-delete", "comma-separated", id="comma-separated-flags"),
]


@pytest.mark.parametrize(("entry", "fragment"), REJECTED)
def test_parse_rejects_naming_the_option(entry: str, fragment: str) -> None:
    with pytest.raises(InvalidArgument, match="mount option") as error:
        MountOptions.parse(["allow-other", entry])
    assert fragment in str(error.value)
    assert "\n" not in str(error.value)


def test_one_option_with_two_values_is_rejected() -> None:
    with pytest.raises(InvalidArgument, match="--uid is given twice with different values"):
        MountOptions.parse(["uid=1", "--uid 2"])


def test_denied_option_error_never_echoes_its_value() -> None:
    with pytest.raises(InvalidArgument) as error:
        MountOptions.parse(["--endpoint-url=https://user:s3cr3t@evil.example"])
    assert "s3cr3t" not in str(error.value)


def test_tables_are_disjoint() -> None:
    assert not set(ALLOWED_OPTIONS) & set(DENIED_OPTIONS)
    assert not set(ALLOWED_OPTIONS) & DROPPED_OPTIONS
    assert not set(DENIED_OPTIONS) & DROPPED_OPTIONS


def test_accessors_take_any_spelling_of_the_key() -> None:
    options = MountOptions.parse(["uid=1001", "allow-other"])
    assert options.has("uid") and options.has("--uid")
    assert options.get("--uid") == "1001" == options.get("uid")
    assert options.has("allow-other") and options.get("allow-other") is None
    assert not options.has("gid") and options.get("gid") is None
    assert len(options) == 2
    assert list(options) == [("allow-other", None), ("uid", "1001")]


def test_operations_return_new_values_and_leave_the_original() -> None:
    original = MountOptions.parse(["uid=1001"])
    changed = original.set("--uid", "2000").set("allow-other").set_if_absent("uid", "3000")
    assert changed.to_args() == ("--allow-other", "--uid=2000")
    assert original.to_args() == ("--uid=1001",)
    assert changed.remove("--uid").to_args() == ("--allow-other",)
    assert changed.remove("gid") == changed
    assert MountOptions.empty().set_if_absent("gid", "5").to_args() == ("--gid=5",)


def test_equal_intents_are_equal_values() -> None:
    first = MountOptions.parse(["uid=01", "--dir-mode 0770", "allow-other"])
    second = MountOptions.parse(["allow-other", "dir-mode=770", "--uid=1"])
    assert first == second and hash(first) == hash(second)


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        pytest.param("uid", "x", "--uid must be", id="bad-value"),
        pytest.param("endpoint-url", "http://evil", "--endpoint-url is not allowed", id="denied"),
        pytest.param("--bogus", None, "unknown option --bogus", id="unknown"),
        pytest.param("foreground", None, "cannot be set", id="dropped"),
        pytest.param("allow-other", "yes", "takes no value", id="value-on-flag"),
        pytest.param("gid", None, "needs a value", id="missing-value"),
    ],
)
def test_set_validates_like_parse(key: str, value: str | None, fragment: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        MountOptions.empty().set(key, value)
    assert fragment in str(error.value)


@given(st.lists(any_entries, max_size=6))
def test_parse_fails_only_with_invalid_argument(mount_flags: list[str]) -> None:
    try:
        options = MountOptions.parse(mount_flags)
    except InvalidArgument as error:
        assert str(error).startswith("mount option ")
        return
    for arg in options.to_args():
        assert arg.startswith("--") and "," not in arg and not any(c.isspace() for c in arg)


@given(st.lists(valid_entries, max_size=8))
def test_parse_of_to_args_round_trips(mount_flags: list[str]) -> None:
    try:
        options = MountOptions.parse(mount_flags)
    except InvalidArgument as error:
        assert "given twice with different values" in str(error)
        return
    assert MountOptions.parse(options.to_args()) == options
    assert MountOptions.parse(options.to_args()).to_args() == options.to_args()


@given(st.lists(valid_entries, min_size=1, max_size=8, unique_by=option_name))
def test_valid_entries_with_distinct_keys_always_parse(mount_flags: list[str]) -> None:
    MountOptions.parse(mount_flags)
