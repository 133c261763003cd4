"""``s3csi webhook``: the namespace-defaults admission webhook over HTTPS (docs/admission.md)."""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from s3csi.admission.server import WebhookSettings, serve
from s3csi.errors import InvalidArgument
from s3csi.kube.settings import KubeApiFlags, KubeApiMode, kube_api_settings
from s3csi.logs import configure_logging
from s3csi.metrics.flags import WEBHOOK_PORT, add_metrics_argument, metrics_address


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range 0-65535")
    return port


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = WebhookSettings(cert_file=Path(), key_file=Path())
    parser.add_argument("--cert", required=True, type=Path, metavar="FILE", help="PEM certificate (chain)")
    parser.add_argument("--key", required=True, type=Path, metavar="FILE", help="PEM private key")
    parser.add_argument("--host", default=defaults.host, help="address to listen on (default %(default)s)")
    parser.add_argument(
        "--port",
        type=_port,
        default=defaults.port,
        help="HTTPS port; 0 picks a free one (default %(default)s)",
    )
    parser.add_argument(
        "--cert-reload-interval",
        type=_seconds,
        default=defaults.cert_reload_interval,
        metavar="SECONDS",
        help="how often to check --cert/--key for a rotated certificate (default %(default)s)",
    )
    parser.add_argument(
        "--read-timeout",
        type=_seconds,
        default=defaults.read_timeout,
        metavar="SECONDS",
        help="close a connection whose TLS handshake, or any request (headers and body), takes longer "
        "(default %(default)s)",
    )
    parser.add_argument(
        "--mount-propagation",
        choices=("HostToContainer", "off"),
        default="HostToContainer",
        help="set mountPropagation on the volume mounts of the --driver-name's volumes that set none, at "
        "/mutate-pods/mount-propagation, so workloads receive the session remounted after a Mountpoint "
        "Pod crash (default %(default)s; off: the path answers 404)",
    )
    parser.add_argument(
        "--driver-name", default=defaults.driver_name, help="the CSIDriver's name (default %(default)s)"
    )
    parser.add_argument(
        "--kube-api",
        choices=[m.value for m in KubeApiMode],
        default=KubeApiMode.AUTO.value,
        help="look up the CSI driver of a pod's PersistentVolumeClaims in the Kubernetes API; auto "
        "(default): in-cluster config when KUBERNETES_SERVICE_HOST is set, else off (then only inline CSI "
        "volumes are recognised)",
    )
    parser.add_argument("--kube-api-url", help="API server https://HOST[:PORT] (default: in-cluster)")
    parser.add_argument("--kube-token-file", help="bearer token file (default: the pod's service account)")
    parser.add_argument(
        "--kube-ca-file", help="CA bundle of the API server (default: the pod's service account)"
    )
    add_metrics_argument(parser, WEBHOOK_PORT)
    parser.add_argument("--debug", action="store_true", help="log at DEBUG level")
    parser.add_argument("--log-format", choices=("text", "json"), default="text", help="log line format")


def run(args: argparse.Namespace) -> int:
    address = metrics_address(args.metrics_address)
    configure_logging(debug=args.debug, log_format=args.log_format)
    propagation = args.mount_propagation != "off"
    flags = KubeApiFlags(args.kube_api, args.kube_api_url, args.kube_token_file, args.kube_ca_file)
    given = [name for name, value in flags.named() if value is not None]
    if given and not propagation:
        raise InvalidArgument(f"{given[0]} applies to --mount-propagation HostToContainer only")
    kube = kube_api_settings(
        flags,
        os.environ,
        serves_node=propagation,
    )
    if kube is not None:
        kube.check_files()
    settings = WebhookSettings(
        cert_file=args.cert,
        key_file=args.key,
        host=args.host,
        port=args.port,
        cert_reload_interval=args.cert_reload_interval,
        read_timeout=args.read_timeout,
        mount_propagation=propagation,
        driver_name=args.driver_name,
        kube=kube,
        metrics_address=address,
    )
    asyncio.run(serve(settings))
    return 0
