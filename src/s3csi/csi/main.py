"""``s3csi driver``: the CSI plugin (docs/csi.md)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os

from s3csi.credentials.driver import driver_credential_provider
from s3csi.csi.settings import (
    DEFAULT_DRIVER_NAME,
    DEFAULT_KUBELET_DIR,
    DriverSettings,
    Mode,
    driver_s3_settings,
    socket_path,
)
from s3csi.kube.settings import KubeApiFlags, KubeApiMode, kube_api_settings
from s3csi.logs import configure_logging
from s3csi.metrics.endpoint import HealthCheck, new_registry
from s3csi.metrics.flags import NODE_PORT, add_metrics_argument, metrics_address, metrics_endpoint
from s3csi.metrics.node import NodeMetrics
from s3csi.s3.imds import metadata_endpoint
from s3csi.s3.sts import sts_endpoint_override
from s3csi.volume.context import FS_USER_ANNOTATION, ROLE_ARN_ANNOTATION

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint", required=True, help="gRPC endpoint, unix:///PATH (e.g. unix:///csi/csi.sock)"
    )
    parser.add_argument(
        "--node-id", required=True, help="this node's id for NodeGetInfo (the Kubernetes node name)"
    )
    parser.add_argument(
        "--mode",
        choices=[m.value for m in Mode],
        default=Mode.ALL.value,
        help="CSI services to serve (default all)",
    )
    parser.add_argument("--driver-name", default=DEFAULT_DRIVER_NAME, help=f"default {DEFAULT_DRIVER_NAME}")
    parser.add_argument(
        "--s3-endpoint-url", help="S3-compatible endpoint (default: AWS_ENDPOINT_URL, else AWS)"
    )
    parser.add_argument("--s3-region", help="S3 region (default: AWS_REGION, else us-east-1)")
    parser.add_argument(
        "--kubelet-dir",
        default=DEFAULT_KUBELET_DIR,
        help=f"target paths must be below it (default {DEFAULT_KUBELET_DIR})",
    )
    parser.add_argument(
        "--runtime",
        choices=["local", "kubernetes"],
        help="where Mountpoint Pods run (node mode): local (default) starts them as processes here; "
        "kubernetes waits for the Pods s3csi controller creates (needs the Kubernetes API)",
    )
    parser.add_argument(
        "--mountpoint-namespace",
        help="namespace of the Mountpoint Pods (--runtime kubernetes; default s3csi-mounters)",
    )
    parser.add_argument(
        "--mountpoint-pod-timeout",
        type=float,
        metavar="SECONDS",
        help="how long NodePublishVolume waits for its Mountpoint Pod (--runtime kubernetes; default 90, "
        "under kubelet's 2-minute timeout)",
    )
    parser.add_argument(
        "--state-dir", help="the node plugin's runtime state (node mode; default /var/lib/s3csi)"
    )
    parser.add_argument(
        "--mounter-crash-loop-window",
        type=float,
        metavar="SECONDS",
        help="a mounter that dies within SECONDS of its FUSE session being remounted is in a crash loop: "
        "further remounts back off, 1 s doubling to 60 s (node mode; default 10; 0: every crash is "
        "remounted at once)",
    )
    parser.add_argument(
        "--mountpoint-pod-metrics",
        action="store_true",
        help="each mounter serves its Prometheus metrics on metrics.sock in its comm dir (--runtime local; "
        "with kubernetes, s3csi controller's --mountpoint-pod-metrics gives Mountpoint Pods a metrics port)",
    )
    parser.add_argument(
        "--sts-audience",
        help="audience of the service-account token exchanged with STS for authenticationSource pod "
        "(node mode; default sts.amazonaws.com; must match the CSIDriver's tokenRequests)",
    )
    parser.add_argument(
        "--kube-api",
        choices=[m.value for m in KubeApiMode],
        default=KubeApiMode.AUTO.value,
        help=f"read the pod's {FS_USER_ANNOTATION} and its service account's {ROLE_ARN_ANNOTATION} "
        "annotations from the Kubernetes API (node mode); auto (default): in-cluster config when "
        "KUBERNETES_SERVICE_HOST is set, else off",
    )
    parser.add_argument("--kube-api-url", help="API server https://HOST[:PORT] (default: in-cluster)")
    parser.add_argument(
        "--kube-token-file", help="bearer token file, re-read on change (default: the pod's service account)"
    )
    parser.add_argument(
        "--kube-ca-file", help="CA bundle of the API server (default: the pod's service account)"
    )
    add_metrics_argument(parser, NODE_PORT)
    parser.add_argument("--log-format", choices=["text", "json"], default="text")
    parser.add_argument("--debug", action="store_true", help="log requests (secrets redacted) and tracebacks")


def build_settings(args: argparse.Namespace, env: os._Environ[str] | dict[str, str]) -> DriverSettings:
    s3 = driver_s3_settings(env, region=args.s3_region, endpoint_url=args.s3_endpoint_url)
    return DriverSettings(
        socket_path=socket_path(args.endpoint),
        node_id=args.node_id,
        mode=Mode(args.mode),
        driver_name=args.driver_name,
        kubelet_dir=args.kubelet_dir,
        s3=s3,
        log_format=args.log_format,
        debug=args.debug,
    )


def run(args: argparse.Namespace) -> int:
    from s3csi.csi.server import serve  # grpc and the stubs load only for this command
    from s3csi.kube.client import KubeClient
    from s3csi.podmounter.health import publisher_check
    from s3csi.podmounter.startup import (
        NodeRuntimeFlags,
        kubernetes_runtime_settings,
        publisher_settings,
        start_publisher,
        stop_publisher,
    )

    settings = build_settings(args, os.environ)
    address = metrics_address(args.metrics_address)
    runtime_flags = NodeRuntimeFlags(
        runtime=args.runtime,
        state_dir=args.state_dir,
        sts_audience=args.sts_audience,
        mountpoint_namespace=args.mountpoint_namespace,
        mountpoint_pod_timeout=args.mountpoint_pod_timeout,
        mounter_crash_loop_window=args.mounter_crash_loop_window,
        mountpoint_pod_metrics=args.mountpoint_pod_metrics,
    )
    node = publisher_settings(
        runtime_flags,
        serves_node=settings.mode.serves_node,
        node_id=settings.node_id,
        kubelet_dir=settings.kubelet_dir,
        s3=settings.s3,
        sts_endpoint_url=sts_endpoint_override(os.environ),
        region_configured=not settings.s3.detect_region,
        metadata_endpoint=metadata_endpoint(os.environ),
    )
    kube_settings = kube_api_settings(
        KubeApiFlags(
            mode=args.kube_api,
            url=args.kube_api_url,
            token_file=args.kube_token_file,
            ca_file=args.kube_ca_file,
        ),
        os.environ,
        serves_node=settings.mode.serves_node,
    )
    if kube_settings is not None:
        kube_settings.check_files()
    kubernetes = kubernetes_runtime_settings(runtime_flags, node, kube_settings)
    kube = None if kube_settings is None else KubeClient(kube_settings)
    configure_logging(debug=settings.debug, log_format=settings.log_format)
    if kube_settings is not None:
        log.info("pod and service-account annotations from the Kubernetes API at %s", kube_settings.base_url)
    elif settings.mode.serves_node:
        log.info("no Kubernetes API (--kube-api): pod and service-account annotations have no effect")
    # The environment, the shared files, web identity, then instance metadata (docs/credentials.md).
    credentials = driver_credential_provider(os.environ)
    metrics = NodeMetrics(new_registry())

    async def serve_with_publisher() -> None:
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(metrics_endpoint(metrics.registry, address))
            publisher = (
                None
                if node is None
                else await start_publisher(node, credentials, kubernetes, kube_settings, metrics)
            )
            checks: list[HealthCheck] = [] if publisher is None else [publisher_check(publisher)]
            # The runtime records a failed publish on its workload pod (Kubernetes; local: no API to).
            events = publisher.runtime if publisher is not None else None
            try:
                await serve(
                    settings, credentials, publisher, kube=kube, events=events, metrics=metrics, checks=checks
                )
            finally:
                if publisher is not None:
                    await stop_publisher(publisher)
                if kube is not None:
                    await kube.close()

    asyncio.run(serve_with_publisher())
    return 0
