"""mount.sock: how the node plugin hands a mounted /dev/fuse fd to a Mountpoint Pod (docs/node-publish.md).

One connection carries one exchange on a SOCK_SEQPACKET unix socket, so message boundaries are the
kernel's and a message is never read in pieces::

    node plugin ── MountRequest (UTF-8 JSON ≤ 64 KiB) + exactly one fd (SCM_RIGHTS) ──▶ mounter
    node plugin ◀── MountReply {"version": 1, "status": "ready"}
                    | {"version": 1, "status": "error", "message": TEXT, "reason": ERROR CLASS}

The mounter replies ``ready`` only once the kernel's FUSE INIT has been answered, so a published
target is usable the moment NodePublishVolume returns. A request that is too large, carries no fd or
several, is not JSON, has another version or lacks a field is refused with an error reply, and every
fd that came with it is closed. The request holds no secret: credentials travel as files in the comm
dir, named here by a path relative to it. An error's ``reason`` names the ``s3csi.errors`` class
of the failure (``NotFound`` for a missing bucket, …), so the node plugin answers kubelet with the
right CSI code.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import socket
import stat
import struct
import time
from collections.abc import Iterator
from typing import Literal, TypedDict, cast

from s3csi.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    S3csiError,
    Unavailable,
)
from s3csi.kernel.dirfd import open_beneath, open_directory

VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024
SOCKET_NAME = "mount.sock"
# Seconds. Sending is local and instant; the reply waits for the S3 client and FUSE INIT.
SEND_TIMEOUT = 10.0
REPLY_TIMEOUT = 60.0
RECEIVE_TIMEOUT = 10.0
# Connections the mounter keeps waiting for their request at once, and the listen(2) backlog: a
# connection is accepted as soon as it arrives, so the backlog only has to absorb a burst.
MAX_CONNECTIONS = 16
BACKLOG = 16

log = logging.getLogger(__name__)


class MountEnv(TypedDict):
    """What the mounter's S3 client needs besides credentials (the driver's choice: docs/csi.md)."""

    region: str
    endpoint_url: str | None
    force_path_style: bool
    # Relative to the comm dir: an AWS shared-credentials file the node plugin keeps up to date.
    credentials_file: str | None


class MountRequest(TypedDict):
    version: int
    volume_id: str
    bucket: str
    prefix: str
    args: list[str]  # the effective mount-s3 flags (volume.policy), already validated there
    env: MountEnv


class MountReply(TypedDict, total=False):
    version: int
    status: Literal["ready", "error"]
    message: str
    reason: str  # a key of REASONS


REASONS: dict[str, type[S3csiError]] = {
    error.__name__: error
    for error in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        PermissionDenied,
        ResourceExhausted,
        Unavailable,
        Aborted,
        Internal,
    )
}


def reason_of(error: BaseException) -> str:
    """The REASONS key for ``error``: its first class that is one, else Unavailable for another
    s3csi error (an S3 failure without a more precise kind), else Internal."""
    for kind in type(error).__mro__:
        if REASONS.get(kind.__name__) is kind:
            return kind.__name__
    return Unavailable.__name__ if isinstance(error, S3csiError) else Internal.__name__


class ProtocolError(InvalidArgument):
    """A mount.sock message that does not follow this module."""


def _require(obj: dict[str, object], key: str, kind: type | tuple[type, ...], where: str) -> object:
    if key not in obj:
        raise ProtocolError(f"{where}: missing field {key!r}")
    value = obj[key]
    # bool is an int in Python; a version of `true` is not a version.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise ProtocolError(f"{where}: field {key!r} must be {_kind_name(kind)}, not {type(value).__name__}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return " or ".join("null" if k is type(None) else k.__name__ for k in _as_tuple(kind))


def _check_fields(obj: dict[str, object], allowed: set[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise ProtocolError(f"{where}: unknown field(s) {', '.join(map(repr, unknown))}")


def _relative_path(value: str, where: str) -> str:
    normal = os.path.normpath(value)
    if os.path.isabs(value) or normal.startswith("..") or not value:
        raise ProtocolError(f"{where}: credentials_file must be a path inside the comm dir, got {value!r}")
    return normal


def _parse_json_object(data: bytes, what: str) -> dict[str, object]:
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError: JSONDecodeError, an int of > 4300 digits
        raise ProtocolError(f"{what} is not UTF-8 JSON: {exc}") from exc
    except RecursionError:
        raise ProtocolError(f"{what} is nested too deeply") from None
    if not isinstance(obj, dict):
        raise ProtocolError(f"{what} must be a JSON object, not {type(obj).__name__}")
    version = _require(obj, "version", int, what)
    if version != VERSION:
        raise ProtocolError(f"{what}: unsupported version {version} (this side speaks {VERSION})")
    return obj


def decode_request(data: bytes) -> MountRequest:
    """Validate a request: pure, so every refusal is a table row in the tests."""
    where = "mount request"
    obj = _parse_json_object(data, where)
    _check_fields(obj, set(MountRequest.__annotations__), where)
    volume_id = cast(str, _require(obj, "volume_id", str, where))
    bucket = cast(str, _require(obj, "bucket", str, where))
    if not volume_id or not bucket:
        raise ProtocolError(f"{where}: volume_id and bucket must not be empty")
    args = cast(list[object], _require(obj, "args", list, where))
    if not all(isinstance(arg, str) for arg in args):
        raise ProtocolError(f"{where}: field 'args' must be a list of strings")
    env = cast(dict[str, object], _require(obj, "env", dict, where))
    env_where = f"{where} env"
    _check_fields(env, set(MountEnv.__annotations__), env_where)
    credentials_file = cast("str | None", _require(env, "credentials_file", (str, type(None)), env_where))
    return MountRequest(
        version=VERSION,
        volume_id=volume_id,
        bucket=bucket,
        prefix=cast(str, _require(obj, "prefix", str, where)),
        args=cast(list[str], args),
        env=MountEnv(
            region=cast(str, _require(env, "region", str, env_where)),
            endpoint_url=cast("str | None", _require(env, "endpoint_url", (str, type(None)), env_where)),
            force_path_style=cast(bool, _require(env, "force_path_style", bool, env_where)),
            credentials_file=None
            if credentials_file is None
            else _relative_path(credentials_file, env_where),
        ),
    )


def decode_reply(data: bytes) -> MountReply:
    where = "mounter reply"
    obj = _parse_json_object(data, where)
    _check_fields(obj, set(MountReply.__annotations__), where)
    status = _require(obj, "status", str, where)
    if status == "ready":
        return MountReply(version=VERSION, status="ready")
    if status == "error":
        reason = cast(str, _require(obj, "reason", str, where))
        if reason not in REASONS:
            raise ProtocolError(f"{where}: unknown reason {reason!r}")
        message = cast(str, _require(obj, "message", str, where))
        return MountReply(version=VERSION, status="error", message=message, reason=reason)
    raise ProtocolError(f"{where}: unknown status {status!r}")


def encode(message: MountRequest | MountReply) -> bytes:
    data = json.dumps(message, separators=(",", ":")).encode("utf-8")
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"mount.sock message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    return data


def ready_reply() -> MountReply:
    return MountReply(version=VERSION, status="ready")


def error_reply(error: S3csiError) -> MountReply:
    return MountReply(version=VERSION, status="error", message=str(error), reason=reason_of(error))


# ---- node plugin side -------------------------------------------------------------------------


def request_mount(
    socket_path: str,
    request: MountRequest,
    fd: int,
    *,
    reply_timeout: float = REPLY_TIMEOUT,
    mounter_uid: int | None = None,
) -> None:
    """Send ``request`` with the FUSE fd to the mounter on ``socket_path`` and wait for ``ready``.

    Blocking (call it in a thread). The directory of ``socket_path`` is trusted; its ``mount.sock``
    is not — the mounter writes that directory — so it is opened without following a symlink and
    must be a socket, and with ``mounter_uid`` the process listening on it must run as that uid:
    a planted link or a hard link to another service's socket never gets the request or the fd.
    Raises ``Unavailable`` when the mounter cannot be reached or does not answer in time; when it
    refuses, the error class of its reply's ``reason`` with its text.
    """
    data = encode(request)
    with (
        socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC) as sock,
        _socket_entry(socket_path) as entry,
    ):
        sock.settimeout(SEND_TIMEOUT)
        try:
            # Through the socket's own fd: no path is resolved again, and a unix socket path's limit
            # of 107 bytes never meets a deep state dir.
            sock.connect(f"/proc/self/fd/{entry}")
            if mounter_uid is not None:
                _check_peer(sock, mounter_uid, socket_path)
            socket.send_fds(sock, [data], [fd])
            sock.settimeout(reply_timeout)
            answer = sock.recv(MAX_MESSAGE_BYTES + 1)
        except TimeoutError as exc:
            raise Unavailable(
                f"Mountpoint Pod at {socket_path} did not answer within {reply_timeout:g}s"
            ) from exc
        except OSError as exc:
            raise Unavailable(
                f"cannot reach the Mountpoint Pod at {socket_path}: {exc.strerror or exc}"
            ) from exc
    if not answer:
        raise Unavailable(f"Mountpoint Pod at {socket_path} closed the connection without an answer")
    reply = decode_reply(answer)
    if reply["status"] != "ready":
        raise REASONS[reply["reason"]](f"Mountpoint Pod refused the mount: {reply['message']}")


_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def _check_peer(sock: socket.socket, uid: int, socket_path: str) -> None:
    _, peer_uid, _ = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    if peer_uid != uid:
        raise Unavailable(
            f"{socket_path} is served by uid {peer_uid}, not by the Mountpoint Pod's uid {uid}: refusing it"
        )


@contextlib.contextmanager
def _socket_entry(socket_path: str) -> Iterator[int]:
    """An ``O_PATH`` fd of ``socket_path``'s socket, found without following a symlink."""
    try:
        directory = open_directory(os.path.dirname(socket_path))
    except S3csiError as exc:
        raise Unavailable(f"cannot reach the Mountpoint Pod: {exc}") from None
    try:
        entry = open_beneath(directory, os.path.basename(socket_path), os.O_PATH | os.O_NOFOLLOW)
    except OSError as exc:
        raise Unavailable(f"cannot reach the Mountpoint Pod at {socket_path}: {exc.strerror}") from exc
    finally:
        os.close(directory)
    try:
        if not stat.S_ISSOCK(os.fstat(entry).st_mode):
            raise Unavailable(f"{socket_path} is not a socket: refusing to connect through it")
        yield entry
    finally:
        os.close(entry)


