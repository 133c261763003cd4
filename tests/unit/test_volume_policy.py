"""effective_mount: fsGroup examples, overrides in both directions, read-only, conflicts and bad values."""

from __future__ import annotations

import argparse
from dataclasses import replace

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from s3csi.errors import InvalidArgument
from s3csi.fs import cli as fs_cli
from s3csi.fs.settings import build_settings
from s3csi.mountflags import KMS_SSE_TYPES, MAX_ID
from s3csi.volume.context import CacheType, CacheVolume
from s3csi.volume.options import MountOptions
from s3csi.volume.policy import (
    SUPPORTED_ACCESS_MODES,
    AccessMode,
    EffectiveMount,
    PolicyInput,
    check_staging_cache,
    effective_mount,
)
from tests.unit.volume_strategies import option_name, valid_entries

RWX = AccessMode.MULTI_NODE_MULTI_WRITER  # a PVC's ReadWriteMany, as in the dynamic example
ROX = AccessMode.MULTI_NODE_READER_ONLY  # ReadOnlyMany
RWO = AccessMode.SINGLE_NODE_WRITER  # ReadWriteOnce
FSGROUP_EXAMPLE_OPTIONS = ("uid=1001", "gid=1001", "allow-other")


def request(
    *mount_flags: str,
    fs_group: str | None = None,
    annotation: str | None = None,
    volume_fs_user: int | None = None,
    readonly: bool = False,
    access_mode: AccessMode = RWX,
    staged_writes: bool = False,
) -> PolicyInput:
    return PolicyInput(
        mount_flags=mount_flags,
        volume_mount_group=fs_group,
        fs_user_annotation=annotation,
        volume_fs_user=volume_fs_user,
        readonly=readonly,
        access_mode=access_mode,
        volume_staged_writes=staged_writes,
    )


