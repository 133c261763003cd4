"""GetObject's transport: HTTP/1.1 GETs whose response body is received straight into one buffer.

aiohttp, which carries every other call (``client.py``), hands a body over as the chunks its parser
copied out of each socket read, then joins them: two copies in user space of every byte the file
system reads, and a fresh allocation for each. Here a body framed by Content-Length goes from the
socket into the buffer the file system then answers FUSE reads from (``recv_into``, through
:class:`asyncio.BufferedProtocol`), and that buffer is not zero-filled first: no pass in user space
over the bytes at all. docs/performance.md has the measurements.

Only what a GET to S3 needs: keep-alive connections pooled per endpoint, TLS, bodies framed by
Content-Length, chunked or the end of the connection. No request body, no redirects, no proxies
(aiohttp is not told to use any either), and no compression: no Accept-Encoding is sent, so the
bytes received are the object's.
"""

from __future__ import annotations

import asyncio
import ctypes
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

from multidict import CIMultiDict, CIMultiDictProxy

# A response head longer than this is not S3's.
MAX_HEAD_BYTES = 64 * 1024
# What one read takes while the head, a chunked body or a body delimited by the connection's end
# arrives (a body framed by Content-Length is read into its own buffer instead).
READ_BYTES = 64 * 1024
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_TOKEN_SEPARATOR = re.compile(r"\s*,\s*")

_new_bytearray = ctypes.pythonapi.PyByteArray_FromStringAndSize
_new_bytearray.restype = ctypes.py_object
_new_bytearray.argtypes = (ctypes.c_char_p, ctypes.c_ssize_t)


def uninitialized_buffer(size: int) -> bytearray:
    """A ``bytearray`` of ``size`` bytes whose content is whatever the allocator held: the C API's
    ``PyByteArray_FromStringAndSize(NULL, size)``. Only for a buffer that is filled completely before
    anyone reads it (a body is handed over only once all of its bytes have arrived)."""
    return cast(bytearray, _new_bytearray(None, size))


class HttpError(Exception):
    """The exchange failed below HTTP; the message says how, never with a header's value."""


class ConnectFailed(HttpError):
    """No connection could be made: the request was not sent."""


class TLSFailed(ConnectFailed):
    """The TLS handshake failed (an untrusted certificate, a wrong host name)."""


class ConnectionLost(HttpError):
    """The connection broke, or the server answered with something that is not HTTP/1.1, before the
    whole response had arrived."""


@dataclass(frozen=True)
class ResponseHead:
    status: int
    headers: CIMultiDictProxy[str]
    # Whether the server keeps the connection open after this response.
    keep_alive: bool


@dataclass(frozen=True)
class Response:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytearray
    # time.perf_counter() when the response head had arrived: the first-byte latency of metrics.
    head_at: float = 0.0


def parse_head(data: bytes) -> ResponseHead:
    """A status line and header fields, without the blank line that ends them (RFC 9112 §4, §5)."""
    lines = data.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    status_text = rest.partition(" ")[0]
    if version not in ("HTTP/1.1", "HTTP/1.0") or not (status_text.isdigit() and len(status_text) == 3):
        raise ConnectionLost(f"not an HTTP/1.1 status line: {lines[0][:40]!r}")
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise ConnectionLost(f"malformed header field {name[:40]!r}")
        headers.add(name, value.strip(" \t"))
    tokens = {t.lower() for value in headers.getall("Connection", []) for t in _TOKEN_SEPARATOR.split(value)}
    keep_alive = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
    return ResponseHead(int(status_text), CIMultiDictProxy(headers), keep_alive)


@dataclass(frozen=True)
class Framing:
    """How a response's body ends (RFC 9112 §6.3): after ``length`` bytes, with the last chunk, or when
    the server closes the connection (``length`` None and not ``chunked``)."""

    length: int | None
    chunked: bool = False

    @property
    def until_close(self) -> bool:
        return self.length is None and not self.chunked


def framing(head: ResponseHead) -> Framing:
    """The body's framing of a response to a GET."""
    if head.status in (204, 304):
        return Framing(0)
    codings = head.headers.getall("Transfer-Encoding", [])
    if codings:
        last = _TOKEN_SEPARATOR.split(codings[-1].strip())[-1].lower()
        return Framing(None, chunked=True) if last == "chunked" else Framing(None)
    lengths = {
        value.strip() for field in head.headers.getall("Content-Length", []) for value in field.split(",")
    }
    if not lengths:
        return Framing(None)
    if len(lengths) > 1 or not all(value.isdigit() for value in lengths):
        raise ConnectionLost(f"bad Content-Length {', '.join(sorted(lengths))[:40]!r}")
    return Framing(int(lengths.pop()))


