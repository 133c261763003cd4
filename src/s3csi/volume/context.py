"""Volume attributes: the one home of the volume-context keys, the annotation keys, and their parsing.

A volume context reaches NodePublishVolume from a static PV's ``volumeAttributes`` or from what CreateVolume
returned, plus the ``csi.storage.k8s.io/*`` keys kubelet adds when the CSIDriver asks for pod info. Keys this
module does not know are ignored: kubelet and the external-provisioner add their own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from s3csi.bucketforms import BucketForm, bucket_form
from s3csi.errors import InvalidArgument
from s3csi.mountflags import ACCOUNT_ID_PATTERN, REGION_PATTERN, ValueKind
from s3csi.volume.options import normalise_prefix, parse_id
from s3csi.volume.quantity import cpu_millicores, memory_bytes, storage_bytes

# The CSIDriver's name unless --driver-name says otherwise (the node plugin, the controller, the webhook).
DEFAULT_DRIVER_NAME = "s3.csi.s3csi.io"
BUCKET_NAME = "bucketName"
PREFIX = "prefix"
AUTHENTICATION_SOURCE = "authenticationSource"
STS_REGION = "stsRegion"
FS_USER = "fsUser"
ROLE_ARN = "roleArn"
# "true": the mount takes appends, writes at any offset, truncation and read-write opens through a local copy
# in the cache volume (the mount option --staged-writes; docs/filesystem.md#staged-writes).
STAGED_WRITES = "stagedWrites"
# The Mountpoint Pod's container resources, overriding the controller's measured defaults
# (docs/kubernetes.md#the-mountpoint-pod); named as AWS's Mountpoint S3 CSI driver names them, so its PVs
# and StorageClasses keep their meaning. Only `--runtime kubernetes` applies them.
MOUNTPOINT_CONTAINER_RESOURCES_REQUESTS_CPU = "mountpointContainerResourcesRequestsCpu"
MOUNTPOINT_CONTAINER_RESOURCES_REQUESTS_MEMORY = "mountpointContainerResourcesRequestsMemory"
MOUNTPOINT_CONTAINER_RESOURCES_LIMITS_CPU = "mountpointContainerResourcesLimitsCpu"
MOUNTPOINT_CONTAINER_RESOURCES_LIMITS_MEMORY = "mountpointContainerResourcesLimitsMemory"
MOUNTPOINT_CONTAINER_RESOURCES_ATTRIBUTES = (
    MOUNTPOINT_CONTAINER_RESOURCES_REQUESTS_CPU,
    MOUNTPOINT_CONTAINER_RESOURCES_REQUESTS_MEMORY,
    MOUNTPOINT_CONTAINER_RESOURCES_LIMITS_CPU,
    MOUNTPOINT_CONTAINER_RESOURCES_LIMITS_MEMORY,
)

# The Mountpoint Pod's cache volume (docs/kubernetes.md#the-cache-volume): where the mounter keeps read parts,
# named as AWS's Mountpoint S3 CSI driver names them.
CACHE = "cache"
CACHE_EMPTY_DIR_SIZE_LIMIT = "cacheEmptyDirSizeLimit"
CACHE_EMPTY_DIR_MEDIUM = "cacheEmptyDirMedium"
CACHE_EPHEMERAL_STORAGE_CLASS_NAME = "cacheEphemeralStorageClassName"
CACHE_EPHEMERAL_STORAGE_RESOURCE_REQUEST = "cacheEphemeralStorageResourceRequest"
CACHE_ATTRIBUTES = (
    CACHE,
    CACHE_EMPTY_DIR_SIZE_LIMIT,
    CACHE_EMPTY_DIR_MEDIUM,
    CACHE_EPHEMERAL_STORAGE_CLASS_NAME,
    CACHE_EPHEMERAL_STORAGE_RESOURCE_REQUEST,
)
CACHE_MEDIUM_MEMORY = "Memory"
MIN_CACHE_SIZE = 64 * 2**20
"""The smallest cache size accepted: a few read parts (8 MiB each by default)."""
CACHE_SIZE_FRACTION = 0.9
"""The share of the volume's size the mounter's cache may fill (its ``--max-cache-size``). The bound counts
cached parts, not the file system's own overhead or a part being written; kubelet evicts a pod whose emptyDir
outgrows its sizeLimit, which would take every workload's mount with it, so the margin is generous."""