CASES = [
    # (request, expected args)
    pytest.param(
        # docs/mount-options.md, static provisioning: the PV's mountOptions and the Pod's fsGroup 1001.
        request(*FSGROUP_EXAMPLE_OPTIONS, fs_group="1001"),
        ("--allow-other", "--dir-mode=770", "--file-mode=660", "--gid=1001", "--uid=1001"),
        id="example-static-pv-with-pod-fsgroup",
    ),
    pytest.param(
        # docs/mount-options.md, dynamic provisioning: a StorageClass's mountOptions, a Deployment's fsGroup.
        request(*FSGROUP_EXAMPLE_OPTIONS, fs_group="1001", access_mode=RWX),
        ("--allow-other", "--dir-mode=770", "--file-mode=660", "--gid=1001", "--uid=1001"),
        id="example-dynamic-storageclass-with-deployment-fsgroup",
    ),
    pytest.param(
        request(*FSGROUP_EXAMPLE_OPTIONS),
        ("--allow-other", "--gid=1001", "--uid=1001"),
        id="example-options-without-fsgroup",
    ),
    pytest.param(
        request("uid=1001", "gid=2000", "allow-other", fs_group="1001"),
        ("--allow-other", "--dir-mode=770", "--file-mode=660", "--gid=1001", "--uid=1001"),
        id="fsgroup-overrides-pv-gid",
    ),
    pytest.param(
        request("gid=2000"),
        ("--allow-root", "--gid=2000"),
        id="pv-gid-kept-without-fsgroup",
    ),
    pytest.param(
        request(fs_group="3000"),
        ("--allow-other", "--dir-mode=770", "--file-mode=660", "--gid=3000", "--uid=0"),
        id="fsgroup-alone-adds-gid-allow-other-modes-and-root-owner",
    ),
    pytest.param(
        request("uid=2000", fs_group="3000"),
        ("--allow-other", "--dir-mode=770", "--file-mode=660", "--gid=3000", "--uid=2000"),
        id="fsgroup-leaves-uid-untouched",
    ),
    pytest.param(
        request("dir-mode=750", fs_group="3000"),
        ("--allow-other", "--dir-mode=750", "--file-mode=660", "--gid=3000", "--uid=0"),
        id="fsgroup-keeps-pv-dir-mode",
    ),
    pytest.param(
        request("file-mode=640", "dir-mode=0750", fs_group="3000"),
        ("--allow-other", "--dir-mode=750", "--file-mode=640", "--gid=3000", "--uid=0"),
        id="fsgroup-keeps-pv-modes",
    ),
    pytest.param(
        request("uid=2000", annotation="1001"),
        ("--allow-other", "--dir-mode=700", "--file-mode=600", "--uid=1001"),
        id="fsuser-annotation-overrides-pv-uid-owner-only-modes",
    ),
    pytest.param(
        request("uid=2000", volume_fs_user=1002),
        ("--allow-other", "--dir-mode=700", "--file-mode=600", "--uid=1002"),
        id="fsuser-volume-attribute-overrides-pv-uid",
    ),
    pytest.param(
        request(annotation="1001", volume_fs_user=1002),
        ("--allow-other", "--dir-mode=700", "--file-mode=600", "--uid=1001"),
        id="fsuser-annotation-wins-over-volume-attribute",
    ),
    pytest.param(
        request("uid=2000"),
        ("--allow-root", "--uid=2000"),
        id="pv-uid-kept-without-fsuser",
    ),
    pytest.param(
        request(*FSGROUP_EXAMPLE_OPTIONS, fs_group="1001", annotation="1005"),
        ("--allow-other", "--dir-mode=770", "--file-mode=660", "--gid=1001", "--uid=1005"),
        id="fsuser-and-fsgroup-group-modes",
    ),
    pytest.param(
        request("file-mode=400", annotation="1001"),
        ("--allow-other", "--dir-mode=700", "--file-mode=400", "--uid=1001"),
        id="fsuser-keeps-pv-file-mode",
    ),
    pytest.param(
        request("gid=0", "uid=0", fs_group="0", annotation="0"),
        ("--allow-other", "--dir-mode=770", "--file-mode=660", "--gid=0", "--uid=0"),
        id="root-ids-are-ids",
    ),
    pytest.param(request(), ("--allow-root",), id="no-options-allow-root-for-root-workloads"),
    pytest.param(request(fs_group=""), ("--allow-root",), id="empty-volume-mount-group-is-no-fsgroup"),
    pytest.param(
        request("allow-root", "allow-other"),
        ("--allow-other", "--uid=0"),
        id="conflict-allow-other-replaces-allow-root",
    ),
    pytest.param(
        request("allow-root", fs_group="1001"),
        ("--allow-other", "--dir-mode=770", "--file-mode=660", "--gid=1001", "--uid=0"),
        id="conflict-fsgroup-allow-other-replaces-pv-allow-root",
    ),
    pytest.param(
        request("allow-other", "dir-mode=770", "file-mode=660"),
        ("--allow-other", "--dir-mode=770", "--file-mode=660", "--uid=0"),
        id="default-owner-with-allow-other-is-root-not-the-mounters-1000",
    ),
    pytest.param(
        request("allow-other", "uid=1000", fs_group="1001"),
        ("--allow-other", "--dir-mode=770", "--file-mode=660", "--gid=1001", "--uid=1000"),
        id="a-pv-uid-is-never-replaced-by-the-default-owner",
    ),
    pytest.param(
        request("allow-root"),
        ("--allow-root",),
        id="pv-allow-root-kept",
    ),
    pytest.param(
        request("allow-delete", "allow-overwrite", readonly=True),
        ("--allow-root", "--read-only"),
        id="readonly-request-drops-write-permissions",
    ),
    pytest.param(
        request("allow-delete", "allow-rename", access_mode=ROX),
        ("--allow-root", "--read-only"),
        id="multi-node-reader-only-is-read-only",
    ),
    pytest.param(
        request(access_mode=AccessMode.SINGLE_NODE_READER_ONLY),
        ("--allow-root", "--read-only"),
        id="single-node-reader-only-is-read-only",
    ),
    pytest.param(
        request("read-only", "allow-delete", access_mode=RWX),
        ("--allow-root", "--read-only"),
        id="pv-read-only-option-is-read-only",
    ),
    pytest.param(
        request(*FSGROUP_EXAMPLE_OPTIONS, fs_group="1001", readonly=True, access_mode=ROX),
        ("--allow-other", "--dir-mode=770", "--file-mode=660", "--gid=1001", "--read-only", "--uid=1001"),
        id="example-read-only-many",
    ),
    pytest.param(
        request("allow-delete", "allow-overwrite", "allow-rename", access_mode=RWO),
        ("--allow-delete", "--allow-overwrite", "--allow-rename", "--allow-root"),
        id="read-write-keeps-write-permissions",
    ),
    pytest.param(
        request("sse=aws:kms", "sse-kms-key-id=alias/s3"),
        ("--allow-root", "--sse-kms-key-id=alias/s3", "--sse=aws:kms"),
        id="kms-key-with-kms-sse",
    ),
    pytest.param(
        request("--region us-east-1", "prefix=env=prod/", "-f", "uid 1001"),
        ("--allow-root", "--prefix=env=prod/", "--region=us-east-1", "--uid=1001"),
        id="spellings-normalised",
    ),
]


