"""A counting HTTP proxy for 127.0.0.1: forwards bytes unchanged and records each request it sees.

It stands between a mounter and the S3 server so the benchmark can say how many S3 requests an `ls -l` made.
Only the client-to-server direction is parsed (request line, headers, body framing); answers pass through.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import Future

from bench.servers import free_port

_READ_SIZE = 256 * 1024


class RequestCounter:
    """Splits one connection's client-to-server HTTP/1.1 byte stream into requests ("METHOD target")."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self._buffer = bytearray()
        self._body_left = 0  # bytes of a Content-Length body (or of a chunk plus its CRLF) still to skip
        self._state = "head"  # head | body | chunk-size | chunk-data | trailer

    def feed(self, data: bytes) -> None:
        self._buffer += data
        while self._step():
            pass

    def _step(self) -> bool:
        """Consumes one piece of the buffer; False when it needs more bytes."""
        if not self._buffer:
            return False
        if self._state in ("body", "chunk-data"):
            taken = min(self._body_left, len(self._buffer))
            del self._buffer[:taken]
            self._body_left -= taken
            if self._body_left == 0:
                self._state = "head" if self._state == "body" else "chunk-size"
            return True
        separator = b"\r\n\r\n" if self._state == "head" else b"\r\n"
        end = self._buffer.find(separator)
        if end < 0:
            return False
        piece = bytes(self._buffer[:end])
        del self._buffer[: end + len(separator)]
        if self._state == "head":
            self._start_request(piece.decode("latin-1"))
        elif self._state == "chunk-size":
            size = int(piece.split(b";")[0].strip() or b"0", 16)
            self._state, self._body_left = ("trailer", 0) if size == 0 else ("chunk-data", size + 2)
        elif not piece:  # the empty line that ends the trailer
            self._state = "head"
        return True

    def _start_request(self, head: str) -> None:
        lines = head.split("\r\n")
        method, _, rest = lines[0].partition(" ")
        target = rest.partition(" ")[0]
        self.requests.append(f"{method} {target}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._state = "chunk-size"
        elif int(headers.get("content-length", "0") or "0") > 0:
            self._state, self._body_left = "body", int(headers["content-length"])


class CountingProxy:
    """Listens on 127.0.0.1:<port> in a background thread and forwards to 127.0.0.1:<upstream_port>, or to
    the unix socket `upstream_path` (the dashboard's picture: Prometheus scrapes only TCP)."""

    def __init__(self, upstream_port: int = 0, *, upstream_path: str | None = None) -> None:
        self.upstream_port = upstream_port
        self.upstream_path = upstream_path
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._counters: list[RequestCounter] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="counting-proxy", daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> CountingProxy:
        self._thread.start()
        future: Future[asyncio.Server] = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", self.port), self._loop
        )
        self._server = future.result(timeout=10)
        return self

    def requests(self) -> list[str]:
        """The requests seen since the last reset(), across all connections."""
        return [request for counter in list(self._counters) for request in counter.requests]

    def reset(self) -> None:
        for counter in list(self._counters):
            counter.requests.clear()

    def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        counter = RequestCounter()
        self._counters.append(counter)
        try:
            if self.upstream_path is not None:
                upstream_reader, upstream_writer = await asyncio.open_unix_connection(self.upstream_path)
            else:
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    "127.0.0.1", self.upstream_port
                )
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(
            _pump(client_reader, upstream_writer, counter),
            _pump(upstream_reader, client_writer, None),
        )

    def __enter__(self) -> CountingProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counter: RequestCounter | None
) -> None:
    try:
        while data := await reader.read(_READ_SIZE):
            if counter is not None:
                counter.feed(data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()
