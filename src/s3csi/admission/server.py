"""The HTTPS server of ``s3csi webhook``: routes, TLS with certificate reloading, graceful stop.

No decision lives here: a route maps a path to a pure function from AdmissionRequest to AdmissionResponse
(pods.py, namespaces.py), or for mount propagation to the lookup of the pod's claims and then one
(claims.py, propagation.py). This module only turns HTTP into those calls and never answers 500: the API
server would then apply the webhook's failurePolicy to every pod. Anyone who reaches the port can send
anything, so each request is bounded in size and in time before a decision sees it (docs/admission.md,
"Limits").
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import signal
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

from s3csi.admission.claims import decide_mount_propagation
from s3csi.admission.connections import ReadDeadlines
from s3csi.admission.labels import HEALTHZ_PATH, MUTATE_PATHS, VALIDATE_NAMESPACES_PATH
from s3csi.admission.namespaces import validate_namespace
from s3csi.admission.pods import default_pod
from s3csi.admission.review import (
    MAX_REVIEW_BYTES,
    AdmissionRequest,
    AdmissionResponse,
    allow,
    parse_review,
    review_of,
)
from s3csi.errors import FailedPrecondition, InvalidArgument
from s3csi.kube.api import Api
from s3csi.kube.settings import KubeApiSettings
from s3csi.metrics.endpoint import MetricsAddress, new_registry
from s3csi.metrics.flags import metrics_endpoint
from s3csi.metrics.webhook import ALLOWED, DENIED, ERROR, PATCHED, WebhookMetrics
from s3csi.tasks import background
from s3csi.volume.context import DEFAULT_DRIVER_NAME

log = logging.getLogger(__name__)
access_log = logging.getLogger("s3csi.admission.access")
# aiohttp's per-connection messages (its own default is the "aiohttp.server" logger).
http_log = logging.getLogger("s3csi.admission.http")

Decide = Callable[[AdmissionRequest], AdmissionResponse | Awaitable[AdmissionResponse]]
# Sets mountPropagation: HostToContainer on the volume mounts of this driver's volumes (docs/admission.md).
MOUNT_PROPAGATION_PATH = "/mutate-pods/mount-propagation"

# Header fields a request may have; the API server sends about ten. With aiohttp's limit of 8190 bytes for
# the request line and for each field, the headers of a request are at most about 270 KB.
MAX_HEADERS = 32
# Seconds an idle keep-alive connection stays open: longer than the 90 s after which Go's HTTP client (the
# API server's) closes its idle connections, so that the client, not the webhook, normally closes one and
# never sends a review on a connection the webhook is closing.
IDLE_TIMEOUT = 120.0
INTERNAL_ERROR_WARNING = "s3csi webhook internal error: request allowed unchanged"
# How much of a malformed request's description a log line shows (aiohttp quotes the offending bytes).
_SHOWN_ERROR_CHARS = 200


class AccessLogger(AbstractAccessLogger):
    """One line per request: client, method, path, status, bytes sent, seconds. Never a body or a header."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %d %d %.4fs',
            request.remote,
            request.method,
            request.path,
            response.status,
            response.body_length,
            time,
        )


class OneLineRequestErrors(logging.Filter):
    """A request aiohttp cannot parse (bad request line, too many or too long headers) becomes one warning
    line instead of an error with a traceback: any client can send such requests in a loop, and they say
    nothing about the webhook. The access log has a 400 line for each as well."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            problem = " ".join(str(error.message).split())[:_SHOWN_ERROR_CHARS]
            record.msg, record.args = "%s: %s", (record.getMessage(), problem)
            record.exc_info = record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        return True


http_log.addFilter(OneLineRequestErrors())


@dataclass(frozen=True)
class WebhookSettings:
    cert_file: Path
    """PEM certificate chain served to the API server."""
    key_file: Path
    """PEM private key of ``cert_file``."""
    host: str = "0.0.0.0"
    port: int = 8443
    """0 picks a free port (logged at start)."""
    cert_reload_interval: float = 10.0
    """Seconds between checks of the two files for a rotated certificate (cert-manager)."""
    shutdown_timeout: float = 10.0
    """Seconds in-flight reviews get to finish after SIGTERM; below the pod's 30 s grace period."""
    read_timeout: float = 10.0
    """Seconds the TLS handshake may take, and each request from its first byte to the end of its body;
    then the connection is closed. The API server itself gives up on a call after at most 30 s."""
    mount_propagation: bool = True
    """Serve MOUNT_PROPAGATION_PATH (``--mount-propagation HostToContainer``); off: the path is 404."""
    driver_name: str = DEFAULT_DRIVER_NAME
    """The CSIDriver whose volumes get HostToContainer propagation."""
    kube: KubeApiSettings | None = None
    """The API the claims are looked up in; None: only inline CSI volumes are recognised."""
    metrics_address: MetricsAddress | None = None
    """Where ``/metrics`` is served over plain HTTP, apart from the HTTPS port (None: not served)."""


