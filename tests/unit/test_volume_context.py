"""VolumeContext: the volume attributes of static PVs (docs/mount-options.md) and of CreateVolume."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from s3csi.errors import InvalidArgument
from s3csi.volume import context
from s3csi.volume.context import AuthenticationSource, VolumeContext


def test_wire_strings_of_the_keys() -> None:
    # These strings are a contract with PV authors, kubelet and the CSIDriver object: they never change.
    assert (
        context.BUCKET_NAME,
        context.PREFIX,
        context.AUTHENTICATION_SOURCE,
        context.STS_REGION,
        context.FS_USER,
        context.ROLE_ARN,
    ) == ("bucketName", "prefix", "authenticationSource", "stsRegion", "fsUser", "roleArn")
    assert context.POD_NAME == "csi.storage.k8s.io/pod.name"
    assert context.POD_NAMESPACE == "csi.storage.k8s.io/pod.namespace"
    assert context.POD_UID == "csi.storage.k8s.io/pod.uid"
    assert context.SERVICE_ACCOUNT_NAME == "csi.storage.k8s.io/serviceAccount.name"
    assert context.SERVICE_ACCOUNT_TOKENS == "csi.storage.k8s.io/serviceAccount.tokens"
    assert context.EPHEMERAL == "csi.storage.k8s.io/ephemeral"
    assert context.FS_USER_ANNOTATION == "s3csi.io/fs-user"
    assert context.ROLE_ARN_ANNOTATION == "eks.amazonaws.com/role-arn"
    assert context.CO_KEY_PREFIX == "csi.storage.k8s.io/"
    assert context.MOUNTPOINT_CONTAINER_RESOURCES_ATTRIBUTES == (
        "mountpointContainerResourcesRequestsCpu",
        "mountpointContainerResourcesRequestsMemory",
        "mountpointContainerResourcesLimitsCpu",
        "mountpointContainerResourcesLimitsMemory",
    )


def test_the_keys_are_written_only_in_volume_context() -> None:
    # One home each: every other module imports the volume-context and annotation keys from volume/context.py.
    src = Path(__file__).resolve().parents[2] / "src" / "s3csi"
    keys = re.compile(
        r"\"(?:bucketName|authenticationSource|stsRegion|fsUser|roleArn|csi\.storage\.k8s\.io/[^\"]*"
        r"|s3csi\.io/[^\"]*|eks\.amazonaws\.com/[^\"]*)\""
    )
    # Strings equal to a key that are not one: a field of the sharing key's JSON, a name in an error.
    not_keys = {
        ("volume/sharing.py", '"fsUser": mount.fs_user,'),
        ("volume/sharing.py", '"authenticationSource": authentication_source.value,'),
        ("ownership/policy.py", 'check_id("fsUser", self.fs_user)'),
        # Fields of the MountpointPodAttachment spec (deploy/crds/), named like the attributes they record.
        ("podmounter/attachment.py", 'spec["fsUser"] = inputs.mount.fs_user'),
        ("podmounter/attachment.py", 'fs_user=spec.get("fsUser"),'),
        (
            "podmounter/attachment.py",
            'authentication_source=AuthenticationSource(spec["authenticationSource"]),',
        ),
    }
    found = [
        f"{path.relative_to(src)}:{number}: {line.strip()}"
        for path in sorted(src.rglob("*.py"))
        if path != src / "volume" / "context.py" and "proto" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if keys.search(line) and (str(path.relative_to(src)), line.strip()) not in not_keys
    ]
    assert found == []


VALID = [
    pytest.param(
        {"bucketName": "my-bucket"},
        VolumeContext("my-bucket", "", AuthenticationSource.DRIVER, None, None, None),
        id="bucket-only-defaults-to-driver",
    ),
    pytest.param(
        {"bucketName": "amzn-s3-demo-bucket", "authenticationSource": "pod", "stsRegion": "us-east-1"},
        VolumeContext("amzn-s3-demo-bucket", "", AuthenticationSource.POD, "us-east-1", None, None),
        id="pod-level-credentials-with-sts-region",
    ),
    pytest.param(
        {"bucketName": "b.example-1", "authenticationSource": "secret", "prefix": "team-a"},
        VolumeContext("b.example-1", "team-a/", AuthenticationSource.SECRET, None, None, None),
        id="secret-with-prefix",
    ),
    pytest.param(
        {"bucketName": "bkt", "authenticationSource": "", "fsUser": "1001", "stsRegion": ""},
        VolumeContext("bkt", "", AuthenticationSource.DRIVER, None, 1001, None),
        id="empty-strings-are-absent",
    ),
    pytest.param(
        {
            "bucketName": "bkt",
            "authenticationSource": "pod",
            "roleArn": "arn:aws:iam::111122223333:role/pod-a-role",
        },
        VolumeContext(
            "bkt", "", AuthenticationSource.POD, None, None, "arn:aws:iam::111122223333:role/pod-a-role"
        ),
        id="role-arn",
    ),
    pytest.param(
        {
            "bucketName": "bkt",
            context.POD_NAME: "s3-app",
            context.POD_NAMESPACE: "default",
            context.POD_UID: "6f1c",
            context.SERVICE_ACCOUNT_NAME: "default",
            context.EPHEMERAL: "false",
            "storage.kubernetes.io/csiProvisionerIdentity": "1700000000000-8081-s3.csi.s3csi.io",
        },
        VolumeContext("bkt", "", AuthenticationSource.DRIVER, None, None, None),
        id="kubelet-and-provisioner-keys-ignored",
    ),
    pytest.param(
        {"bucketName": "a" * 63, "fsUser": "0"},
        VolumeContext("a" * 63, "", AuthenticationSource.DRIVER, None, 0, None),
        id="longest-bucket-name-and-root-fsuser",
    ),
    pytest.param(
        {"bucketName": "my-bucket--usw2-az1--x-s3"},
        VolumeContext("my-bucket--usw2-az1--x-s3", "", AuthenticationSource.DRIVER, None, None, None),
        id="directory-bucket-name",
    ),
    pytest.param(
        {
            "bucketName": "bkt",
            "mountpointContainerResourcesRequestsCpu": "500m",
            "mountpointContainerResourcesRequestsMemory": "1Gi",
            "mountpointContainerResourcesLimitsCpu": "500m",
            "mountpointContainerResourcesLimitsMemory": "1Gi",
        },
        VolumeContext("bkt", "", AuthenticationSource.DRIVER, None, None, None, "500m", "1Gi", "1Gi", "500m"),
        id="mountpoint-pod-resources-request-equal-to-limit",
    ),
    pytest.param(
        {
            "bucketName": "bkt",
            "mountpointContainerResourcesRequestsCpu": "2",
            "mountpointContainerResourcesLimitsMemory": "4G",
        },
        VolumeContext(
            "bkt",
            "",
            AuthenticationSource.DRIVER,
            None,
            None,
            None,
            mountpoint_pod_cpu_request="2",
            mountpoint_pod_memory_limit="4G",
        ),
        id="mountpoint-pod-resources-partly-set",
    ),
    pytest.param(
        {"bucketName": "bkt", "mountpointContainerResourcesRequestsMemory": ""},
        VolumeContext("bkt", "", AuthenticationSource.DRIVER, None, None, None),
        id="mountpoint-pod-resources-empty-is-unset",
    ),
    pytest.param(
        {"bucketName": "bkt", "stagedWrites": "true"},
        VolumeContext("bkt", "", AuthenticationSource.DRIVER, None, None, None, staged_writes=True),
        id="staged-writes-on",
    ),
    pytest.param(
        {"bucketName": "bkt", "stagedWrites": "false"},
        VolumeContext("bkt", "", AuthenticationSource.DRIVER, None, None, None),
        id="staged-writes-off",
    ),
]


@pytest.mark.parametrize(("attributes", "expected"), VALID)
def test_parse(attributes: dict[str, str], expected: VolumeContext) -> None:
    assert VolumeContext.parse(attributes) == expected


@pytest.mark.parametrize(
    ("prefix", "normalised"),
    [
        pytest.param("", "", id="none"),
        pytest.param("/", "", id="root"),
        pytest.param("a", "a/", id="adds-trailing-slash"),
        pytest.param("a/", "a/", id="kept"),
        pytest.param("/a/b", "a/b/", id="drops-leading-slash"),
        pytest.param("//a/b/", "a/b/", id="drops-leading-slashes"),
        pytest.param("env=prod", "env=prod/", id="equals-sign"),
        pytest.param("data.v2/2024-01/", "data.v2/2024-01/", id="dots-in-names"),
    ],
)
def test_prefix_is_normalised(prefix: str, normalised: str) -> None:
    assert VolumeContext.parse({"bucketName": "bkt", "prefix": prefix}).prefix == normalised


PREFIX_ERROR = "volume attribute prefix"
FS_USER_ERROR = "volume attribute fsUser"

INVALID = [
    # (attributes, fragment the message must contain)
    pytest.param({}, "bucketName is required", id="bucket-missing"),
    pytest.param({"bucketName": ""}, "bucketName is required", id="bucket-empty"),
    pytest.param({"bucketName": "ab"}, "bucketName 'ab' is not a valid bucket name", id="bucket-too-short"),
    pytest.param({"bucketName": "a" * 64}, "bucketName", id="bucket-too-long"),
    pytest.param({"bucketName": "My-Bucket"}, "bucketName", id="bucket-uppercase"),
    pytest.param({"bucketName": "my_bucket"}, "bucketName", id="bucket-underscore"),
    pytest.param({"bucketName": "-bucket"}, "bucketName", id="bucket-leading-hyphen"),
    pytest.param({"bucketName": "bucket."}, "bucketName", id="bucket-trailing-dot"),
    pytest.param({"bucketName": "my..bucket"}, "no adjacent", id="bucket-adjacent-dots"),
    pytest.param({"bucketName": "my.-bucket"}, "no adjacent", id="bucket-dot-hyphen"),
    pytest.param({"bucketName": "192.168.0.1"}, "IP address", id="bucket-ip-address"),
    pytest.param({"bucketName": "xn--bucket"}, "xn--", id="bucket-xn-prefix"),
    pytest.param({"bucketName": "bkt;rm -rf"}, "bucketName", id="bucket-injection"),
    pytest.param({"bucketName": "bkt", "prefix": "../other/"}, PREFIX_ERROR, id="prefix-dotdot"),
    pytest.param({"bucketName": "bkt", "prefix": "a/../b"}, PREFIX_ERROR, id="prefix-inner-dotdot"),
    pytest.param({"bucketName": "bkt", "prefix": "a/./b"}, PREFIX_ERROR, id="prefix-dot"),
    pytest.param({"bucketName": "bkt", "prefix": "a//b"}, PREFIX_ERROR, id="prefix-empty-segment"),
    pytest.param({"bucketName": "bkt", "prefix": "a b"}, PREFIX_ERROR, id="prefix-space"),
    pytest.param({"bucketName": "bkt", "prefix": "x" * 1025}, PREFIX_ERROR, id="prefix-too-long"),
    pytest.param(
        {"bucketName": "bkt", "authenticationSource": "irsa"},
        "authenticationSource 'irsa' is not one of: driver, secret, pod",
        id="unknown-authentication-source",
    ),
    pytest.param(
        {"bucketName": "bkt", "authenticationSource": "Pod"},
        "authenticationSource",
        id="authentication-source-is-case-sensitive",
    ),
    pytest.param({"bucketName": "bkt", "fsUser": "-1"}, FS_USER_ERROR, id="fsuser-negative"),
    pytest.param({"bucketName": "bkt", "fsUser": "alice"}, FS_USER_ERROR, id="fsuser-name"),
    pytest.param({"bucketName": "bkt", "fsUser": "2147483648"}, FS_USER_ERROR, id="fsuser-range"),
    pytest.param({"bucketName": "bkt", "stsRegion": "us east"}, "stsRegion", id="sts-region"),
    pytest.param({"bucketName": "bkt", "roleArn": "pod-a-role"}, "volume attribute roleArn", id="role-arn"),
    pytest.param(
        {"bucketName": "bkt", "roleArn": "arn:aws:iam::111122223333:user/alice"},
        "volume attribute roleArn",
        id="role-arn-not-a-role",
    ),
    pytest.param(
        {"bucketName": "bkt", "mountpointContainerResourcesRequestsCpu": "0.5"},
        "volume attribute mountpointContainerResourcesRequestsCpu: CPU quantity '0.5' must be whole cores or "
        "millicores",
        id="mountpoint-pod-cpu-fraction",
    ),
    pytest.param(
        {"bucketName": "bkt", "mountpointContainerResourcesRequestsMemory": "160MB"},
        "volume attribute mountpointContainerResourcesRequestsMemory: memory quantity '160MB'",
        id="mountpoint-pod-memory-request-unit",
    ),
    pytest.param(
        {"bucketName": "bkt", "mountpointContainerResourcesLimitsMemory": "-1"},
        "volume attribute mountpointContainerResourcesLimitsMemory: memory quantity '-1'",
        id="mountpoint-pod-memory-limit-negative",
    ),
    pytest.param(
        {
            "bucketName": "bkt",
            "mountpointContainerResourcesRequestsMemory": "1Gi",
            "mountpointContainerResourcesLimitsMemory": "1000Mi",
        },
        "volume attribute mountpointContainerResourcesRequestsMemory 1Gi exceeds "
        "mountpointContainerResourcesLimitsMemory 1000Mi",
        id="mountpoint-pod-memory-request-above-limit",
    ),
    pytest.param(
        {
            "bucketName": "bkt",
            "mountpointContainerResourcesRequestsCpu": "2",
            "mountpointContainerResourcesLimitsCpu": "1500m",
        },
        "volume attribute mountpointContainerResourcesRequestsCpu 2 exceeds "
        "mountpointContainerResourcesLimitsCpu 1500m",
        id="mountpoint-pod-cpu-request-above-limit",
    ),
    pytest.param(
        {"bucketName": "bkt", "mountpointContainerResourcesLimitsCpu": "1.5"},
        "volume attribute mountpointContainerResourcesLimitsCpu: CPU quantity '1.5'",
        id="mountpoint-pod-cpu-limit-fraction",
    ),
    pytest.param(
        {"bucketName": "bkt", "stagedWrites": "yes"},
        'volume attribute stagedWrites \'yes\' must be "true" or "false"',
        id="staged-writes-not-a-boolean",
    ),
    pytest.param(
        {"bucketName": "bkt", "stagedWrites": "True"},
        "volume attribute stagedWrites 'True' must be",
        id="staged-writes-capitalised",
    ),
]


@pytest.mark.parametrize(("attributes", "fragment"), INVALID)
def test_invalid_attributes_are_named(attributes: dict[str, str], fragment: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        VolumeContext.parse(attributes)
    assert fragment in str(error.value)


def test_long_bad_values_are_truncated_in_messages() -> None:
    with pytest.raises(InvalidArgument) as error:
        VolumeContext.parse({"bucketName": "B" * 5000})
    assert len(str(error.value)) < 300


@pytest.mark.parametrize(("attributes", "expected"), VALID)
def test_to_volume_context_round_trips(attributes: dict[str, str], expected: VolumeContext) -> None:
    assert VolumeContext.parse(expected.to_volume_context()) == expected


@pytest.mark.parametrize(
    ("attributes", "named"),
    [
        ({}, []),
        ({"mountpointContainerResourcesLimitsMemory": "1Gi"}, ["mountpointContainerResourcesLimitsMemory"]),
        (
            {
                "mountpointContainerResourcesLimitsMemory": "2Gi",
                "mountpointContainerResourcesLimitsCpu": "2",
                "mountpointContainerResourcesRequestsCpu": "1",
            },
            [
                "mountpointContainerResourcesRequestsCpu",
                "mountpointContainerResourcesLimitsCpu",
                "mountpointContainerResourcesLimitsMemory",
            ],
        ),
    ],
)
def test_mountpoint_pod_resource_attributes_are_named(attributes: dict[str, str], named: list[str]) -> None:
    assert (
        VolumeContext.parse({"bucketName": "bkt", **attributes}).mountpoint_pod_resource_attributes() == named
    )


# --- The cache volume (docs/kubernetes.md#the-cache-volume) -------------------------------------------------

CACHE_VALID = [
    pytest.param({}, None, None, id="no-cache"),
    pytest.param({"cache": "emptyDir"}, context.CacheVolume(context.CacheType.EMPTY_DIR), None, id="disk"),
    pytest.param(
        {"cache": "emptyDir", "cacheEmptyDirSizeLimit": "2Gi"},
        context.CacheVolume(context.CacheType.EMPTY_DIR, size_limit="2Gi"),
        1843,
        id="disk-bounded",
    ),
    pytest.param(
        {"cache": "emptyDir", "cacheEmptyDirSizeLimit": "256Mi", "cacheEmptyDirMedium": "Memory"},
        context.CacheVolume(context.CacheType.EMPTY_DIR, size_limit="256Mi", medium_memory=True),
        230,
        id="memory",
    ),
    pytest.param(
        {"cache": "ephemeral", "cacheEphemeralStorageResourceRequest": "10G"},
        context.CacheVolume(context.CacheType.EPHEMERAL, storage_request="10G"),
        8583,
        id="ephemeral-default-class",
    ),
    pytest.param(
        {
            "cache": "ephemeral",
            "cacheEphemeralStorageClassName": "local-nvme",
            "cacheEphemeralStorageResourceRequest": "100Gi",
        },
        context.CacheVolume(
            context.CacheType.EPHEMERAL, storage_class_name="local-nvme", storage_request="100Gi"
        ),
        92160,
        id="ephemeral",
    ),
    pytest.param({"cache": "", "cacheEmptyDirSizeLimit": ""}, None, None, id="empty-strings-are-unset"),
]


@pytest.mark.parametrize(("attributes", "cache", "max_cache_size_mib"), CACHE_VALID)
def test_cache_volume(
    attributes: dict[str, str], cache: context.CacheVolume | None, max_cache_size_mib: int | None
) -> None:
    parsed = VolumeContext.parse({"bucketName": "bucket-1", **attributes})
    assert parsed.cache == cache
    assert (cache.max_cache_size_mib() if cache else None) == max_cache_size_mib
    assert VolumeContext.parse(parsed.to_volume_context()) == parsed


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"cache": "hostPath"}, "volume attribute cache 'hostPath' is not one of: emptyDir, ephemeral"),
        (
            {"cacheEmptyDirSizeLimit": "1Gi"},
            "volume attribute cacheEmptyDirSizeLimit needs the volume attribute cache",
        ),
        (
            {"cache": "emptyDir", "cacheEphemeralStorageResourceRequest": "1Gi"},
            "volume attribute cacheEphemeralStorageResourceRequest does not apply to cache: emptyDir",
        ),
        (
            {
                "cache": "ephemeral",
                "cacheEmptyDirMedium": "Memory",
                "cacheEphemeralStorageResourceRequest": "1Gi",
            },
            "volume attribute cacheEmptyDirMedium does not apply to cache: ephemeral",
        ),
        ({"cache": "ephemeral"}, "cache: ephemeral needs cacheEphemeralStorageResourceRequest"),
        (
            {
                "cache": "ephemeral",
                "cacheEphemeralStorageResourceRequest": "1Gi",
                "cacheEphemeralStorageClassName": "Fast_SSD",
            },
            "cacheEphemeralStorageClassName 'Fast_SSD' is not a StorageClass name",
        ),
        (
            {"cache": "emptyDir", "cacheEmptyDirMedium": "HugePages"},
            "cacheEmptyDirMedium 'HugePages' must be Memory",
        ),
        (
            {"cache": "emptyDir", "cacheEmptyDirMedium": "Memory"},
            "cacheEmptyDirMedium Memory needs cacheEmptyDirSizeLimit",
        ),
        (
            {"cache": "emptyDir", "cacheEmptyDirSizeLimit": "2 GiB"},
            "volume attribute cacheEmptyDirSizeLimit: storage quantity '2 GiB' must be an integer",
        ),
        ({"cache": "emptyDir", "cacheEmptyDirSizeLimit": "32Mi"}, "32Mi is below the smallest cache, 64Mi"),
    ],
)
def test_invalid_cache_attributes_are_named(attributes: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        VolumeContext.parse({"bucketName": "bucket-1", **attributes})
    assert message in str(error.value)


def test_cache_attribute_names() -> None:
    # Named as AWS's Mountpoint S3 CSI driver names them: its PVs keep their meaning here.
    assert context.CACHE_ATTRIBUTES == (
        "cache",
        "cacheEmptyDirSizeLimit",
        "cacheEmptyDirMedium",
        "cacheEphemeralStorageClassName",
        "cacheEphemeralStorageResourceRequest",
    )
