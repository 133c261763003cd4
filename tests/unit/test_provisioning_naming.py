"""Names and ids of provisioned volumes (provisioning/naming.py) and the volume plan (plan.py)."""

from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from s3csi.errors import InvalidArgument
from s3csi.provisioning.naming import ProvisioningMode, VolumeId, bucket_name_for, derived_name, leaf_for
from s3csi.provisioning.plan import CapacityRange, plan_volume
from s3csi.volume.context import validate_bucket_name


def h(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:16]


@pytest.mark.parametrize(
    ("volume_name", "bucket"),
    [
        ("pvc-0b5d1e2a-7c1f-4d2e-9a55-3f4e8c9d0a1b", "pvc-0b5d1e2a-7c1f-4d2e-9a55-3f4e8c9d0a1b"[:46]),
        ("PVC_1", "pvc-1"),
        ("pvc-1", "pvc-1"),
        ("my.volume..name", "my-volume-name"),
        ("--leading and trailing--", "leading-and-trailing"),
        ("xn--punycode", "xn-punycode"),
        ("sthree-reserved", "v-sthree-reserved"),
        ("amzn-s3-demo-bucket", "v-amzn-s3-demo-bucket"),
        ("192.168.1.1", "192-168-1-1"),
        ("日本語", ""),
        ("", ""),
    ],
)
def test_bucket_names(volume_name: str, bucket: str) -> None:
    expected = f"{bucket}-{h(volume_name)}" if bucket else h(volume_name)
    assert bucket_name_for(volume_name) == expected
    assert validate_bucket_name(expected) == expected


def test_names_that_share_a_stem_get_different_buckets() -> None:
    assert bucket_name_for("PVC_1") != bucket_name_for("pvc-1")
    long_a, long_b = "a" * 100 + "1", "a" * 100 + "2"
    assert bucket_name_for(long_a) != bucket_name_for(long_b)
    assert len(bucket_name_for(long_a)) == 63


