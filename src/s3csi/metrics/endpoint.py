"""The HTTP endpoint of a process's metrics: ``GET /metrics`` (Prometheus text format) and, where the process
has a health check, ``GET /healthz`` (200 ``ok``, or 503 with the reason).

It listens on a TCP address (``HOST:PORT``, ``:PORT`` for every interface) or on a unix socket
(``unix:/path``): a Mountpoint Pod run as a process on the node offers its metrics on a socket in its
communication directory, so that no port is opened on the node for it."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest

from s3csi.errors import InvalidArgument

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
HEALTHZ_PATH = "/healthz"
UNIX_PREFIX = "unix:"

# None when healthy, else why not (the body of the 503 answer).
HealthCheck = Callable[[], Awaitable[str | None]]


@dataclass(frozen=True)
class MetricsAddress:
    """Where an endpoint listens: ``host`` and ``port``, or a unix socket ``path``."""

    host: str = ""
    port: int = 0
    path: str | None = None

    def __str__(self) -> str:
        return f"{UNIX_PREFIX}{self.path}" if self.path is not None else f"{self.host}:{self.port}"


def parse_address(text: str, flag: str) -> MetricsAddress:
    """``HOST:PORT``, ``:PORT`` (every interface) or ``unix:/absolute/path``; ``flag`` names the setting in
    the error."""
    if text.startswith(UNIX_PREFIX):
        path = text[len(UNIX_PREFIX) :]
        if not os.path.isabs(path):
            raise InvalidArgument(f"{flag}: a unix socket needs an absolute path, got {text!r}")
        return MetricsAddress(path=path)
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise InvalidArgument(f"{flag}: expected HOST:PORT, :PORT or unix:/path, got {text!r}")
    return MetricsAddress(host=host.strip("[]"), port=int(port))


def new_registry() -> CollectorRegistry:
    """A registry with the standard ``process_*`` metrics (memory, CPU, open descriptors) of this process."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    return registry


@contextlib.asynccontextmanager
async def serving(
    registry: CollectorRegistry, address: MetricsAddress, health: HealthCheck | None = None
) -> AsyncIterator[MetricsAddress]:
    """Serve ``registry`` at ``address`` until the block ends; yields the address bound (the port chosen
    when ``address.port`` is 0)."""

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        assert health is not None
        reason = await health()
        return web.Response(text="ok" if reason is None else reason, status=200 if reason is None else 503)

    app = web.Application()
    app.router.add_get(METRICS_PATH, metrics)
    if health is not None:
        app.router.add_get(HEALTHZ_PATH, healthz)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site: web.BaseSite
        if address.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(address.path)  # a socket left by a killed process of the same mount
            site = web.UnixSite(runner, address.path)
        else:
            site = web.TCPSite(runner, address.host or None, address.port)
        await site.start()
        bound = _bound(runner, address)
        log.info("metrics endpoint listening on %s", bound)
        yield bound
    finally:
        await runner.cleanup()
        if address.path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(address.path)


def _bound(runner: web.AppRunner, address: MetricsAddress) -> MetricsAddress:
    if address.path is not None:
        return address
    server = runner.addresses[0]
    return MetricsAddress(host=address.host, port=int(server[1]))
