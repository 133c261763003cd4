"""The CSI Identity service: who this plugin is, what it offers, whether it is ready.

Probe is ready while the server serves and every readiness check passes (:mod:`s3csi.csi.health`): the
livenessprobe sidecar turns a ``ready: false`` into a failing ``/healthz``, so kubelet restarts a plugin that
cannot do its work. ProbeResponse has no field for a reason: a failing check's reason is logged, once per
change."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
from google.protobuf.wrappers_pb2 import BoolValue

from s3csi import __version__
from s3csi.csi.proto import csi_pb2, csi_pb2_grpc
from s3csi.metrics.endpoint import HealthCheck

log = logging.getLogger(__name__)

_CONTROLLER_SERVICE = csi_pb2.PluginCapability(
    service=csi_pb2.PluginCapability.Service(type=csi_pb2.PluginCapability.Service.CONTROLLER_SERVICE)
)


@dataclass
class Readiness:
    """``ready``: set by the server once it serves, cleared when it starts draining. ``checks``: what must
    hold besides, each None when it does or the reason it does not."""

    ready: bool = False
    checks: Sequence[HealthCheck] = field(default_factory=tuple)
    _reported: str | None = None

    async def problem(self) -> str | None:
        """None when ready; else the first reason it is not (logged when it differs from the last one)."""
        reason = "the server is not serving (starting or draining)" if not self.ready else None
        for check in self.checks if reason is None else ():
            reason = await check()
            if reason is not None:
                break
        if reason != self._reported:
            if reason is None:
                log.info("ready again")
            else:
                log.warning("not ready: %s", reason)
            self._reported = reason
        return reason


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
        problem = await self._readiness.problem()
        return csi_pb2.ProbeResponse(ready=BoolValue(value=problem is None))
