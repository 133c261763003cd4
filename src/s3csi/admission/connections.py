"""A deadline for reading each request on a webhook connection, which aiohttp does not have.

aiohttp bounds the size of a request (``client_max_size``, its header limits) and closes a connection idle
between requests (``keepalive_timeout``), but once a request has started it waits for the rest for as long
as the client likes: a client that sends one byte a second, or headers and then no body, holds the
connection and its memory indefinitely. Here every request must arrive whole, headers and body, within
``timeout`` seconds of its first byte (the first request of a connection: of the end of the TLS
handshake), or the connection is closed. Other connections are not affected: each has its own timer.

The timer is armed by the first bytes received while none runs, and stopped by :meth:`ReadDeadlines.read`,
which the server calls once a request's body has been read; the next bytes then start the next request's.
A pipelined request whose bytes came before the previous one was read has none running when its handler
starts: :meth:`ReadDeadlines.reading` arms one then. (A pipelined request that stops within its headers
waits like an idle connection, closed by aiohttp's keep-alive timeout.)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)


class ReadDeadlines:
    """The read deadlines of one listening socket's connections."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._connections: dict[asyncio.BaseTransport, _Connection] = {}

    def wrap(self, protocol_factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """The listening socket's protocol factory: ``protocol_factory``'s protocols, each with a deadline."""
        return lambda: _Connection(protocol_factory(), self.timeout, self._connections)

    def reading(self, transport: asyncio.BaseTransport | None) -> None:
        """A request's body is about to be read on ``transport``: make sure its deadline runs."""
        connection = self._connections.get(transport) if transport is not None else None
        if connection is not None and not connection.running:
            connection.start()

    def read(self, transport: asyncio.BaseTransport | None) -> None:
        """The request in progress on ``transport`` has been read whole: stop its deadline."""
        connection = self._connections.get(transport) if transport is not None else None
        if connection is not None:
            connection.stop()


class _Connection(asyncio.Protocol):
    """Passes every event on to aiohttp's protocol; closes the transport when a request is late."""

    def __init__(
        self,
        inner: asyncio.Protocol,
        timeout: float,
        connections: dict[asyncio.BaseTransport, _Connection],
    ) -> None:
        self._inner = inner
        self._timeout = timeout
        self._connections = connections
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._connections[transport] = self
        self.start()
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._timer is None:
            self.start()
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop()
        if self._transport is not None:
            self._connections.pop(self._transport, None)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    @property
    def running(self) -> bool:
        return self._timer is not None

    def start(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(self._timeout, self._expired)

    def _expired(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        peer = transport.get_extra_info("peername")
        client = peer[0] if isinstance(peer, tuple) else "unknown client"
        log.warning(
            "closing the connection from %s: a request did not arrive whole within %ss",
            client,
            self._timeout,
        )
        # abort, not close: close would wait for the client to acknowledge the TLS close_notify.
        transport.abort()