def default_routes(settings: WebhookSettings | None = None, api: Api | None = None) -> dict[str, Decide]:
    """The namespace defaults; with ``settings`` asking for it, mount propagation (claims looked up in
    ``api``)."""
    routes: dict[str, Decide] = {
        path: functools.partial(default_pod, default=default, value=value)
        for path, (default, value) in MUTATE_PATHS.items()
    }
    routes[VALIDATE_NAMESPACES_PATH] = validate_namespace
    if settings is not None and settings.mount_propagation:
        routes[MOUNT_PROPAGATION_PATH] = functools.partial(
            decide_mount_propagation, driver=settings.driver_name, api=api
        )
    return routes


def make_app(
    routes: Mapping[str, Decide],
    read_deadlines: ReadDeadlines | None = None,
    metrics: WebhookMetrics | None = None,
) -> web.Application:
    """The routes; with ``read_deadlines``, each request's deadline stops once its body has been read. Each
    review is counted in ``metrics`` (by default a registry nobody reads)."""
    metrics = WebhookMetrics() if metrics is None else metrics
    # client_max_size makes aiohttp answer 413 before reading more than the API server could ever send.
    app = web.Application(client_max_size=MAX_REVIEW_BYTES)
    for path, decide in routes.items():
        review = functools.partial(_review, decide=decide, read_deadlines=read_deadlines, metrics=metrics)
        app.router.add_post(path, review)
    app.router.add_get(HEALTHZ_PATH, functools.partial(_healthz, read_deadlines=read_deadlines))
    return app


async def _read_whole_request(request: web.Request, read_deadlines: ReadDeadlines | None) -> bytes:
    """The body; every handler reads it first, so that its read deadline stops only once the body is in.

    A request no handler takes (404, 405) keeps its deadline: aiohttp answers, discards the rest of its body
    for a moment, and closes the connection.
    """
    if read_deadlines is not None:
        read_deadlines.reading(request.transport)
    try:
        if request.content_length is not None and request.content_length > MAX_REVIEW_BYTES:
            # Refused from the header, without waiting for a body that would be refused anyway.
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_REVIEW_BYTES, actual_size=request.content_length)
        body = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        # The rest of the body is not wanted: aiohttp discards what still comes for a moment (so that the
        # client sees the answer), then closes instead of waiting for the next request.
        exc.force_close()
        raise
    except ConnectionResetError:
        # The read deadline closed the connection (or the client left): nothing can be sent any more, the
        # 408 is for the access log.
        raise web.HTTPRequestTimeout() from None
    if read_deadlines is not None:
        read_deadlines.read(request.transport)
    return body


async def _healthz(request: web.Request, *, read_deadlines: ReadDeadlines | None) -> web.Response:
    await _read_whole_request(request, read_deadlines)
    return web.Response(text="ok\n")


def review_result(response: AdmissionResponse) -> str:
    """The ``result`` label of an answered review."""
    if not response["allowed"]:
        return DENIED
    return PATCHED if "patch" in response else ALLOWED


async def _review(
    request: web.Request, *, decide: Decide, read_deadlines: ReadDeadlines | None, metrics: WebhookMetrics
) -> web.Response:
    started = time.perf_counter()
    result = ERROR
    try:
        response = await _decided(request, decide, read_deadlines)
        result = ERROR if INTERNAL_ERROR_WARNING in response.get("warnings", []) else review_result(response)
        return web.json_response(review_of(response))
    finally:
        # Route paths only (a request for another path never gets here): a bounded label.
        metrics.observe(request.path, result, time.perf_counter() - started)


