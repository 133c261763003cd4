"""Request fields that more than one CSI service reads, parsed into plain values.

Every function raises :class:`~s3csi.errors.InvalidArgument` naming the field at fault, as the spec
wants for a missing or invalid field; none echoes a secret.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from s3csi.credentials.plan import secret_credentials as plan_secret_credentials
from s3csi.csi.proto import csi_pb2
from s3csi.errors import InvalidArgument
from s3csi.s3.credentials import Credentials
from s3csi.volume.policy import SUPPORTED_ACCESS_MODES, AccessMode


def required(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(f"{field} is required")
    return value


@dataclass(frozen=True)
class MountCapability:
    """A ``VolumeCapability`` s3csi can serve: the file-system access type with a supported mode."""

    access_mode: AccessMode
    mount_flags: tuple[str, ...]
    volume_mount_group: str


def volume_capability(capability: csi_pb2.VolumeCapability, field: str) -> MountCapability:
    """Parse one capability; block access, a missing access type or an unsupported mode is invalid."""
    access_type = capability.WhichOneof("access_type")
    if access_type == "block":
        raise InvalidArgument(f"{field}: block access is not supported, an S3 volume is a file system")
    if access_type != "mount":
        raise InvalidArgument(f"{field}: the access type (mount) is required")
    if not capability.HasField("access_mode"):
        raise InvalidArgument(f"{field}: access_mode is required")
    mode = AccessMode.from_csi(capability.access_mode.mode)
    if mode not in SUPPORTED_ACCESS_MODES:
        supported = ", ".join(sorted(m.name for m in SUPPORTED_ACCESS_MODES))
        raise InvalidArgument(f"{field}: access mode {mode.name} is not supported (supported: {supported})")
    return MountCapability(
        access_mode=mode,
        mount_flags=tuple(capability.mount.mount_flags),
        volume_mount_group=capability.mount.volume_mount_group,
    )


def volume_capabilities(
    capabilities: Sequence[csi_pb2.VolumeCapability], field: str = "volume_capabilities"
) -> tuple[MountCapability, ...]:
    if not capabilities:
        raise InvalidArgument(f"{field} is required")
    return tuple(volume_capability(c, f"{field}[{i}]") for i, c in enumerate(capabilities))


def secret_credentials(secrets: Mapping[str, str], field: str = "secrets") -> Credentials | None:
    """Static S3 keys from a CSI ``secrets`` map; None when the map is empty. Validated by the one rule
    for secrets (``credentials.plan.secret_credentials``): errors name the key, never its value."""
    if not secrets:
        return None
    return plan_secret_credentials(secrets, field)
