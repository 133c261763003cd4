"""StorageClass parameters and a CreateVolume request → the volume to make (pure).

Parameters (``StorageClass.parameters``; the external-provisioner strips its own
``csi.storage.k8s.io/*`` keys, any left are ignored):

- ``provisioningMode``: ``bucket-per-volume`` (default) or ``prefix-per-volume``;
- ``bucketName``: the existing bucket for ``prefix-per-volume``; refused for ``bucket-per-volume``;
- ``authenticationSource``, ``stsRegion``, ``fsUser``, ``roleArn``: copied into the volume's attributes
  and validated as :class:`~s3csi.volume.context.VolumeContext` validates them.

Anything else is refused, naming the parameter: a typo must not provision a different volume.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from s3csi.errors import InvalidArgument
from s3csi.provisioning.naming import ProvisioningMode, VolumeId, bucket_name_for, leaf_for
from s3csi.volume import context
from s3csi.volume.context import VolumeContext, validate_bucket_name

PROVISIONING_MODE = "provisioningMode"
BUCKET_NAME = context.BUCKET_NAME
_ATTRIBUTES = (
    context.AUTHENTICATION_SOURCE,
    context.STS_REGION,
    context.FS_USER,
    context.ROLE_ARN,
    *context.MOUNTPOINT_CONTAINER_RESOURCES_ATTRIBUTES,
    *context.CACHE_ATTRIBUTES,
    context.STAGED_WRITES,
)
MARKER_PREFIX = ".s3csi-volumes/"
"""Where each volume's record lives in its bucket: ``.s3csi-volumes/<bucket or leaf>.json``."""


@dataclass(frozen=True)
class CapacityRange:
    required_bytes: int = 0
    limit_bytes: int = 0

    def __post_init__(self) -> None:
        if self.required_bytes < 0 or self.limit_bytes < 0:
            raise InvalidArgument("capacity_range: required_bytes and limit_bytes must not be negative")
        if self.limit_bytes and self.required_bytes > self.limit_bytes:
            raise InvalidArgument("capacity_range: required_bytes is larger than limit_bytes")

    @property
    def capacity_bytes(self) -> int:
        """What the volume reports: S3 has no size limit, so the request's own figure (0: unknown)."""
        return self.required_bytes or self.limit_bytes


@dataclass(frozen=True)
class VolumePlan:
    """One volume to provision. ``record`` is stored with the volume (``marker_key``) so that a later
    CreateVolume of the same name, even by a restarted controller, can tell "same" from "other"."""

    volume_id: VolumeId
    volume_context: dict[str, str]
    capacity_bytes: int
    record: dict[str, Any]

    @property
    def marker_key(self) -> str:
        return marker_key(self.volume_id)

    def record_bytes(self) -> bytes:
        return json.dumps(self.record, sort_keys=True, separators=(",", ":")).encode()


def marker_key(volume_id: VolumeId) -> str:
    return f"{MARKER_PREFIX}{volume_id.leaf or volume_id.bucket}.json"


def plan_volume(name: str, parameters: Mapping[str, str], capacity: CapacityRange) -> VolumePlan:
    """Raises InvalidArgument naming the parameter at fault."""
    own = {k: v for k, v in parameters.items() if not k.startswith(context.CO_KEY_PREFIX)}
    unknown = sorted(set(own) - {PROVISIONING_MODE, BUCKET_NAME, *_ATTRIBUTES})
    if unknown:
        raise InvalidArgument(f"unknown StorageClass parameter(s): {', '.join(unknown)}")
    mode_text = own.get(PROVISIONING_MODE) or ProvisioningMode.BUCKET_PER_VOLUME.value
    try:
        mode = ProvisioningMode(mode_text)
    except ValueError:
        allowed = ", ".join(m.value for m in ProvisioningMode)
        raise InvalidArgument(
            f"StorageClass parameter {PROVISIONING_MODE} must be one of: {allowed}"
        ) from None
    bucket_name = own.get(BUCKET_NAME, "")
    if mode is ProvisioningMode.BUCKET_PER_VOLUME:
        if bucket_name:
            raise InvalidArgument(
                f"StorageClass parameter {BUCKET_NAME} is for {ProvisioningMode.PREFIX_PER_VOLUME.value}; "
                f"{mode.value} creates a bucket named after the volume"
            )
        volume_id = VolumeId(mode, bucket_name_for(name))
    else:
        if not bucket_name:
            raise InvalidArgument(f"StorageClass parameter {BUCKET_NAME} is required for {mode.value}")
        try:
            validate_bucket_name(bucket_name)
        except InvalidArgument as exc:
            raise InvalidArgument(f"StorageClass parameter {exc}") from None
        volume_id = VolumeId(mode, bucket_name, leaf_for(name))
    attributes = {k: own[k] for k in _ATTRIBUTES if own.get(k)}
    volume_context = VolumeContext.parse(
        {BUCKET_NAME: volume_id.bucket, context.PREFIX: volume_id.prefix, **attributes}
    ).to_volume_context()
    record = {
        "name": name,
        "volumeId": str(volume_id),
        "volumeContext": volume_context,
        "capacityRange": {"requiredBytes": capacity.required_bytes, "limitBytes": capacity.limit_bytes},
    }
    return VolumePlan(volume_id, volume_context, capacity.capacity_bytes, record)
