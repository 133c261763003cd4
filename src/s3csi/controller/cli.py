"""``s3csi controller``: Mountpoint Pods and MountpointPodAttachments for the workloads of this driver's
volumes, one replica leading through a Lease (docs/kubernetes.md#the-controller)."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket

from s3csi.controller.health import controller_check
from s3csi.controller.leader import LeaderElector
from s3csi.controller.main import Controller
from s3csi.controller.settings import ControllerSettings, LeaseSettings
from s3csi.csi.settings import DEFAULT_DRIVER_NAME
from s3csi.errors import InvalidArgument
from s3csi.kube.api import Api
from s3csi.kube.settings import KubeApiFlags, KubeApiSettings, kube_api_settings
from s3csi.logs import configure_logging
from s3csi.metrics.controller import ControllerMetrics
from s3csi.metrics.endpoint import MetricsAddress, new_registry
from s3csi.metrics.flags import CONTROLLER_PORT, add_metrics_argument, metrics_address, metrics_endpoint
from s3csi.podmounter.podspec import DEFAULT_NAMESPACE, MountpointPodResources, MountpointPodSettings


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"must be zero or more seconds, not {text!r}")
    return seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    lease = LeaseSettings(identity="-")
    resources = MountpointPodResources()
    defaults = ControllerSettings(
        kube=KubeApiSettings("https://localhost", "-", "-"),
        mountpoint_pods=MountpointPodSettings("-"),
        lease=lease,
    )
    add = parser.add_argument
    add("--image", required=True, help="the driver's image, which Mountpoint Pods run (s3csi mounter)")
    add(
        "--mountpoint-namespace",
        default=DEFAULT_NAMESPACE,
        help="namespace of the Mountpoint Pods (default %(default)s)",
    )
    add("--image-pull-policy", default="IfNotPresent", help="of the Mountpoint Pods (default %(default)s)")
    add("--priority-class", default=None, help="priority class of the Mountpoint Pods (default: none)")
    add("--mountpoint-cpu-request", default=resources.cpu_request, help="default %(default)s")
    add("--mountpoint-memory-request", default=resources.memory_request, help="default %(default)s")
    add("--mountpoint-memory-limit", default=resources.memory_limit, help="default %(default)s")
    add(
        "--mountpoint-pod-metrics",
        action="store_true",
        help="Mountpoint Pods serve their Prometheus metrics on pod port 9813 (named metrics), with "
        "prometheus.io/scrape annotations (default: off)",
    )
    add("--driver-name", default=DEFAULT_DRIVER_NAME, help="the CSIDriver served (default %(default)s)")
    add(
        "--idle-grace-period",
        type=_seconds,
        default=defaults.idle_grace_s,
        metavar="SECONDS",
        help="delete a Mountpoint Pod serving nobody after this long (default %(default)s)",
    )
    add(
        "--resync-period",
        type=_seconds,
        default=defaults.resync_s,
        metavar="SECONDS",
        help="a full reconcile pass at least this often (default %(default)s)",
    )
    add(
        "--watch-timeout",
        type=int,
        default=defaults.watch_timeout_s,
        metavar="SECONDS",
        help="each watch request is resumed after this long (default %(default)s)",
    )
    add("--lease-name", default=lease.name, help="default %(default)s")
    add("--lease-namespace", default=lease.namespace, help="default %(default)s")
    add(
        "--identity",
        default=None,
        help="this replica's name in the Lease (default: $POD_NAME, else the host name)",
    )
    add(
        "--lease-duration",
        type=_seconds,
        default=lease.lease_duration_s,
        metavar="SECONDS",
        help="default %(default)s",
    )
    add(
        "--lease-renew-deadline",
        type=_seconds,
        default=lease.renew_deadline_s,
        metavar="SECONDS",
        help="default %(default)s",
    )
    add(
        "--lease-retry-period",
        type=_seconds,
        default=lease.retry_period_s,
        metavar="SECONDS",
        help="default %(default)s",
    )
    add("--kube-api-url", default=None, help="default: in-cluster ($KUBERNETES_SERVICE_HOST)")
    add("--kube-token-file", default=None, help="default: the pod's service-account token")
    add("--kube-ca-file", default=None, help="default: the pod's service-account CA")
    add_metrics_argument(parser, CONTROLLER_PORT, health=True)
    add("--debug", action="store_true", help="log at DEBUG level")
    add("--log-format", choices=("text", "json"), default="text", help="log line format")


def settings_from(args: argparse.Namespace, env: dict[str, str]) -> ControllerSettings:
    kube = kube_api_settings(
        KubeApiFlags("auto", args.kube_api_url, args.kube_token_file, args.kube_ca_file),
        env,
        serves_node=True,
    )
    if kube is None:
        raise InvalidArgument("the controller needs the Kubernetes API: --kube-api-url outside a cluster")
    kube.check_files()
    return ControllerSettings(
        kube=kube,
        mountpoint_pods=MountpointPodSettings(
            image=args.image,
            namespace=args.mountpoint_namespace,
            image_pull_policy=args.image_pull_policy,
            priority_class_name=args.priority_class,
            resources=MountpointPodResources(
                cpu_request=args.mountpoint_cpu_request,
                memory_request=args.mountpoint_memory_request,
                memory_limit=args.mountpoint_memory_limit,
            ),
            metrics=args.mountpoint_pod_metrics,
        ),
        lease=LeaseSettings(
            name=args.lease_name,
            namespace=args.lease_namespace,
            identity=args.identity or env.get("POD_NAME") or socket.gethostname(),
            lease_duration_s=args.lease_duration,
            renew_deadline_s=args.lease_renew_deadline,
            retry_period_s=args.lease_retry_period,
        ),
        driver_name=args.driver_name,
        idle_grace_s=args.idle_grace_period,
        resync_s=args.resync_period,
        watch_timeout_s=args.watch_timeout,
    )


async def serve(
    settings: ControllerSettings,
    metrics: ControllerMetrics | None = None,
    address: MetricsAddress | None = None,
) -> None:
    """Compete for the Lease forever; lead with fresh caches each time it is won. ``metrics`` (by default a
    registry nobody reads) are served with ``/healthz`` at ``address`` (None: not served)."""
    metrics = ControllerMetrics() if metrics is None else metrics
    api = Api(settings.kube)
    current: list[Controller] = []  # the work of this replica while it leads
    try:
        elector = LeaderElector(api, settings.lease)
        metrics.leader.set_function(lambda: 1.0 if elector.leading() else 0.0)

        async def lead() -> None:
            work = Controller(settings, api, elector.leading, metrics=metrics)
            current.append(work)
            try:
                await work.run()
            finally:
                current.remove(work)

        health = controller_check(elector, lambda: current[-1] if current else None)
        async with metrics_endpoint(metrics.registry, address, health):
            await elector.run(lead)
    finally:
        await api.close()


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args, dict(os.environ))
    address = metrics_address(args.metrics_address)
    configure_logging(debug=args.debug, log_format=args.log_format)
    asyncio.run(serve(settings, ControllerMetrics(new_registry()), address))
    return 0