CO_KEY_PREFIX = "csi.storage.k8s.io/"
"""The prefix of the keys Kubernetes itself adds to volume contexts and StorageClass parameters."""
# Added by kubelet (CSIDriver podInfoOnMount / tokenRequests).
POD_NAME = f"{CO_KEY_PREFIX}pod.name"
POD_NAMESPACE = f"{CO_KEY_PREFIX}pod.namespace"
POD_UID = f"{CO_KEY_PREFIX}pod.uid"
SERVICE_ACCOUNT_NAME = f"{CO_KEY_PREFIX}serviceAccount.name"
SERVICE_ACCOUNT_TOKENS = f"{CO_KEY_PREFIX}serviceAccount.tokens"
EPHEMERAL = f"{CO_KEY_PREFIX}ephemeral"

FS_USER_ANNOTATION = "s3csi.io/fs-user"
"""The pod annotation carrying the pod-level file owner uid (fsUser: docs/mount-options.md)."""

# AWS general-purpose bucket naming rules, which S3-compatible stores follow for new buckets.
ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
"""The service account annotation naming the role its pods assume (IRSA)."""
DEFAULT_SERVICE_ACCOUNT = "default"
"""The service account of a pod whose spec names none."""

# Labels and annotations s3csi puts on the Mountpoint Pods it creates (docs/kubernetes.md#names).
SHARING_KEY_LABEL = "s3csi.io/sharing-key"
"""Label: the sharing key (volume/sharing.py) the Mountpoint Pod serves; also its attachment's name."""
VOLUME_ID_DIGEST_LABEL = "s3csi.io/volume-id-digest"
"""Label: a digest of the volume id, which may not fit a label value."""
DRIVER_VERSION_KEY = "s3csi.io/driver-version"
"""Label (the version made label-safe) and annotation (as is): the s3csi version that built the pod."""
VOLUME_ID_ANNOTATION = "s3csi.io/volume-id"
PERSISTENT_VOLUME_NAME_ANNOTATION = "s3csi.io/persistent-volume-name"

_STORAGE_CLASS_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_ROLE_ARN = re.compile(rf"arn:[a-z0-9-]+:iam::{ACCOUNT_ID_PATTERN.pattern}:role/[A-Za-z0-9+=,.@_/-]{{1,512}}")


class AuthenticationSource(StrEnum):
    """Where the Mountpoint Pod's S3 credentials come from (docs/credentials.md)."""

    DRIVER = "driver"
    SECRET = "secret"
    POD = "pod"


def is_role_arn(text: str) -> bool:
    """``text`` is an IAM role ARN (``arn:PARTITION:iam::ACCOUNT:role/NAME``)."""
    return _ROLE_ARN.fullmatch(text) is not None


def validate_bucket_name(name: str) -> str:
    """``name`` if it is a valid S3 bucket name, else InvalidArgument naming ``bucketName``. A name, not an
    ARN: what provisioning creates, deletes or puts prefixes in (the rules AWS has for new buckets)."""
    what = f"volume attribute {BUCKET_NAME}"
    if bucket_form(name, what=what) in (BucketForm.ACCESS_POINT_ARN, BucketForm.OUTPOSTS_ACCESS_POINT_ARN):
        raise InvalidArgument(f"{what} {name[:80]!r} is not a valid bucket name: an access point ARN")
    return name


def validate_bucket(text: str) -> str:
    """``bucketName`` as a volume may give it: a bucket name, an access point or an Outposts access point
    (ARN or alias, see s3csi/bucketforms.py), else InvalidArgument listing the forms expected."""
    bucket_form(text, what=f"volume attribute {BUCKET_NAME}")
    return text


def _optional(volume_context: Mapping[str, str], key: str) -> str | None:
    """An attribute's value; an empty string counts as absent, as Kubernetes writes unset strings."""
    value = volume_context.get(key, "")
    return value or None


def _switch(volume_context: Mapping[str, str], key: str) -> bool:
    """A yes/no attribute: "true" or "false" (absent: false), as Kubernetes writes booleans."""
    value = _optional(volume_context, key)
    if value is None or value == "false":
        return False
    if value == "true":
        return True
    raise InvalidArgument(f'volume attribute {key} {value[:80]!r} must be "true" or "false"')


