"""GetObject's HTTP/1.1 transport over real sockets: a server on 127.0.0.1 answers with scripted bytes."""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from s3csi.demo.s3server import free_port
from s3csi.s3 import Credentials, S3Client, S3Settings, StaticCredentials
from s3csi.s3.errors import S3Error
from s3csi.s3.http1 import ConnectFailed, ConnectionLost, ConnectionPool, TLSFailed
from tests.admission_support import CertificateAuthority
from tests.polling import wait_until_async

T = TypeVar("T")
MIB = 1024 * 1024
# What the server does after a response: keep the connection, or close it.
KEEP, CLOSE = "keep", "close"


@dataclass
class Script:
    """Answers the n-th request on any connection with ``responses[n]`` (then 200 and an empty body)."""

    responses: list[tuple[bytes, str]] = field(default_factory=list)
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    # Connections that have ended, server side.
    closed: int = 0
    # Responses written whole, server side.
    answered: int = 0
    _closing: asyncio.Event = field(default_factory=asyncio.Event)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.requests.append(head)
                index = len(self.requests) - 1
                response, then = (
                    self.responses[index]
                    if index < len(self.responses)
                    else (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", KEEP)
                )
                await asyncio.sleep(0.01)  # so that concurrent requests overlap
                writer.write(response)
                await writer.drain()
                self.answered += 1
                if then == CLOSE:
                    return
        finally:
            self.open_now -= 1
            self.closed += 1
            self._closing.set()
            writer.close()

    async def wait_closed(self, count: int) -> None:
        async with asyncio.timeout(5):
            while self.closed < count:
                self._closing.clear()
                await self._closing.wait()


def run(scenario: Callable[[Script, ConnectionPool], Awaitable[T]], *, limit: int = 8) -> tuple[T, Script]:
    async def main() -> tuple[T, Script]:
        script = Script()
        server = await asyncio.start_server(script.serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = ConnectionPool("http", "127.0.0.1", port, ssl_context=None, connect_timeout_s=5, limit=limit)
        try:
            return await scenario(script, pool), script
        finally:
            pool.close()
            server.close()
            await server.wait_closed()

    return asyncio.run(main())


def ok(body: bytes, *headers: str) -> bytes:
    fields = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 206 Partial Content\r\nContent-Length: {len(body)}\r\n{fields}\r\n".encode() + body


def test_a_body_arrives_whole_and_the_connection_is_kept() -> None:
    body = os.urandom(3 * MIB + 17)

    async def scenario(script: Script, pool: ConnectionPool) -> list[bytes]:
        script.responses = [(ok(body, 'ETag: "e"'), KEEP), (ok(b"second"), KEEP)]
        first = await pool.get("/b/k?x=1", {"Range": "bytes=0-10", "User-Agent": "t"})
        assert first.status == 206 and first.headers["etag"] == '"e"'
        second = await pool.get("/b/k", {})
        return [bytes(first.body), bytes(second.body)]

    (first, second), script = run(scenario)
    assert first == body and second == b"second"
    assert script.connections == 1
    request = script.requests[0].decode()
    assert request.startswith("GET /b/k?x=1 HTTP/1.1\r\nHost: 127.0.0.1:")
    assert "Range: bytes=0-10\r\n" in request and "User-Agent: t\r\n" in request
    assert "accept-encoding" not in request.lower()  # the bytes must be the object's, never decoded


def test_chunked_and_close_delimited_bodies() -> None:
    async def scenario(script: Script, pool: ConnectionPool) -> list[bytes]:
        script.responses = [
            (b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n<E>\r\n0\r\n\r\n", KEEP),
            (b"HTTP/1.1 200 OK\r\n\r\nuntil the end", CLOSE),
            (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", KEEP),
        ]
        results = [await pool.get("/", {}) for _ in range(3)]
        assert [r.status for r in results] == [404, 200, 200]
        return [bytes(r.body) for r in results]

    bodies, script = run(scenario)
    assert bodies == [b"<E>", b"until the end", b"hi"]
    assert script.connections == 2  # the close-delimited body used up its connection


def test_connection_close_and_a_server_closing_an_idle_connection() -> None:
    async def scenario(script: Script, pool: ConnectionPool) -> list[bytes]:
        script.responses = [
            (ok(b"a", "Connection: close"), CLOSE),
            (ok(b"b"), CLOSE),  # kept alive by the header, closed by the server while idle
            (ok(b"c"), KEEP),
        ]
        first = await pool.get("/", {})
        second = await pool.get("/", {})
        await script.wait_closed(2)
        # The client's side sees the end of the idle connection.
        assert await wait_until_async(lambda: all(c.closed for c in pool._idle))
        third = await pool.get("/", {})  # on a new connection, without an error
        return [bytes(r.body) for r in (first, second, third)]

    bodies, script = run(scenario)
    assert bodies == [b"a", b"b", b"c"]
    assert script.connections == 3


def test_a_stale_connection_is_replaced_once_without_an_error() -> None:
    async def scenario(script: Script, pool: ConnectionPool) -> bytes:
        # The second request reaches a kept connection just as the server drops it without a word
        # (a load balancer's idle timeout): the request goes again, once, on a new connection.
        script.responses = [(ok(b"a"), KEEP), (b"", CLOSE), (ok(b"b"), KEEP)]
        await pool.get("/", {})
        return bytes((await pool.get("/", {})).body)

    body, script = run(scenario)
    assert body == b"b"
    assert script.connections == 2


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (ok(b"0123456789")[:-4], "closed during the response body"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "closed during the response"),
        (b"<html>nope</html>\r\n\r\n", "not an HTTP/1.1 status line"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 70_000, "head longer than"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "closed during the response body"),
    ],
)
def test_a_broken_response_is_connection_lost(response: bytes, match: str) -> None:
    async def scenario(script: Script, pool: ConnectionPool) -> None:
        script.responses = [(response, CLOSE)]
        with pytest.raises(ConnectionLost, match=match):
            await pool.get("/", {})
        assert not pool._idle

    run(scenario)


def test_cancelling_a_get_mid_body_drops_its_connection() -> None:
    async def scenario(script: Script, pool: ConnectionPool) -> None:
        script.responses = [(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial", KEEP)]
        get = asyncio.create_task(pool.get("/", {}))
        assert await wait_until_async(lambda: script.answered == 1)  # the head and part of the body sent
        get.cancel()
        with pytest.raises(asyncio.CancelledError):
            await get
        await script.wait_closed(1)
        assert not pool._idle
        assert (await pool.get("/", {})).status == 200  # the next GET gets a fresh connection

    _, script = run(scenario)
    assert script.connections == 2


def test_at_most_limit_connections_at_once() -> None:
    async def scenario(script: Script, pool: ConnectionPool) -> list[int]:
        responses = await asyncio.gather(*(pool.get("/", {}) for _ in range(7)))
        return [r.status for r in responses]

    statuses, script = run(scenario, limit=2)
    assert statuses == [200] * 7
    assert script.most_open == 2


def test_nobody_listening_is_connect_failed() -> None:
    async def scenario() -> None:
        pool = ConnectionPool(
            "http", "127.0.0.1", free_port(), ssl_context=None, connect_timeout_s=5, limit=1
        )
        with pytest.raises(ConnectFailed, match=r"cannot connect to 127\.0\.0\.1:\d+"):
            await pool.get("/", {})

    asyncio.run(scenario())


@pytest.fixture
def tls_server_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    authority = CertificateAuthority.create(tmp_path)
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    authority.issue(cert, key)
    return authority.path, cert, key


def _serve_tls(cert: Path, key: Path, body: bytes) -> Callable[[], Awaitable[asyncio.Server]]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(ok(body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    return lambda: asyncio.start_server(answer, "127.0.0.1", 0, ssl=context)


def test_tls_with_the_bundle_s_ca_and_refused_without_it(tls_server_files: tuple[Path, Path, Path]) -> None:
    ca, cert, key = tls_server_files
    body = os.urandom(2 * MIB)

    async def scenario() -> bytes:
        server = await _serve_tls(cert, key, body)()
        port = server.sockets[0].getsockname()[1]
        trusted = ConnectionPool(
            "https",
            "127.0.0.1",
            port,
            ssl_context=ssl.create_default_context(cafile=str(ca)),
            connect_timeout_s=5,
            limit=2,
        )
        untrusted = ConnectionPool(
            "https", "127.0.0.1", port, ssl_context=ssl.create_default_context(), connect_timeout_s=5, limit=2
        )
        try:
            received = bytes((await trusted.get("/b/k", {})).body)
            with pytest.raises(TLSFailed, match="CERTIFICATE_VERIFY_FAILED"):
                await untrusted.get("/b/k", {})
            return received
        finally:
            trusted.close()
            server.close()

    assert asyncio.run(scenario()) == body


def test_s3_client_get_object_over_tls_with_a_ca_bundle(tls_server_files: tuple[Path, Path, Path]) -> None:
    ca, cert, key = tls_server_files
    body = os.urandom(MIB)

    async def scenario(ca_bundle: str | None) -> bytes | bytearray:
        server = await _serve_tls(cert, key, body)()
        port = server.sockets[0].getsockname()[1]
        settings = S3Settings(
            endpoint_url=f"https://127.0.0.1:{port}",
            force_path_style=True,
            ca_bundle=ca_bundle,
            max_attempts=1,
        )
        try:
            async with S3Client(settings, StaticCredentials(Credentials("a", "b"))) as client:
                return await client.get_object("bucket", "key", start=0, end=MIB)
        finally:
            server.close()

    assert asyncio.run(scenario(str(ca))) == body
    with pytest.raises(S3Error) as raised:
        asyncio.run(scenario(None))
    assert raised.value.code == "TLSError"
    assert "GetObject" in str(raised.value) and "CERTIFICATE_VERIFY_FAILED" in str(raised.value)


def test_s3_client_times_out_a_get_that_stalls_and_drops_its_connection() -> None:
    async def scenario() -> tuple[S3Error, Script]:
        script = Script(
            responses=[(b"HTTP/1.1 206 Partial Content\r\nContent-Length: 100\r\n\r\nsome", KEEP)]
        )
        server = await asyncio.start_server(script.serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        settings = S3Settings(
            endpoint_url=f"http://127.0.0.1:{port}",
            force_path_style=True,
            request_timeout_s=0.3,
            max_attempts=1,
        )
        try:
            async with S3Client(settings, StaticCredentials(Credentials("a", "b"))) as client:
                with pytest.raises(S3Error) as raised:
                    await client.get_object("bucket", "key", start=0, end=100)
                await script.wait_closed(1)  # the stalled connection is not kept for the next GET
                return raised.value, script
        finally:
            server.close()

    error, script = asyncio.run(scenario())
    assert error.code == "Timeout"
    assert "no complete answer within 0.3 s" in str(error)
    assert script.connections == 1