async def _decided(
    request: web.Request, decide: Decide, read_deadlines: ReadDeadlines | None
) -> AdmissionResponse:
    body = await _read_whole_request(request, read_deadlines)
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(
            text=f"Content-Type must be application/json, not {request.content_type!r}\n"
        )
    try:
        admission_request = parse_review(body)
    except InvalidArgument as exc:
        raise web.HTTPBadRequest(text=f"{exc}\n") from exc
    try:
        decided = decide(admission_request)
        response = await decided if inspect.isawaitable(decided) else decided
    except Exception:
        # A bug must not block pods: fail open with a warning the user sees, and the traceback logged.
        log.exception("deciding %s %s failed", request.path, admission_request["uid"])
        response = allow(admission_request, warnings=[INTERNAL_ERROR_WARNING])
    return response


def load_tls_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for what, path in (("certificate", cert_file), ("key", key_file)):
        if not path.is_file():
            raise InvalidArgument(f"{what} file {path} does not exist or is not a file")
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidArgument(f"cannot load certificate {cert_file} with key {key_file}: {exc}") from exc
    return context


def _identity(path: Path) -> tuple[int, int, int, int]:
    # stat() follows symlinks: a Secret volume swaps its ..data symlink, which changes the inode.
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size


class CertificateReloader:
    """Serves the certificate files' current pair, loading them again when either file changes.

    The listening socket's context hands each new TLS connection the most recent context that loaded
    (through the SNI callback, which OpenSSL calls whether or not the client sent a server name); open
    connections keep theirs. A new pair is loaded into a fresh context, so a half-rotated pair (the new
    certificate without its key yet) never disturbs the one in service: the next check retries.
    """

    def __init__(self, cert_file: Path, key_file: Path) -> None:
        self._files = (cert_file, key_file)
        self._loaded = self._identities()
        self._current = load_tls_context(cert_file, key_file)
        self.listener_context = load_tls_context(cert_file, key_file)
        self.listener_context.sni_callback = self._select

    def _select(self, connection: ssl.SSLObject, _server_name: str | None, _: ssl.SSLContext) -> None:
        connection.context = self._current

    def _identities(self) -> tuple[tuple[int, int, int, int], ...] | None:
        try:
            return tuple(_identity(path) for path in self._files)
        except OSError:
            return None

    def reload_if_changed(self) -> bool:
        current = self._identities()
        if current is None or current == self._loaded:
            return False
        try:
            self._current = load_tls_context(*self._files)
        except InvalidArgument as exc:
            log.warning("certificate changed but does not load yet, serving the previous one: %s", exc)
            return False
        self._loaded = current
        log.info("reloaded certificate %s", self._files[0])
        return True

    async def watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.reload_if_changed()


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, reuse_port=False)
    except OSError as exc:
        raise FailedPrecondition(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


async def serve(settings: WebhookSettings) -> None:
    """Serve until SIGTERM or SIGINT, then let in-flight reviews finish and return."""
    reloader = CertificateReloader(settings.cert_file, settings.key_file)
    sock = _listen(settings.host, settings.port)
    read_deadlines = ReadDeadlines(settings.read_timeout)
    api = Api(settings.kube) if settings.kube is not None and settings.mount_propagation else None
    metrics = WebhookMetrics(new_registry())
    runner = web.AppRunner(
        make_app(default_routes(settings, api), read_deadlines, metrics),
        access_log=access_log,
        access_log_class=AccessLogger,
        handle_signals=False,
        shutdown_timeout=settings.shutdown_timeout,
        keepalive_timeout=IDLE_TIMEOUT,
        max_headers=MAX_HEADERS,
        logger=http_log,
    )
    await runner.setup()
    assert runner.server is not None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    watcher = background(reloader.watch(settings.cert_reload_interval), name="certificate-reloader")
    listener: asyncio.Server | None = None
    try:
        async with metrics_endpoint(metrics.registry, settings.metrics_address):
            # Not web.SockSite: the protocol of each connection is wrapped with its read deadline, and the
            # TLS handshake gets the same bound. runner.cleanup() still finishes the connections gracefully.
            listener = await loop.create_server(
                read_deadlines.wrap(runner.server),
                sock=sock,
                ssl=reloader.listener_context,
                ssl_handshake_timeout=settings.read_timeout,
            )
            host, port = sock.getsockname()[:2]
            log.info("s3csi webhook listening on https://%s:%d", host, port)
            await stop.wait()
            log.info("stopping: letting in-flight reviews finish (at most %ss)", settings.shutdown_timeout)
    finally:
        watcher.cancel()
        if listener is not None:
            listener.close()
        else:
            sock.close()
        await runner.cleanup()
        if api is not None:
            await api.close()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
