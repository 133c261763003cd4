"""The ``--metrics-address`` flag the node plugin, the controller and the webhook share, and the endpoint it
starts (docs/observability.md).

Its default is the process's port on every interface (``:9810`` node plugin, ``:9811`` controller, ``:9812``
webhook); ``HOST:PORT`` or ``unix:/path`` choose another place, and an empty value serves no endpoint (the
metrics are then still kept, and nobody reads them)."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

from prometheus_client import CollectorRegistry

from s3csi.errors import FailedPrecondition
from s3csi.metrics.endpoint import HealthCheck, MetricsAddress, parse_address, serving

FLAG = "--metrics-address"
NODE_PORT = 9810
CONTROLLER_PORT = 9811
WEBHOOK_PORT = 9812


def add_metrics_argument(parser: argparse.ArgumentParser, port: int, health: bool = False) -> None:
    served = "/metrics and /healthz" if health else "/metrics"
    parser.add_argument(
        FLAG,
        default=f":{port}",
        metavar="ADDRESS",
        help=f"serve {served} over plain HTTP at HOST:PORT, :PORT (every interface) or unix:/PATH "
        "(default %(default)s; an empty value serves no endpoint)",
    )


def metrics_address(text: str) -> MetricsAddress | None:
    """The parsed flag; None when it is empty (no endpoint). InvalidArgument names the flag."""
    return None if text == "" else parse_address(text, FLAG)


@contextlib.asynccontextmanager
async def metrics_endpoint(
    registry: CollectorRegistry, address: MetricsAddress | None, health: HealthCheck | None = None
) -> AsyncIterator[MetricsAddress | None]:
    """Serve ``registry`` at ``address`` (nothing when None) for the block; a port that cannot be bound
    fails the start with the flag named."""
    if address is None:
        yield None
        return
    async with contextlib.AsyncExitStack() as stack:
        try:
            bound = await stack.enter_async_context(serving(registry, address, health))
        except OSError as exc:
            raise FailedPrecondition(f"{FLAG} {address}: cannot listen: {exc.strerror or exc}") from exc
        yield bound