# ---- mounter side -----------------------------------------------------------------------------


def listen(socket_path: str) -> socket.socket:
    """A listening mount.sock, replacing an old one of a previous mounter.

    The socket is bound under a temporary name and renamed once it listens, so a node plugin that
    sees ``mount.sock`` can connect to it.
    """
    temporary = os.path.join(os.path.dirname(socket_path), f".{SOCKET_NAME}.{os.getpid()}")
    if os.path.exists(temporary):
        os.unlink(temporary)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        server.bind(temporary)
        server.listen(BACKLOG)
        os.replace(temporary, socket_path)
    except BaseException:
        server.close()
        raise
    return server


def accept_request(
    listener: socket.socket, *, timeout: float = RECEIVE_TIMEOUT, max_connections: int = MAX_CONNECTIONS
) -> tuple[socket.socket, MountRequest, int]:
    """The first valid request on ``listener``: its connection, the request and its fd.

    Every connection is handled on its own: accepted at once, read when its message has arrived,
    and closed ``timeout`` seconds after it was accepted if none has; so clients that connect and send
    nothing never delay the node plugin's request nor fill the backlog. At most ``max_connections``
    wait at a time (the oldest is dropped). A refused request is answered with its error and closed;
    the connections still waiting when a valid request arrives are told the mounter took another.
    """
    waiting: dict[socket.socket, float] = {}  # connection → its deadline (monotonic), oldest first
    with selectors.DefaultSelector() as selector:
        listener.setblocking(False)
        selector.register(listener, selectors.EVENT_READ)
        try:
            while True:
                now = time.monotonic()
                for conn, deadline in list(waiting.items()):
                    if deadline <= now:
                        selector.unregister(conn)
                        del waiting[conn]
                        _refuse(conn, ProtocolError(f"no mount request within {timeout:g}s"))
                wait = min(waiting.values()) - now if waiting else None
                for key, _ in selector.select(None if wait is None else max(wait, 0)):
                    if key.fileobj is listener:
                        _accept_all(listener, selector, waiting, now + timeout, max_connections)
                        continue
                    conn = cast(socket.socket, key.fileobj)
                    selector.unregister(conn)
                    del waiting[conn]
                    try:
                        request, fd = read_request(conn)
                    except ProtocolError as exc:
                        _refuse(conn, exc)
                        continue
                    conn.setblocking(True)
                    return conn, request, fd
        finally:
            for conn in waiting:
                _refuse(conn, Unavailable("this Mountpoint Pod took another mount request"))