def _quantity(volume_context: Mapping[str, str], key: str, parse: Callable[[str], int]) -> str | None:
    """An attribute holding a Kubernetes quantity, as given; InvalidArgument naming it when malformed."""
    text = _optional(volume_context, key)
    if text is not None:
        try:
            parse(text)
        except InvalidArgument as exc:
            raise InvalidArgument(f"volume attribute {key}: {exc}") from None
    return text


class CacheType(StrEnum):
    """The kinds of cache volume a Mountpoint Pod can have."""

    EMPTY_DIR = "emptyDir"
    """An emptyDir: the node's disk (or memory with ``cacheEmptyDirMedium: Memory``), gone with the pod."""
    EPHEMERAL = "ephemeral"
    """A generic ephemeral volume: a PVC of its own storage class, made and deleted with the pod."""


@dataclass(frozen=True)
class CacheVolume:
    """The ``cache*`` attributes, validated: the Mountpoint Pod's cache volume."""

    type: CacheType
    size_limit: str | None = None
    """``cacheEmptyDirSizeLimit`` (emptyDir), as given."""
    medium_memory: bool = False
    """``cacheEmptyDirMedium: Memory``: tmpfs, counted in the Mountpoint Pod's memory."""
    storage_class_name: str | None = None
    """``cacheEphemeralStorageClassName``; None: the cluster's default storage class."""
    storage_request: str | None = None
    """``cacheEphemeralStorageResourceRequest`` (ephemeral; required)."""

    @classmethod
    def parse(cls, volume_context: Mapping[str, str]) -> CacheVolume | None:
        """None without a ``cache`` attribute; InvalidArgument naming the attribute that is wrong, or set
        for the other type."""
        type_text = _optional(volume_context, CACHE)
        emptydir_keys = (CACHE_EMPTY_DIR_SIZE_LIMIT, CACHE_EMPTY_DIR_MEDIUM)
        ephemeral_keys = (CACHE_EPHEMERAL_STORAGE_CLASS_NAME, CACHE_EPHEMERAL_STORAGE_RESOURCE_REQUEST)
        if type_text is None:
            stray = [key for key in (*emptydir_keys, *ephemeral_keys) if _optional(volume_context, key)]
            if stray:
                raise InvalidArgument(f"volume attribute {stray[0]} needs the volume attribute {CACHE}")
            return None
        try:
            kind = CacheType(type_text)
        except ValueError:
            allowed = ", ".join(item.value for item in CacheType)
            raise InvalidArgument(
                f"volume attribute {CACHE} {type_text[:80]!r} is not one of: {allowed}"
            ) from None
        other = ephemeral_keys if kind is CacheType.EMPTY_DIR else emptydir_keys
        for key in other:
            if _optional(volume_context, key):
                raise InvalidArgument(f"volume attribute {key} does not apply to {CACHE}: {kind.value}")
        if kind is CacheType.EPHEMERAL:
            storage_class = _optional(volume_context, CACHE_EPHEMERAL_STORAGE_CLASS_NAME)
            if storage_class is not None and not _STORAGE_CLASS_NAME.fullmatch(storage_class):
                raise InvalidArgument(
                    f"volume attribute {CACHE_EPHEMERAL_STORAGE_CLASS_NAME} {storage_class[:80]!r} is not a "
                    "StorageClass name"
                )
            request = _cache_size(volume_context, CACHE_EPHEMERAL_STORAGE_RESOURCE_REQUEST)
            if request is None:
                raise InvalidArgument(
                    f"volume attribute {CACHE}: {kind.value} needs "
                    f"{CACHE_EPHEMERAL_STORAGE_RESOURCE_REQUEST}, the size of the cache volume to claim"
                )
            return cls(kind, storage_class_name=storage_class, storage_request=request)
        medium = _optional(volume_context, CACHE_EMPTY_DIR_MEDIUM)
        if medium is not None and medium != CACHE_MEDIUM_MEMORY:
            raise InvalidArgument(
                f"volume attribute {CACHE_EMPTY_DIR_MEDIUM} {medium[:80]!r} must be {CACHE_MEDIUM_MEMORY} "
                "(or unset: the node's disk)"
            )
        size_limit = _cache_size(volume_context, CACHE_EMPTY_DIR_SIZE_LIMIT)
        if medium is not None and size_limit is None:
            raise InvalidArgument(
                f"volume attribute {CACHE_EMPTY_DIR_MEDIUM} {CACHE_MEDIUM_MEMORY} needs "
                f"{CACHE_EMPTY_DIR_SIZE_LIMIT}: a memory-backed cache is part of the Mountpoint Pod's memory"
            )
        return cls(kind, size_limit=size_limit, medium_memory=medium is not None)

    @property
    def size_bytes(self) -> int | None:
        """The volume's size (emptyDir sizeLimit, ephemeral request); None: unbounded (the node's disk)."""
        size = self.size_limit or self.storage_request
        return None if size is None else storage_bytes(size)

    def max_cache_size_mib(self) -> int | None:
        """The mounter's ``--max-cache-size``: :data:`CACHE_SIZE_FRACTION` of the volume's size; None for an
        emptyDir without a size limit (the mounter then leaves 5 % of the disk's free space free)."""
        size = self.size_bytes
        return None if size is None else int(size * CACHE_SIZE_FRACTION) // 2**20

    def to_volume_context(self) -> dict[str, str]:
        attributes = {CACHE: self.type.value}
        optional = {
            CACHE_EMPTY_DIR_SIZE_LIMIT: self.size_limit,
            CACHE_EMPTY_DIR_MEDIUM: CACHE_MEDIUM_MEMORY if self.medium_memory else None,
            CACHE_EPHEMERAL_STORAGE_CLASS_NAME: self.storage_class_name,
            CACHE_EPHEMERAL_STORAGE_RESOURCE_REQUEST: self.storage_request,
        }
        attributes.update({key: value for key, value in optional.items() if value is not None})
        return attributes