@pytest.mark.parametrize(("policy_input", "expected_args"), CASES)
def test_effective_args(policy_input: PolicyInput, expected_args: tuple[str, ...]) -> None:
    assert effective_mount(policy_input).args == expected_args


def test_static_fsgroup_example_in_full() -> None:
    assert effective_mount(request(*FSGROUP_EXAMPLE_OPTIONS, fs_group="1001")) == EffectiveMount(
        args=("--allow-other", "--dir-mode=770", "--file-mode=660", "--gid=1001", "--uid=1001"),
        read_only=False,
        uid=1001,
        gid=1001,
        fs_group=1001,
        fs_user=None,
        allow_other=True,
    )


def test_fsuser_alone_in_full() -> None:
    assert effective_mount(request(annotation="1001", readonly=True)) == EffectiveMount(
        args=("--allow-other", "--dir-mode=700", "--file-mode=600", "--read-only", "--uid=1001"),
        read_only=True,
        uid=1001,
        gid=None,
        fs_group=None,
        fs_user=1001,
        allow_other=True,
    )


def test_no_ownership_in_full() -> None:
    assert effective_mount(request()) == EffectiveMount(
        args=("--allow-root",),
        read_only=False,
        uid=None,
        gid=None,
        fs_group=None,
        fs_user=None,
        allow_other=False,
    )


@pytest.mark.parametrize(
    ("readonly", "access_mode", "mount_flags", "read_only"),
    [
        pytest.param(True, RWX, (), True, id="request-readonly"),
        pytest.param(False, AccessMode.SINGLE_NODE_READER_ONLY, (), True, id="single-node-reader-only"),
        pytest.param(False, ROX, (), True, id="multi-node-reader-only"),
        pytest.param(False, RWX, ("read-only",), True, id="pv-option"),
        pytest.param(False, RWO, ("--read-only",), True, id="pv-option-dashed"),
        pytest.param(False, RWX, (), False, id="read-write-many"),
        pytest.param(False, RWO, (), False, id="read-write-once"),
    ],
)
def test_read_only_from_each_source(
    readonly: bool, access_mode: AccessMode, mount_flags: tuple[str, ...], read_only: bool
) -> None:
    mount = effective_mount(request(*mount_flags, readonly=readonly, access_mode=access_mode))
    assert mount.read_only is read_only
    assert ("--read-only" in mount.args) is read_only


@pytest.mark.parametrize(
    "access_mode",
    [mode for mode in AccessMode if mode not in SUPPORTED_ACCESS_MODES],
    ids=lambda mode: mode.name,
)
def test_unsupported_access_mode_is_invalid_argument(access_mode: AccessMode) -> None:
    with pytest.raises(InvalidArgument, match=f"access mode {access_mode.name} is not supported"):
        effective_mount(request(access_mode=access_mode))


def test_supported_access_modes_are_the_documented_four() -> None:
    assert {
        AccessMode.MULTI_NODE_MULTI_WRITER,
        AccessMode.MULTI_NODE_READER_ONLY,
        AccessMode.SINGLE_NODE_WRITER,
        AccessMode.SINGLE_NODE_READER_ONLY,
    } == SUPPORTED_ACCESS_MODES


@pytest.mark.parametrize(
    ("name", "number"),
    [
        ("UNKNOWN", 0),
        ("SINGLE_NODE_WRITER", 1),
        ("SINGLE_NODE_READER_ONLY", 2),
        ("MULTI_NODE_READER_ONLY", 3),
        ("MULTI_NODE_SINGLE_WRITER", 4),
        ("MULTI_NODE_MULTI_WRITER", 5),
        ("SINGLE_NODE_SINGLE_WRITER", 6),
        ("SINGLE_NODE_MULTI_WRITER", 7),
    ],
)
def test_access_mode_numbers_are_the_csi_spec(name: str, number: int) -> None:
    assert AccessMode.from_csi(number) is AccessMode[name]


