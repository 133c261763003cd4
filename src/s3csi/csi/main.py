"""``s3csi driver``: the CSI plugin (DESIGN.md §3.1)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os

from s3csi.csi.settings import DEFAULT_DRIVER_NAME, DEFAULT_KUBELET_DIR, DriverSettings, Mode, socket_path
from s3csi.logs import configure_logging
from s3csi.s3 import S3Settings, default_credential_provider


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
        "--runtime", choices=["local", "kubernetes"], help="where Mountpoint Pods run (node mode)"
    )
    parser.add_argument("--state-dir", help="the node plugin's runtime state (with --runtime)")
    parser.add_argument("--log-format", choices=["text", "json"], default="text")
    parser.add_argument("--debug", action="store_true", help="log requests (secrets redacted) and tracebacks")


def build_settings(args: argparse.Namespace, env: os._Environ[str] | dict[str, str]) -> DriverSettings:
    s3 = S3Settings.from_env(env, region=args.s3_region, endpoint_url=args.s3_endpoint_url)
    # S3-compatible stores (MinIO, Ceph, Scality, the embedded server) are reached path-style; AWS
    # virtual-hosted. The endpoint's presence decides, so there is no flag to get wrong.
    s3 = dataclasses.replace(s3, force_path_style=s3.endpoint_url is not None)
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
    from s3csi.podmounter.node import NodeRuntimeFlags, publisher_settings, start_publisher

    settings = build_settings(args, os.environ)
    node = publisher_settings(
        NodeRuntimeFlags(runtime=args.runtime, state_dir=args.state_dir),
        serves_node=settings.mode.serves_node,
        node_id=settings.node_id,
        kubelet_dir=settings.kubelet_dir,
        s3=settings.s3,
    )
    configure_logging(debug=settings.debug, log_format=settings.log_format)
    credentials = default_credential_provider(os.environ)

    async def serve_with_publisher() -> None:
        publisher = None if node is None else await start_publisher(node, credentials)
        await serve(settings, credentials, publisher)

    asyncio.run(serve_with_publisher())
    return 0