def _cache_size(volume_context: Mapping[str, str], key: str) -> str | None:
    size = _quantity(volume_context, key, storage_bytes)
    if size is not None and storage_bytes(size) < MIN_CACHE_SIZE:
        raise InvalidArgument(f"volume attribute {key} {size} is below the smallest cache, 64Mi")
    return size


@dataclass(frozen=True)
class VolumeContext:
    """The volume attributes s3csi defines, parsed and validated."""

    bucket_name: str
    prefix: str
    """"" for the whole bucket, else a normalised prefix ending in "/"."""
    authentication_source: AuthenticationSource
    sts_region: str | None
    fs_user: int | None
    role_arn: str | None
    mountpoint_pod_cpu_request: str | None = None
    mountpoint_pod_memory_request: str | None = None
    mountpoint_pod_memory_limit: str | None = None
    mountpoint_pod_cpu_limit: str | None = None
    """The ``mountpointContainerResources*`` attributes as given (validated quantities); None where unset."""
    cache: CacheVolume | None = None
    staged_writes: bool = False

    def mountpoint_pod_resource_attributes(self) -> list[str]:
        """The names of the ``mountpointContainerResources*`` attributes this volume sets."""
        values = (
            self.mountpoint_pod_cpu_request,
            self.mountpoint_pod_memory_request,
            self.mountpoint_pod_cpu_limit,
            self.mountpoint_pod_memory_limit,
        )
        return [
            key for key, value in zip(MOUNTPOINT_CONTAINER_RESOURCES_ATTRIBUTES, values, strict=True) if value
        ]

    @classmethod
    def parse(cls, volume_context: Mapping[str, str]) -> VolumeContext:
        """Raises InvalidArgument naming the attribute (never echoing more than its first 80 characters)."""
        bucket_name = _optional(volume_context, BUCKET_NAME)
        if bucket_name is None:
            raise InvalidArgument(f"volume attribute {BUCKET_NAME} is required")
        try:
            prefix = normalise_prefix(volume_context.get(PREFIX, ""))
        except ValueError:
            raise InvalidArgument(f"volume attribute {PREFIX} must be {ValueKind.PREFIX.value}") from None
        source_text = _optional(volume_context, AUTHENTICATION_SOURCE) or AuthenticationSource.DRIVER.value
        try:
            source = AuthenticationSource(source_text)
        except ValueError:
            allowed = ", ".join(item.value for item in AuthenticationSource)
            raise InvalidArgument(
                f"volume attribute {AUTHENTICATION_SOURCE} {source_text[:80]!r} is not one of: {allowed}"
            ) from None
        sts_region = _optional(volume_context, STS_REGION)
        if sts_region is not None and not REGION_PATTERN.fullmatch(sts_region):
            raise InvalidArgument(f"volume attribute {STS_REGION} must be {ValueKind.REGION.value}")
        fs_user_text = _optional(volume_context, FS_USER)
        try:
            fs_user = None if fs_user_text is None else parse_id(fs_user_text)
        except ValueError:
            raise InvalidArgument(f"volume attribute {FS_USER} must be {ValueKind.ID.value}") from None
        role_arn = _optional(volume_context, ROLE_ARN)
        if role_arn is not None and not _ROLE_ARN.fullmatch(role_arn):
            raise InvalidArgument(
                f"volume attribute {ROLE_ARN} must be an IAM role ARN (arn:PARTITION:iam::ACCOUNT:role/NAME)"
            )
        cpu_request = _quantity(volume_context, MOUNTPOINT_CONTAINER_RESOURCES_REQUESTS_CPU, cpu_millicores)
        memory_request = _quantity(
            volume_context, MOUNTPOINT_CONTAINER_RESOURCES_REQUESTS_MEMORY, memory_bytes
        )
        memory_limit = _quantity(volume_context, MOUNTPOINT_CONTAINER_RESOURCES_LIMITS_MEMORY, memory_bytes)
        cpu_limit = _quantity(volume_context, MOUNTPOINT_CONTAINER_RESOURCES_LIMITS_CPU, cpu_millicores)
        if cpu_request and cpu_limit and cpu_millicores(cpu_request) > cpu_millicores(cpu_limit):
            raise InvalidArgument(
                f"volume attribute {MOUNTPOINT_CONTAINER_RESOURCES_REQUESTS_CPU} {cpu_request} exceeds "
                f"{MOUNTPOINT_CONTAINER_RESOURCES_LIMITS_CPU} {cpu_limit}"
            )
        if memory_request and memory_limit and memory_bytes(memory_request) > memory_bytes(memory_limit):
            raise InvalidArgument(
                f"volume attribute {MOUNTPOINT_CONTAINER_RESOURCES_REQUESTS_MEMORY} {memory_request} exceeds "
                f"{MOUNTPOINT_CONTAINER_RESOURCES_LIMITS_MEMORY} {memory_limit}"
            )
        return cls(
            bucket_name=validate_bucket(bucket_name),
            prefix=prefix,
            authentication_source=source,
            sts_region=sts_region,
            fs_user=fs_user,
            role_arn=role_arn,
            mountpoint_pod_cpu_request=cpu_request,
            mountpoint_pod_memory_request=memory_request,
            mountpoint_pod_memory_limit=memory_limit,
            mountpoint_pod_cpu_limit=cpu_limit,
            cache=CacheVolume.parse(volume_context),
            staged_writes=_switch(volume_context, STAGED_WRITES),
        )

    def to_volume_context(self) -> dict[str, str]:
        """The attributes as CreateVolume returns them; ``parse`` of the result gives back ``self``."""
        attributes = {BUCKET_NAME: self.bucket_name, AUTHENTICATION_SOURCE: self.authentication_source.value}
        if self.prefix:
            attributes[PREFIX] = self.prefix
        if self.sts_region is not None:
            attributes[STS_REGION] = self.sts_region
        if self.fs_user is not None:
            attributes[FS_USER] = str(self.fs_user)
        if self.role_arn is not None:
            attributes[ROLE_ARN] = self.role_arn
        resources = (
            self.mountpoint_pod_cpu_request,
            self.mountpoint_pod_memory_request,
            self.mountpoint_pod_cpu_limit,
            self.mountpoint_pod_memory_limit,
        )
        for key, value in zip(MOUNTPOINT_CONTAINER_RESOURCES_ATTRIBUTES, resources, strict=True):
            if value is not None:
                attributes[key] = value
        if self.cache is not None:
            attributes.update(self.cache.to_volume_context())
        if self.staged_writes:
            attributes[STAGED_WRITES] = "true"
        return attributes