def test_access_mode_from_unknown_wire_value() -> None:
    with pytest.raises(InvalidArgument, match="access mode 99 is not a CSI access mode"):
        AccessMode.from_csi(99)


BAD = [
    # (request, fragment the message must contain)
    pytest.param(request(fs_group="abc"), "volume_mount_group", id="fsgroup-not-a-number"),
    pytest.param(request(fs_group="-1"), "volume_mount_group", id="fsgroup-negative"),
    pytest.param(request(fs_group=str(MAX_ID + 1)), "volume_mount_group", id="fsgroup-above-2^31-1"),
    pytest.param(request(fs_group=" 1001"), "volume_mount_group", id="fsgroup-with-space"),
    pytest.param(request(fs_group="1001;rm"), "volume_mount_group", id="fsgroup-injection"),
    pytest.param(request(annotation="root"), "s3csi.io/fs-user", id="fsuser-annotation-name"),
    pytest.param(request(annotation=""), "s3csi.io/fs-user", id="fsuser-annotation-empty"),
    pytest.param(request(annotation="-5"), "s3csi.io/fs-user", id="fsuser-annotation-negative"),
    pytest.param(request(annotation="1;rm"), "s3csi.io/fs-user", id="fsuser-annotation-injection"),
    pytest.param(request(annotation=str(2**31)), "s3csi.io/fs-user", id="fsuser-annotation-above-2^31-1"),
    pytest.param(request(volume_fs_user=-1), "volume attribute fsUser", id="volume-fsuser-negative"),
    pytest.param(request(volume_fs_user=2**31), "volume attribute fsUser", id="volume-fsuser-above-2^31-1"),
    pytest.param(request("uid=-1"), "--uid", id="pv-negative-uid"),
    pytest.param(request("dir-mode=999", fs_group="1"), "--dir-mode", id="pv-mode-999"),
    pytest.param(request("uid=2147483648"), "--uid", id="pv-uid-above-2^31-1"),
    pytest.param(request("=1001"), "option name is empty", id="pv-empty-key"),
    pytest.param(request("uid=1;rm"), "uid=1;rm", id="pv-injection"),
    pytest.param(request("--endpoint-url=http://evil"), "--endpoint-url", id="pv-endpoint-url"),
    pytest.param(request("-o allow_other"), "-o", id="pv-fstab-o"),
    pytest.param(request("--cache=/"), "--cache", id="pv-cache-host-path"),
    pytest.param(
        request("sse-kms-key-id=alias/s3"), "--sse-kms-key-id needs --sse", id="kms-key-without-sse"
    ),
    pytest.param(request("sse=AES256", "sse-kms-key-id=alias/s3"), "--sse-kms-key-id", id="kms-key-with-aes"),
    pytest.param(
        request("max-staged-file-size=64"),
        "--max-staged-file-size needs --staged-writes",
        id="staged-size-without-staged-writes",
    ),
]


