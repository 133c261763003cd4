"""The driver's gRPC server: grpc.aio on a unix socket, the servicers of the chosen mode, graceful stop.

Lifecycle: an old socket left by a dead driver is removed (one still answering is refused); the new
one is created with umask 077 and chmod 0700, so only root (kubelet, the sidecars) can connect; Probe
says ready once the server accepts calls and while its readiness checks pass (csi/health.py). SIGTERM
or SIGINT stops accepting new calls, lets those in flight finish (up to ``drain_timeout_s``), removes
the socket and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import socket
import stat
from collections.abc import Sequence

import grpc

from s3csi.csi.controller import ControllerServicer
from s3csi.csi.health import socket_check
from s3csi.csi.identity import IdentityServicer, Readiness
from s3csi.csi.interceptor import RequestInterceptor
from s3csi.csi.node import NodeServicer
from s3csi.csi.proto import csi_pb2_grpc
from s3csi.csi.settings import UNIX_SCHEME, DriverSettings
from s3csi.errors import FailedPrecondition
from s3csi.kube.client import KubeClient
from s3csi.metrics.endpoint import HealthCheck
from s3csi.metrics.node import NodeMetrics
from s3csi.podmounter.runtime import WorkloadEvents
from s3csi.provisioning.provisioner import Provisioner
from s3csi.s3 import CredentialProvider
from s3csi.s3.reachability import endpoint_problem
from s3csi.volume.publish_spec import VolumePublisher

log = logging.getLogger(__name__)

SOCKET_MODE = 0o700


def remove_stale_socket(path: str) -> None:
    """Remove a socket nobody listens on any more; refuse to touch anything else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise FailedPrecondition(f"{path} exists and is not a socket; refusing to replace it")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)
            log.info("removed stale socket %s", path)
            return
    raise FailedPrecondition(f"another process is serving on {path}")


async def serve(
    settings: DriverSettings,
    driver_credentials: CredentialProvider,
    publisher: VolumePublisher | None = None,
    stopping: asyncio.Event | None = None,
    kube: KubeClient | None = None,
    *,
    events: WorkloadEvents | None = None,
    metrics: NodeMetrics | None = None,
    checks: Sequence[HealthCheck] = (),
) -> None:
    """Serve until ``stopping`` is set (by default: until SIGTERM or SIGINT), then drain and return.
    ``publisher``: required when ``settings.mode`` serves the node service. ``kube``: the Kubernetes API
    NodePublishVolume reads pod annotations from (None: annotations have no effect). ``events``: where a
    failed NodePublishVolume is recorded on its workload pod (None: only kubelet's own Event tells).
    ``metrics``: where the calls are counted. ``checks``: readiness checks Probe runs besides the socket's
    and, in controller mode, the S3 endpoint's (the node service's: podmounter/health.py)."""
    readiness = Readiness()
    server = grpc.aio.server(interceptors=[RequestInterceptor(metrics)])
    csi_pb2_grpc.add_IdentityServicer_to_server(IdentityServicer(settings.driver_name, readiness), server)  # type: ignore[no-untyped-call]
    provisioner = None
    if settings.mode.serves_controller:
        provisioner = Provisioner(settings.s3, driver_credentials)
        csi_pb2_grpc.add_ControllerServicer_to_server(ControllerServicer(provisioner), server)  # type: ignore[no-untyped-call]
    if settings.mode.serves_node:
        if publisher is None:
            # The CLI always starts one with the node service: a caller that does not has a bug, and a
            # node service that could only refuse every publish must not listen.
            raise ValueError(f"mode {settings.mode.value}: serving the node service needs a volume publisher")
        node = NodeServicer(settings.node_id, settings.kubelet_dir, publisher, kube, events)
        csi_pb2_grpc.add_NodeServicer_to_server(node, server)  # type: ignore[no-untyped-call]

    path = settings.socket_path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    remove_stale_socket(path)
    previous_umask = os.umask(0o077)
    try:
        server.add_insecure_port(UNIX_SCHEME + path)
        await server.start()
    finally:
        os.umask(previous_umask)
    os.chmod(path, SOCKET_MODE)
    readiness.checks = [socket_check(path), *checks]
    if settings.mode.serves_controller:
        readiness.checks.append(functools.partial(endpoint_problem, settings.s3))

    loop = asyncio.get_running_loop()
    signals: tuple[signal.Signals, ...] = ()
    if stopping is None:
        stopping, signals = asyncio.Event(), (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stopping.set)
    readiness.ready = True
    log.info(
        "serving CSI %s on %s as %s (node %s)",
        settings.mode.value,
        path,
        settings.driver_name,
        settings.node_id,
    )
    try:
        await stopping.wait()
    finally:
        readiness.ready = False
        log.info("stopping: draining calls in flight (up to %g s)", settings.drain_timeout_s)
        await server.stop(grace=settings.drain_timeout_s)
        for signum in signals:
            loop.remove_signal_handler(signum)
        if provisioner is not None:
            await provisioner.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        log.info("stopped")
