"""``s3csi webhook``: the namespace-defaults admission webhook over HTTPS (docs/admission.md)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from s3csi.admission.server import WebhookSettings, serve
from s3csi.logs import configure_logging


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
    parser.add_argument("--debug", action="store_true", help="log at DEBUG level")
    parser.add_argument("--log-format", choices=("text", "json"), default="text", help="log line format")


def run(args: argparse.Namespace) -> int:
    configure_logging(debug=args.debug, log_format=args.log_format)
    settings = WebhookSettings(
        cert_file=args.cert,
        key_file=args.key,
        host=args.host,
        port=args.port,
        cert_reload_interval=args.cert_reload_interval,
        read_timeout=args.read_timeout,
    )
    asyncio.run(serve(settings))
    return 0
