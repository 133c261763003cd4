"""The CSI Controller service: CreateVolume, DeleteVolume and ValidateVolumeCapabilities over the
provisioner; every other Controller RPC answers UNIMPLEMENTED."""

from __future__ import annotations

import logging
import re

import grpc

from s3csi.csi.proto import csi_pb2, csi_pb2_grpc
from s3csi.csi.requests import MountCapability, required, secret_credentials, volume_capabilities
from s3csi.csi.unimplemented import unimplemented
from s3csi.errors import InvalidArgument, NotFound
from s3csi.provisioning.naming import VolumeId
from s3csi.provisioning.plan import CapacityRange, plan_volume
from s3csi.provisioning.provisioner import Provisioner
from s3csi.volume.context import VolumeContext
from s3csi.volume.policy import PolicyInput, check_bucket_type, check_staging_cache, effective_mount

log = logging.getLogger(__name__)

# The spec's banned characters in a volume name: control characters other than common whitespace.
_BANNED_IN_NAME = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]")

_CAPABILITIES = [
    csi_pb2.ControllerServiceCapability(
        rpc=csi_pb2.ControllerServiceCapability.RPC(
            type=csi_pb2.ControllerServiceCapability.RPC.CREATE_DELETE_VOLUME
        )
    )
]


def _volume_name(name: str) -> str:
    if _BANNED_IN_NAME.search(required(name, "name")):
        raise InvalidArgument("name contains a control character the CSI spec bans")
    return name


def check_mount_options(capabilities: tuple[MountCapability, ...], volume: VolumeContext) -> None:
    """Refuse now the StorageClass ``mountOptions`` (each capability's ``mount_flags``) that every
    NodePublishVolume of the volume would refuse, by the same policy: a volume nobody can mount is no
    use, and the error belongs to whoever wrote the StorageClass, not to each pod."""
    for index, capability in enumerate(capabilities):
        field = f"volume_capabilities[{index}].mount.mount_flags (the StorageClass's mountOptions)"
        try:
            mount = effective_mount(
                PolicyInput(
                    mount_flags=capability.mount_flags,
                    volume_mount_group=capability.volume_mount_group or None,
                    fs_user_annotation=None,
                    volume_fs_user=volume.fs_user,
                    readonly=False,
                    access_mode=capability.access_mode,
                    volume_staged_writes=volume.staged_writes,
                )
            )
            check_staging_cache(mount, volume.cache)
            check_bucket_type(mount, volume.bucket_name)
        except InvalidArgument as refused:
            raise InvalidArgument(f"{field}: {refused}") from None
        if volume.prefix and any(arg.startswith("--prefix=") for arg in mount.args):
            raise InvalidArgument(
                f"{field}: --prefix cannot be set for a prefix-per-volume volume, "
                "which has a prefix of its own"
            )


class ControllerServicer(csi_pb2_grpc.ControllerServicer):
    def __init__(self, provisioner: Provisioner) -> None:
        self._provisioner = provisioner

    async def ControllerGetCapabilities(
        self, request: csi_pb2.ControllerGetCapabilitiesRequest, context: grpc.aio.ServicerContext
    ) -> csi_pb2.ControllerGetCapabilitiesResponse:
        return csi_pb2.ControllerGetCapabilitiesResponse(capabilities=_CAPABILITIES)

    async def CreateVolume(
        self, request: csi_pb2.CreateVolumeRequest, context: grpc.aio.ServicerContext
    ) -> csi_pb2.CreateVolumeResponse:
        name = _volume_name(request.name)
        capabilities = volume_capabilities(request.volume_capabilities)
        if request.HasField("volume_content_source"):
            raise InvalidArgument(
                "volume_content_source: creating a volume from a snapshot or another volume is not supported"
            )
        if request.HasField("accessibility_requirements"):
            raise InvalidArgument("accessibility_requirements: this driver has no topology")
        if request.mutable_parameters:
            raise InvalidArgument("mutable_parameters: this driver cannot modify volumes")
        capacity = CapacityRange(request.capacity_range.required_bytes, request.capacity_range.limit_bytes)
        plan = plan_volume(name, request.parameters, capacity)
        check_mount_options(capabilities, VolumeContext.parse(plan.volume_context))
        await self._provisioner.create_volume(plan, secret_credentials(request.secrets))
        return csi_pb2.CreateVolumeResponse(
            volume=csi_pb2.Volume(
                volume_id=str(plan.volume_id),
                capacity_bytes=plan.capacity_bytes,
                volume_context=plan.volume_context,
            )
        )

    async def DeleteVolume(
        self, request: csi_pb2.DeleteVolumeRequest, context: grpc.aio.ServicerContext
    ) -> csi_pb2.DeleteVolumeResponse:
        volume_id = VolumeId.parse(required(request.volume_id, "volume_id"))
        credentials = secret_credentials(request.secrets)
        if volume_id is None:
            # Not an id this driver makes, so there is nothing of ours to delete: the spec wants OK. A
            # static PV with reclaim policy Delete gets here with its own volumeHandle: its data stays.
            log.warning(
                "DeleteVolume of %r: not a volume id of this driver, nothing deleted", request.volume_id
            )
        else:
            await self._provisioner.delete_volume(volume_id, credentials)
        return csi_pb2.DeleteVolumeResponse()

    async def ValidateVolumeCapabilities(
        self, request: csi_pb2.ValidateVolumeCapabilitiesRequest, context: grpc.aio.ServicerContext
    ) -> csi_pb2.ValidateVolumeCapabilitiesResponse:
        volume_id_text = required(request.volume_id, "volume_id")
        if not request.volume_capabilities:
            raise InvalidArgument("volume_capabilities is required")
        if request.volume_context:
            VolumeContext.parse(request.volume_context)
        credentials = secret_credentials(request.secrets)
        volume_id = VolumeId.parse(volume_id_text)
        if volume_id is None or not await self._provisioner.volume_exists(volume_id, credentials):
            raise NotFound(f"volume {volume_id_text!r} does not exist")
        try:
            volume_capabilities(request.volume_capabilities)
        except InvalidArgument as unsupported:
            return csi_pb2.ValidateVolumeCapabilitiesResponse(message=str(unsupported))
        return csi_pb2.ValidateVolumeCapabilitiesResponse(
            confirmed=csi_pb2.ValidateVolumeCapabilitiesResponse.Confirmed(
                volume_context=request.volume_context,
                volume_capabilities=request.volume_capabilities,
                parameters=request.parameters,
            )
        )

    ControllerPublishVolume = unimplemented("ControllerPublishVolume")
    ControllerUnpublishVolume = unimplemented("ControllerUnpublishVolume")
    ListVolumes = unimplemented("ListVolumes")
    GetCapacity = unimplemented("GetCapacity")
    CreateSnapshot = unimplemented("CreateSnapshot")
    DeleteSnapshot = unimplemented("DeleteSnapshot")
    ListSnapshots = unimplemented("ListSnapshots")
    GetSnapshot = unimplemented("GetSnapshot")
    ControllerExpandVolume = unimplemented("ControllerExpandVolume")
    ControllerGetVolume = unimplemented("ControllerGetVolume")
    ControllerModifyVolume = unimplemented("ControllerModifyVolume")