class ChunkedDecoder:
    """Decodes a chunked body (RFC 9112 §7.1) fed in pieces; extensions and trailers are dropped."""

    def __init__(self) -> None:
        self.body = bytearray()
        self._pending = bytearray()
        # Bytes of the current chunk's data still to come; -1 while a size line is expected.
        self._remaining = -1
        self._in_trailer = False

    def feed(self, data: bytes | bytearray | memoryview) -> bool:
        """Take more of the body; True once the last chunk and the trailer section have arrived."""
        self._pending += data
        while True:
            if self._remaining > 0:
                take = min(self._remaining, len(self._pending))
                if take == 0:
                    return False
                self.body += memoryview(self._pending)[:take]
                del self._pending[:take]
                self._remaining -= take
                if self._remaining:
                    return False
                continue
            line = self._line()
            if line is None:
                return False
            if self._remaining == 0:  # the CRLF after a chunk's data
                if line:
                    raise ConnectionLost("chunk data longer than its size")
                self._remaining = -1
            elif self._in_trailer:
                if not line:
                    return True
            else:
                size = line.split(b";", 1)[0].strip()
                if not _CHUNK_SIZE.fullmatch(size):
                    raise ConnectionLost(f"bad chunk size {bytes(size[:20])!r}")
                self._remaining = int(size, 16)
                self._in_trailer = self._remaining == 0
                if self._in_trailer:
                    self._remaining = -1

    @property
    def overrun(self) -> bool:
        """Whether bytes came after the end of the body (the connection's state is then unknown)."""
        return bool(self._pending)

    def _line(self) -> bytes | None:
        end = self._pending.find(b"\r\n")
        if end < 0:
            if len(self._pending) > MAX_HEAD_BYTES:
                raise ConnectionLost("a chunk size or trailer line without an end")
            return None
        line = bytes(self._pending[:end])
        del self._pending[: end + 2]
        return line


class _Connection(asyncio.BufferedProtocol):
    """One connection; one exchange at a time. Its states: idle, reading a head, reading a body."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        # Whether this exchange has received any byte yet (a reused connection that the server closed
        # while idle fails with none: the request can safely go again on a fresh connection).
        self.received = False
        # Always handed out as a memoryview: asyncio's TLS transport fills ``buffer[offset:]``, which
        # for a bytearray would be a copy (Python 3.11's sslproto), losing all but the first record.
        self._scratch = memoryview(bytearray(READ_BYTES))
        self._pending = bytearray()
        self._head: ResponseHead | None = None
        self._framing = Framing(None)
        self._body = bytearray()
        self._filled = 0
        self._chunks: ChunkedDecoder | None = None
        self._result: asyncio.Future[Response] | None = None
        self._head_at = 0.0

    # ---- the exchange ----------------------------------------------------------------------------

    async def exchange(self, request: bytes) -> Response:
        assert self.transport is not None and self._result is None
        self._result = asyncio.get_running_loop().create_future()
        self.received = False
        self._head = None
        self.transport.write(request)
        try:
            return await self._result
        finally:
            self._result = None

    @property
    def reusable(self) -> bool:
        return not self.closed and self._head is not None and self._head.keep_alive

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # ---- asyncio.BufferedProtocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._head is not None and self._framing.length is not None:
            return memoryview(self._body)[self._filled :]
        return self._scratch

    def buffer_updated(self, nbytes: int) -> None:
        if self._result is None or self._result.done():
            # Bytes nobody asked for: the connection's state is unknown, so it is not used again.
            self.close()
            return
        self.received = True
        try:
            if self._head is not None and self._framing.length is not None:
                self._filled += nbytes
            else:
                self._take(self._scratch[:nbytes])
            self._finish_if_complete()
        except ConnectionLost as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        return False  # the transport closes; connection_lost settles the exchange

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._result is None or self._result.done():
            return
        if exc is None and self._head is not None and self._framing.until_close:
            self._complete(self._body)
            return
        reason = f": {exc}" if exc is not None else ""
        where = "the response body" if self._head is not None else "the response"
        self._fail(ConnectionLost(f"the connection closed during {where}{reason}"))

    # ---- parsing ---------------------------------------------------------------------------------

    def _take(self, data: memoryview) -> None:
        if self._head is None:
            self._pending += data
            self._read_head()
        elif self._chunks is not None:
            if self._chunks.feed(data):
                if self._chunks.overrun:
                    self.close()
                self._complete(self._chunks.body)
        else:
            self._body += data

    def _read_head(self) -> None:
        while self._head is None:
            end = self._pending.find(b"\r\n\r\n")
            if end < 0:
                if len(self._pending) > MAX_HEAD_BYTES:
                    raise ConnectionLost(f"a response head longer than {MAX_HEAD_BYTES} bytes")
                return
            head = parse_head(bytes(self._pending[:end]))
            rest = memoryview(self._pending)[end + 4 :]
            self._pending = bytearray(rest)
            rest.release()
            if 100 <= head.status < 200:
                continue  # an interim response (100 Continue): the real one follows
            self._start_body(head)
        leftover, self._pending = self._pending, bytearray()
        if leftover:
            self._take(memoryview(leftover))

    def _start_body(self, head: ResponseHead) -> None:
        self._head = head
        self._head_at = time.perf_counter()
        self._framing = framing(head)
        self._chunks = ChunkedDecoder() if self._framing.chunked else None
        self._filled = 0
        length = self._framing.length
        self._body = bytearray() if length is None else uninitialized_buffer(length)
        if length is not None and self._pending:
            # What arrived with the head: the body's first bytes.
            take = min(len(self._pending), length)
            self._body[:take] = memoryview(self._pending)[:take]
            self._filled = take
            if len(self._pending) > take:
                self.close()  # more than the response: the connection's state is unknown
            self._pending = bytearray()

    def _finish_if_complete(self) -> None:
        length = self._framing.length
        if self._head is not None and length is not None and self._filled >= length:
            self._complete(self._body)

    def _complete(self, body: bytearray) -> None:
        assert self._head is not None and self._result is not None
        if not self._result.done():
            self._result.set_result(Response(self._head.status, self._head.headers, body, self._head_at))
        self._body = bytearray()
        self._chunks = None
        self._framing = Framing(None)

    def _fail(self, exc: HttpError) -> None:
        if self._result is not None and not self._result.done():
            self._result.set_exception(exc)
        self.close()


def host_header(scheme: str, host: str, port: int | None) -> str:
    """The Host field, as botocore's SigV4 signer derives (and signs) it: the port only when it is not
    the scheme's default, an IPv6 address in brackets."""
    name = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    return name if port is None or port == default else f"{name}:{port}"


