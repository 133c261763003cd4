"""The CSI Identity service: who this plugin is, what it offers, whether it is ready."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf.wrappers_pb2 import BoolValue

from s3csi import __version__
from s3csi.csi.proto import csi_pb2, csi_pb2_grpc

_CONTROLLER_SERVICE = csi_pb2.PluginCapability(
    service=csi_pb2.PluginCapability.Service(type=csi_pb2.PluginCapability.Service.CONTROLLER_SERVICE)
)


@dataclass
class Readiness:
    """Set by the server once it serves, cleared when it starts draining; Probe reports it."""

    ready: bool = False


class IdentityServicer(csi_pb2_grpc.IdentityServicer):
    def __init__(self, driver_name: str, readiness: Readiness) -> None:
        self._driver_name = driver_name
        self._readiness = readiness

    async def GetPluginInfo(
        self, request: csi_pb2.GetPluginInfoRequest, context: grpc.aio.ServicerContext
    ) -> csi_pb2.GetPluginInfoResponse:
        return csi_pb2.GetPluginInfoResponse(name=self._driver_name, vendor_version=__version__)

    async def GetPluginCapabilities(
        self, request: csi_pb2.GetPluginCapabilitiesRequest, context: grpc.aio.ServicerContext
    ) -> csi_pb2.GetPluginCapabilitiesResponse:
        return csi_pb2.GetPluginCapabilitiesResponse(capabilities=[_CONTROLLER_SERVICE])

    async def Probe(
        self, request: csi_pb2.ProbeRequest, context: grpc.aio.ServicerContext
    ) -> csi_pb2.ProbeResponse:
        return csi_pb2.ProbeResponse(ready=BoolValue(value=self._readiness.ready))
