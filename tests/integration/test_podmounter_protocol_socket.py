"""mount.sock over a real SOCK_SEQPACKET socket: refusals close every fd, and both sides time out."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from s3csi.errors import NotFound, Unavailable
from s3csi.podmounter import protocol
from s3csi.podmounter.protocol import MountRequest, ProtocolError

REQUEST = MountRequest(
    version=1,
    volume_id="vol-1",
    bucket="b",
    prefix="",
    args=["--allow-root"],
    env={"region": "us-east-1", "endpoint_url": None, "force_path_style": True, "credentials_file": None},
)


def fds_open_on(fd: int) -> int:
    """How many descriptors of this process refer to the same pipe as ``fd``."""
    wanted = os.readlink(f"/proc/self/fd/{fd}")
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{name}") == wanted
        except FileNotFoundError:
            pass
    return count


class Server:
    """A mounter side in a thread: records what ``receive_request`` made of each connection."""

    def __init__(self, path: str, *, receive_timeout: float = 5, reply: bool = True) -> None:
        self.listener = protocol.listen(path)
        self.results: list[object] = []
        self.handled = threading.Semaphore(0)  # released once per connection, after it is closed
        self.receive_timeout = receive_timeout
        self.reply = reply
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                try:
                    request, fd = protocol.receive_request(conn, timeout=self.receive_timeout)
                except ProtocolError as exc:
                    self.results.append(exc)
                    protocol.send_reply(conn, protocol.error_reply(exc))
                    conn.close()
                    self.handled.release()
                    continue
                self.results.append((request, os.fstat(fd).st_ino))
                os.close(fd)
                if self.reply:
                    protocol.send_reply(conn, protocol.ready_reply())
                else:
                    conn.recv(1)  # hold the connection open until the client gives up

    def close(self) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(5)


@pytest.fixture
def sock_path(tmp_path: Path) -> str:
    return str(tmp_path / protocol.SOCKET_NAME)


@pytest.fixture
def server(sock_path: str) -> Iterator[Server]:
    server = Server(sock_path)
    yield server
    server.close()


def raw_exchange(path: str, data: bytes, fds: list[int]) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
        sock.connect(path)
        socket.send_fds(sock, [data], fds)
        sock.settimeout(10)
        return json.loads(sock.recv(protocol.MAX_MESSAGE_BYTES)) if fds or data else {}


def test_request_mount_hands_over_the_fd(server: Server, sock_path: str, tmp_path: Path) -> None:
    with open(tmp_path / "some-file", "w") as file:
        protocol.request_mount(sock_path, REQUEST, file.fileno())
        inode = os.fstat(file.fileno()).st_ino
    assert server.results == [(REQUEST, inode)]


GOOD = protocol.encode(REQUEST)


@pytest.mark.parametrize(
    ("data", "fd_count", "error"),
    [
        (GOOD, 0, "exactly one fd, it carried 0"),
        (GOOD, 2, "exactly one fd, it carried 2"),
        (GOOD, 6, "exceeds"),
        (b"{bad json", 1, "not UTF-8 JSON"),
        (GOOD.replace(b'"version":1', b'"version":9'), 1, "unsupported version 9"),
        (GOOD.replace(b'"bucket":"b",', b""), 1, "missing field 'bucket'"),
        (b"x" * (protocol.MAX_MESSAGE_BYTES + 1), 1, "exceeds"),
    ],
)
def test_refused_requests_close_every_fd(
    server: Server, sock_path: str, data: bytes, fd_count: int, error: str
) -> None:
    read_end, write_end = os.pipe()
    try:
        answer = raw_exchange(sock_path, data, [read_end] * fd_count)
        assert answer["status"] == "error" and error in str(answer["message"])
        assert answer["reason"] == "InvalidArgument"
        assert server.handled.acquire(timeout=10)
        assert fds_open_on(read_end) == 2  # ours; the server's copies are all closed again
        assert isinstance(server.results[-1], ProtocolError)
    finally:
        os.close(read_end)
        os.close(write_end)


def test_request_mount_reports_the_mounters_refusal(sock_path: str) -> None:
    listener = protocol.listen(sock_path)

    def refuse() -> None:
        conn, _ = listener.accept()
        with conn:
            _, fd = protocol.receive_request(conn)
            os.close(fd)
            protocol.send_reply(conn, protocol.error_reply(NotFound("bucket 'b' does not exist")))

    thread = threading.Thread(target=refuse)
    thread.start()
    try:
        with pytest.raises(NotFound, match="refused the mount: bucket 'b' does not exist"):
            protocol.request_mount(sock_path, REQUEST, 0)
    finally:
        thread.join(5)
        listener.close()


def test_client_times_out_when_the_mounter_never_answers(sock_path: str) -> None:
    server = Server(sock_path, reply=False)
    try:
        with pytest.raises(Unavailable, match=r"did not answer within 0\.5s"):
            protocol.request_mount(sock_path, REQUEST, 0, reply_timeout=0.5)
    finally:
        server.close()


def test_mounter_times_out_when_the_client_sends_nothing(sock_path: str) -> None:
    server = Server(sock_path, receive_timeout=0.3)
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
            sock.connect(sock_path)
            sock.settimeout(10)
            answer = json.loads(sock.recv(protocol.MAX_MESSAGE_BYTES))
        assert answer["status"] == "error" and "no mount request within 0.3s" in answer["message"]
    finally:
        server.close()


def test_no_mounter_listening_is_unavailable(sock_path: str) -> None:
    with pytest.raises(Unavailable, match="cannot reach the Mountpoint Pod"):
        protocol.request_mount(sock_path, REQUEST, 0)


class Accepting:
    """``protocol.accept_request`` in a thread, as the mounter runs it."""

    def __init__(self, path: str, *, timeout: float, max_connections: int = protocol.MAX_CONNECTIONS) -> None:
        self.listener = protocol.listen(path)
        self.path = path
        self.accepted: tuple[socket.socket, MountRequest, int] | None = None
        self.thread = threading.Thread(target=self._accept, args=(timeout, max_connections), daemon=True)
        self.thread.start()

    def _accept(self, timeout: float, max_connections: int) -> None:
        self.accepted = protocol.accept_request(
            self.listener, timeout=timeout, max_connections=max_connections
        )

    def idle_client(self) -> socket.socket:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        client.settimeout(30)
        client.connect(self.path)
        return client

    def close(self) -> None:
        self.thread.join(30)
        if self.accepted is not None:
            conn, _, fd = self.accepted
            conn.close()
            os.close(fd)
        self.listener.close()


def refusal(client: socket.socket) -> str:
    """The error a waiting client was sent, once the mounter closed its connection."""
    answer = json.loads(client.recv(protocol.MAX_MESSAGE_BYTES))
    assert client.recv(protocol.MAX_MESSAGE_BYTES) == b""  # closed
    client.close()
    assert answer["status"] == "error"
    return str(answer["message"])


def test_idle_clients_do_not_delay_a_request_nor_fill_the_backlog(sock_path: str, tmp_path: Path) -> None:
    accepting = Accepting(sock_path, timeout=60)
    try:
        # More than the old backlog of 4: each is accepted at once and waits on its own.
        idle = [accepting.idle_client() for _ in range(protocol.MAX_CONNECTIONS - 1)]
        with (
            open(tmp_path / "fuse-stand-in", "w") as file,
            socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock,
        ):
            sock.connect(sock_path)
            socket.send_fds(sock, [GOOD], [file.fileno()])
            accepting.thread.join(30)  # the request is taken although every idle client waits 60 s
            assert accepting.accepted is not None
            _, request, fd = accepting.accepted
            assert request == REQUEST and os.fstat(fd).st_ino == os.fstat(file.fileno()).st_ino
        assert {refusal(client) for client in idle} == {"this Mountpoint Pod took another mount request"}
    finally:
        accepting.close()


def test_idle_clients_are_closed_at_their_deadline_and_the_oldest_give_way(
    sock_path: str, tmp_path: Path
) -> None:
    accepting = Accepting(sock_path, timeout=0.5, max_connections=2)
    try:
        first, second, third = (accepting.idle_client() for _ in range(3))
        assert refusal(first) == "more than 2 connections wait without a request"
        assert refusal(second) == refusal(third) == "no mount request within 0.5s"
        assert accepting.thread.is_alive()  # still listening
        with open(tmp_path / "fuse-stand-in", "w") as file:
            raw = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            with raw:
                raw.connect(sock_path)
                socket.send_fds(raw, [GOOD], [file.fileno()])
                accepting.thread.join(30)
        assert accepting.accepted is not None and accepting.accepted[1] == REQUEST
    finally:
        accepting.close()