class ConnectionPool:
    """Keep-alive connections to one endpoint (scheme, host, port), at most ``limit`` at once; a GET
    waits for a free one. Made inside the running event loop; :meth:`close` ends the idle ones."""

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int | None,
        *,
        ssl_context: ssl.SSLContext | None,
        connect_timeout_s: float,
        limit: int,
    ) -> None:
        if (scheme == "https") != (ssl_context is not None):
            raise ValueError("an https endpoint needs an SSL context, an http one none")
        self._host = host
        self._port = port if port is not None else (443 if scheme == "https" else 80)
        self._ssl = ssl_context
        self._connect_timeout_s = connect_timeout_s
        self._host_header = host_header(scheme, host, port)
        self._slots = asyncio.Semaphore(limit)
        self._idle: list[_Connection] = []

    async def get(self, target: str, headers: Mapping[str, str]) -> Response:
        """GET ``target`` (an encoded path and query) with ``headers`` (Host is added)."""
        request = self._request(target, headers)
        async with self._slots:
            connection = self._take_idle()
            reused = connection is not None
            if connection is None:
                connection = await self._connect()
            try:
                try:
                    response = await connection.exchange(request)
                except ConnectionLost:
                    if not reused or connection.received:
                        raise
                    # The server closed the idle connection as the request went out: nothing was
                    # answered, so the request goes again, once, on a new connection.
                    connection.close()
                    connection = await self._connect()
                    response = await connection.exchange(request)
            except BaseException:
                connection.close()  # cancelled or failed mid-exchange: its state is unknown
                raise
            if connection.reusable:
                self._idle.append(connection)
            else:
                connection.close()
            return response

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _request(self, target: str, headers: Mapping[str, str]) -> bytes:
        lines = [f"GET {target} HTTP/1.1", f"Host: {self._host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items() if name.lower() != "host"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _take_idle(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        where = f"{self._host}:{self._port}"
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                _, protocol = await loop.create_connection(
                    _Connection,
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                )
        except ssl.SSLError as exc:
            raise TLSFailed(f"TLS handshake with {where} failed: {exc.reason or exc}") from exc
        except TimeoutError as exc:
            raise ConnectFailed(f"no connection to {where} within {self._connect_timeout_s:g} s") from exc
        except OSError as exc:
            raise ConnectFailed(f"cannot connect to {where}: {exc.strerror or exc}") from exc
        return protocol