@pytest.mark.parametrize(("policy_input", "fragment"), BAD)
def test_bad_values_are_invalid_argument_naming_the_field(policy_input: PolicyInput, fragment: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        effective_mount(policy_input)
    assert fragment in str(error.value)


_IDS = st.integers(0, MAX_ID)
_REQUESTS = st.builds(
    PolicyInput,
    mount_flags=st.lists(valid_entries, max_size=8, unique_by=option_name),
    volume_mount_group=st.one_of(st.none(), st.just(""), _IDS.map(str)),
    fs_user_annotation=st.one_of(st.none(), _IDS.map(str)),
    volume_fs_user=st.one_of(st.none(), _IDS),
    readonly=st.booleans(),
    access_mode=st.sampled_from(sorted(SUPPORTED_ACCESS_MODES, key=lambda mode: mode.value)),
    volume_staged_writes=st.booleans(),
)


def _kms_key_without_kms_sse(policy_input: PolicyInput) -> bool:
    options = MountOptions.parse(policy_input.mount_flags)
    return options.has("sse-kms-key-id") and options.get("sse") not in KMS_SSE_TYPES


def _staged_size_without_staged_writes(policy_input: PolicyInput) -> bool:
    options = MountOptions.parse(policy_input.mount_flags)
    staged = options.has("staged-writes") or policy_input.volume_staged_writes
    return options.has("max-staged-file-size") and not staged


@given(_REQUESTS)
def test_effective_mount_is_idempotent_and_keeps_its_promises(policy_input: PolicyInput) -> None:
    assume(not _kms_key_without_kms_sse(policy_input))
    assume(not _staged_size_without_staged_writes(policy_input))
    mount = effective_mount(policy_input)
    again = effective_mount(replace(policy_input, mount_flags=mount.args))
    assert again == mount
    assert list(mount.args) == sorted(mount.args)
    assert ("--allow-other" in mount.args) is mount.allow_other
    assert ("--allow-root" in mount.args) is not mount.allow_other
    assert ("--read-only" in mount.args) is mount.read_only
    if policy_input.readonly:
        assert mount.read_only
    if mount.fs_group is not None:
        assert mount.gid == mount.fs_group and mount.allow_other
    if mount.fs_user is not None:
        assert mount.uid == mount.fs_user and mount.allow_other
    if mount.allow_other:  # other users get in: the owner is never left to the Mountpoint Pod's uid
        assert mount.uid is not None


@given(_REQUESTS)
def test_every_effective_mount_is_accepted_by_s3csi_mount(policy_input: PolicyInput) -> None:
    # The Mountpoint Pod runs `s3csi mount BUCKET /dev/fd/N ARGS`: a mount the policy lets through must never
    # be refused there, where the error would surface only as a failed mount.
    assume(not _kms_key_without_kms_sse(policy_input))
    assume(not _staged_size_without_staged_writes(policy_input))
    mount = effective_mount(policy_input)
    parser = argparse.ArgumentParser()
    fs_cli.add_arguments(parser)
    # --staged-writes keeps its copies in the Mountpoint Pod's cache volume: the driver gives it as --cache.
    driver = ["--cache", "/var/cache/s3"] if "--staged-writes" in mount.args else []
    # --incremental-upload is for directory buckets (the publish refuses it for others: check_bucket_type).
    assume(not {"--incremental-upload", "--bucket-type=general-purpose"} <= set(mount.args))
    bucket = "data--usw2-az1--x-s3" if "--incremental-upload" in mount.args else "bucket"
    flags = fs_cli.flags_from(parser.parse_args([bucket, "/dev/fd/3", *driver, *mount.args]))
    settings = build_settings(flags, default_uid=1000, default_gid=1000)
    assert settings.read_only is mount.read_only
    assert settings.allow_other is mount.allow_other
    assert settings.allow_root is not mount.allow_other
    assert settings.uid == (1000 if mount.uid is None else mount.uid)
    assert settings.gid == (1000 if mount.gid is None else mount.gid)


@pytest.mark.parametrize(
    ("policy_input", "expected"),
    [
        (request(staged_writes=True), ("--allow-root", "--staged-writes")),
        (request("staged-writes", staged_writes=True), ("--allow-root", "--staged-writes")),
        (
            request("max-staged-file-size=64", staged_writes=True),
            ("--allow-root", "--max-staged-file-size=64", "--staged-writes"),
        ),
        # Read-only wins over the attribute, as over the mount option.
        (request(staged_writes=True, readonly=True), ("--allow-root", "--read-only")),
        (request(staged_writes=False), ("--allow-root",)),
    ],
)
def test_the_staged_writes_attribute_turns_the_option_on(
    policy_input: PolicyInput, expected: tuple[str, ...]
) -> None:
    assert effective_mount(policy_input).args == expected


@pytest.mark.parametrize(
    ("flags", "attribute", "cache", "refused"),
    [
        (("staged-writes",), False, None, True),
        ((), True, None, True),
        (("staged-writes",), False, CacheVolume(CacheType.EMPTY_DIR), False),
        ((), True, CacheVolume(CacheType.EMPTY_DIR), False),
        ((), False, None, False),
    ],
)
def test_staged_writes_need_a_cache_volume(
    flags: tuple[str, ...], attribute: bool, cache: CacheVolume | None, refused: bool
) -> None:
    mount = effective_mount(request(*flags, staged_writes=attribute))
    if refused:
        with pytest.raises(InvalidArgument, match="set the volume attribute cache"):
            check_staging_cache(mount, cache)
    else:
        check_staging_cache(mount, cache)