@given(st.text(max_size=128))
def test_every_name_gives_a_valid_bucket_and_leaf(volume_name: str) -> None:
    bucket = bucket_name_for(volume_name)
    assert validate_bucket_name(bucket) == bucket and len(bucket) <= 63
    assert "." not in bucket and "--" not in bucket
    assert bucket == bucket_name_for(volume_name)  # deterministic
    leaf = leaf_for(volume_name)
    assert re.fullmatch(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?", leaf) and len(leaf) <= 56
    assert derived_name(volume_name, 20).endswith(h(volume_name))


@given(st.text(max_size=128), st.sampled_from(["data", "team-bucket.example", "abc"]))
def test_volume_ids_round_trip_and_fit_the_spec_limit(volume_name: str, bucket: str) -> None:
    for volume_id in (
        VolumeId(ProvisioningMode.BUCKET_PER_VOLUME, bucket_name_for(volume_name)),
        VolumeId(ProvisioningMode.PREFIX_PER_VOLUME, bucket, leaf_for(volume_name)),
    ):
        assert VolumeId.parse(str(volume_id)) == volume_id
        assert len(str(volume_id).encode()) <= 128


def test_volume_id_format_and_prefix() -> None:
    assert str(VolumeId(ProvisioningMode.BUCKET_PER_VOLUME, "b1b")) == "bucket:b1b"
    prefixed = VolumeId(ProvisioningMode.PREFIX_PER_VOLUME, "b1b", "pvc-1-abc")
    assert (str(prefixed), prefixed.prefix) == ("prefix:b1b:pvc-1-abc", "pvc-1-abc/")
    assert VolumeId(ProvisioningMode.BUCKET_PER_VOLUME, "b1b").prefix == ""


@pytest.mark.parametrize(
    "text",
    [
        "",
        "reallyfakevolumeid",
        "bucket:",
        "bucket:UPPER",
        "bucket:a",
        "bucket:b1b:extra",
        "prefix:b1b",
        "prefix:b1b:",
        "prefix:b1b:Bad",
        "prefix:b1b:a/b",
        "volume:b1b",
    ],
)
def test_ids_this_driver_cannot_have_made_parse_to_none(text: str) -> None:
    assert VolumeId.parse(text) is None


@pytest.mark.parametrize(
    ("parameters", "volume_id", "context"),
    [
        ({}, "bucket:{b}", {"bucketName": "{b}", "authenticationSource": "driver"}),
        (
            {
                "provisioningMode": "bucket-per-volume",
                "authenticationSource": "pod",
                "stsRegion": "eu-west-1",
            },
            "bucket:{b}",
            {"bucketName": "{b}", "authenticationSource": "pod", "stsRegion": "eu-west-1"},
        ),
        (
            {"provisioningMode": "prefix-per-volume", "bucketName": "shared", "fsUser": "1001"},
            "prefix:shared:{l}",
            {"bucketName": "shared", "prefix": "{l}/", "authenticationSource": "driver", "fsUser": "1001"},
        ),
        (
            {"csi.storage.k8s.io/pvc/name": "data"},
            "bucket:{b}",
            {"bucketName": "{b}", "authenticationSource": "driver"},
        ),
        (  # StorageClass parameters that size the Mountpoint Pod pass through to the PV's attributes
            {
                "mountpointContainerResourcesRequestsCpu": "1",
                "mountpointContainerResourcesLimitsMemory": "2Gi",
            },
            "bucket:{b}",
            {
                "bucketName": "{b}",
                "authenticationSource": "driver",
                "mountpointContainerResourcesRequestsCpu": "1",
                "mountpointContainerResourcesLimitsMemory": "2Gi",
            },
        ),
        (  # and so do the cache volume and staged writes, which needs it
            {"cache": "emptyDir", "cacheEmptyDirSizeLimit": "1Gi", "stagedWrites": "true"},
            "bucket:{b}",
            {
                "bucketName": "{b}",
                "authenticationSource": "driver",
                "cache": "emptyDir",
                "cacheEmptyDirSizeLimit": "1Gi",
                "stagedWrites": "true",
            },
        ),
    ],
)
def test_plans(parameters: dict[str, str], volume_id: str, context: dict[str, str]) -> None:
    name = "pvc-42"
    subs = {"b": bucket_name_for(name), "l": leaf_for(name)}
    plan = plan_volume(name, parameters, CapacityRange(required_bytes=1024))
    assert str(plan.volume_id) == volume_id.format(**subs)
    assert plan.volume_context == {k: v.format(**subs) for k, v in context.items()}
    assert plan.capacity_bytes == 1024
    assert plan.marker_key == f".s3csi-volumes/{plan.volume_id.leaf or plan.volume_id.bucket}.json"


def test_records_differ_exactly_when_the_request_differs() -> None:
    def record(parameters: dict[str, str], required: int = 0) -> object:
        return plan_volume("pvc-1", parameters, CapacityRange(required_bytes=required)).record

    assert record({}) == record({"provisioningMode": "bucket-per-volume"})
    assert record({}) == record({"csi.storage.k8s.io/pvc/namespace": "x"})
    assert record({}) != record({}, required=1)
    assert record({}) != record({"authenticationSource": "secret"})


@pytest.mark.parametrize(
    ("parameters", "capacity", "message"),
    [
        ({"colour": "blue"}, CapacityRange(), "colour"),
        ({"provisioningMode": "x"}, CapacityRange(), "provisioningMode"),
        ({"bucketName": "b1b"}, CapacityRange(), "bucketName is for prefix-per-volume"),
        ({"provisioningMode": "prefix-per-volume"}, CapacityRange(), "bucketName is required"),
        (
            {"provisioningMode": "prefix-per-volume", "bucketName": "192.168.0.1"},
            CapacityRange(),
            "bucketName",
        ),
        ({"fsUser": "root"}, CapacityRange(), "fsUser"),
        ({"roleArn": "arn:nope"}, CapacityRange(), "roleArn"),
        (
            {"mountpointContainerResourcesLimitsMemory": "lots"},
            CapacityRange(),
            "mountpointContainerResourcesLimitsMemory",
        ),
    ],
)
def test_bad_plans(parameters: dict[str, str], capacity: CapacityRange, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        plan_volume("pvc-1", parameters, capacity)


@pytest.mark.parametrize(("required", "limit"), [(-1, 0), (0, -1), (10, 5)])
def test_bad_capacity_ranges(required: int, limit: int) -> None:
    with pytest.raises(InvalidArgument, match="capacity_range"):
        CapacityRange(required, limit)


def test_capacity_reported() -> None:
    assert CapacityRange().capacity_bytes == 0
    assert CapacityRange(limit_bytes=7).capacity_bytes == 7
    assert CapacityRange(5, 7).capacity_bytes == 5