def _accept_all(
    listener: socket.socket,
    selector: selectors.BaseSelector,
    waiting: dict[socket.socket, float],
    deadline: float,
    max_connections: int,
) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # EMFILE, ECONNABORTED: this one is lost, the others are served
            log.warning("mount.sock: accept failed: %s", exc.strerror or exc)
            return
        conn.setblocking(False)
        if len(waiting) >= max_connections:
            oldest = next(iter(waiting))
            selector.unregister(oldest)
            del waiting[oldest]
            _refuse(oldest, ProtocolError(f"more than {max_connections} connections wait without a request"))
        selector.register(conn, selectors.EVENT_READ)
        waiting[conn] = deadline


def _refuse(conn: socket.socket, error: S3csiError) -> None:
    """Answer ``error`` if the peer still listens (never blocking on it), and close."""
    log.warning("refused a mount.sock connection: %s", error)
    with contextlib.suppress(OSError, ProtocolError):
        conn.send(encode(error_reply(error)), socket.MSG_DONTWAIT)
    conn.close()


def read_request(conn: socket.socket) -> tuple[MountRequest, int]:
    """Read one request and its fd from an accepted connection whose message has arrived (or
    that blocks, or has a timeout, until it does).

    On any refusal every fd received is closed and ``ProtocolError`` says why; the caller replies
    with that text.
    """
    try:
        data, fds, flags, _ = socket.recv_fds(conn, MAX_MESSAGE_BYTES + 1, 4)
    except TimeoutError as exc:
        raise ProtocolError(f"no mount request within {conn.gettimeout() or 0:g}s") from exc
    except BlockingIOError as exc:
        raise ProtocolError("no mount request") from exc
    except OSError as exc:
        raise ProtocolError(f"mount request could not be read: {exc.strerror or exc}") from exc
    try:
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC) or len(data) > MAX_MESSAGE_BYTES:
            raise ProtocolError(f"mount request exceeds {MAX_MESSAGE_BYTES} bytes or 4 fds")
        if len(fds) != 1:
            raise ProtocolError(f"mount request must carry exactly one fd, it carried {len(fds)}")
        return decode_request(data), fds[0]
    except S3csiError:
        for fd in fds:
            os.close(fd)
        raise


def receive_request(conn: socket.socket, *, timeout: float = RECEIVE_TIMEOUT) -> tuple[MountRequest, int]:
    """``read_request`` waiting at most ``timeout`` seconds for the message."""
    conn.settimeout(timeout)
    return read_request(conn)


def send_reply(conn: socket.socket, reply: MountReply) -> None:
    conn.settimeout(SEND_TIMEOUT)
    conn.sendall(encode(reply))
