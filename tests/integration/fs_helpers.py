"""Running ``s3csi mount`` as a child process against the test S3 server, always unmounted afterwards."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from s3csi.demo.s3server import EmbeddedS3Server
from tests.polling import wait_until

MOUNT_TIMEOUT_S = 30.0


def is_mounted(path: str | Path) -> bool:
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        return any(line.split()[4] == target for line in mountinfo)


def world_readable_dir(prefix: str) -> Path:
    """A fresh directory other uids can enter (mkdtemp makes 0700 ones)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def mount_env(
    server: EmbeddedS3Server, extra: dict[str, str] | None = None, *, keys_in_env: bool = True
) -> dict[str, str]:
    """The mount's environment: the server's endpoint and region, and its keys unless ``keys_in_env`` is
    False (then credentials come from the shared files that ``extra`` names)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(server.client_env())
    if not keys_in_env:
        del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    env.update(extra or {})
    return env


@dataclass
class MountedFs:
    path: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    # The whole log, kept when the mount is gone.
    final_log: str = ""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def unmount(self, timeout: float = 30.0) -> int:
        """umount, then wait for the process; returns its exit status."""
        if is_mounted(self.path):
            subprocess.run(["umount", str(self.path)], capture_output=True, check=False)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        finally:
            if is_mounted(self.path):
                subprocess.run(["umount", "-l", str(self.path)], capture_output=True, check=False)


def wait_mounted(path: Path, process: subprocess.Popen[bytes], log_path: Path) -> None:
    if not wait_until(lambda: is_mounted(path) or process.poll() is not None, within=MOUNT_TIMEOUT_S):
        process.kill()
        pytest.fail(f"s3csi mount did not mount within {MOUNT_TIMEOUT_S} s", pytrace=False)
    if not is_mounted(path):
        pytest.fail(f"s3csi mount exited with {process.returncode}:\n{log_path.read_text()}", pytrace=False)


@contextlib.contextmanager
def mounted(
    server: EmbeddedS3Server,
    bucket: str,
    *flags: str,
    env: dict[str, str] | None = None,
    keys_in_env: bool = True,
) -> Iterator[MountedFs]:
    """``s3csi mount BUCKET DIR --foreground FLAGS`` in a child process, always unmounted on exit."""
    path = world_readable_dir("s3csi-fs-")
    log_path = Path(tempfile.mkstemp(prefix="s3csi-fs-log-", dir="/tmp")[1])
    command = [sys.executable, "-m", "s3csi", "mount", bucket, str(path), "--foreground", *flags]
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command,
            env=mount_env(server, env, keys_in_env=keys_in_env),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    fs = MountedFs(path, process, log_path)
    try:
        wait_mounted(path, process, log_path)
        yield fs
    finally:
        if process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                fs.unmount()
        if is_mounted(path):
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)
        with contextlib.suppress(OSError):
            path.rmdir()
        fs.final_log = fs.log()
        log_path.unlink(missing_ok=True)


def unmount_and_remove(path: Path, timeout: float = 10) -> None:
    """Unmount a daemonized mount (umount, then a lazy one if it lingers) and remove its directory."""
    subprocess.run(["umount", str(path)], capture_output=True, check=False)
    if not wait_until(lambda: not is_mounted(path), within=timeout, interval=0.1):
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)
    path.rmdir()


def run_mount_command(
    server: EmbeddedS3Server, *argv: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``s3csi mount ARGV`` to completion (a failure, or a daemon's parent)."""
    return subprocess.run(
        [sys.executable, "-m", "s3csi", "mount", *argv],
        check=False,
        env=mount_env(server),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


class RecordingProxy:
    """A TCP forwarder on 127.0.0.1 that keeps every byte clients send, per connection: the witness of
    what the mount put on the wire (request lines, headers), whatever the S3 server makes of it."""

    _HEAD = re.compile(rb"(GET|PUT|HEAD|POST|DELETE) (\S+) HTTP/1\.1\r\n(.*?)\r\n\r\n", re.DOTALL)

    def __init__(self, upstream_url: str) -> None:
        self._upstream = socket.getaddrinfo(*upstream_url.removeprefix("http://").split(":"))[0][4]
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint_url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._streams: list[bytearray] = []
        self._lock = threading.Lock()
        # Per connection (moto answers one request per connection): [first request byte, last answer byte].
        self._spans: list[list[float]] = []
        # hold_answers_until(): answers wait until this many requests were in flight at once.
        self._changed = threading.Condition(self._lock)
        self._hold_until = 0
        self._hold_timeout = 0.0
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def heads(self) -> list[tuple[str, str, dict[str, str]]]:
        """(method, target, headers with lower-case names) of every request seen."""
        found = []
        with self._lock:
            streams = [bytes(s) for s in self._streams]
        for stream in streams:
            for match in self._HEAD.finditer(stream):
                lines = match.group(3).decode("latin-1").split("\r\n")
                headers = {
                    n.strip().lower(): v.strip() for n, _, v in (line.partition(":") for line in lines)
                }
                found.append((match.group(1).decode(), match.group(2).decode(), headers))
        return found

    def raw(self) -> bytes:
        """Every byte clients sent (request lines, headers and bodies), connection after connection."""
        with self._lock:
            return b"".join(bytes(stream) for stream in self._streams)

    def hold_answers_until(self, in_flight: int, timeout: float = 10.0) -> None:
        """Hold every answer to a ranged GET until ``in_flight`` requests have been sent and not answered at
        the same time (or ``timeout`` seconds passed): a client that really keeps that many reads in flight
        shows it however slow the machine, and one that does not shows a lower peak, only later."""
        with self._lock:
            self._hold_until, self._hold_timeout = in_flight, timeout

    def _ranged_get(self, request: bytearray) -> bool:
        with self._lock:
            head = bytes(request[:4096]).lower()
        return head.startswith(b"get ") and b"\r\nrange:" in head

    def _requests_in_flight(self) -> int:
        return sum(1 for start, end in self._spans if start and not end)

    def reset(self) -> None:
        with self._lock:
            for stream in self._streams:
                stream.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._upstream)
            stream = bytearray()
            span = [0.0, 0.0]
            with self._lock:
                self._streams.append(stream)
                self._spans.append(span)
            threading.Thread(target=self._pump, args=(client, upstream, stream, span, 0), daemon=True).start()
            threading.Thread(
                target=self._pump,
                args=(upstream, client, None, span, 1),
                kwargs={"request": stream},
                daemon=True,
            ).start()

    @property
    def peak_requests_in_flight(self) -> int:
        """The most requests whose spans overlapped: sent but not yet wholly answered."""
        with self._lock:
            events = [(start, 1) for start, end in self._spans if start] + [
                (end, -1) for start, end in self._spans if start and end
            ]
        peak = current = 0
        for _, step in sorted(events, key=lambda e: (e[0], e[1])):
            current += step
            peak = max(peak, current)
        return peak

    def _pump(
        self,
        source: socket.socket,
        sink: socket.socket,
        record: bytearray | None,
        span: list[float],
        end: int,
        *,
        request: bytearray | None = None,
    ) -> None:
        try:
            while data := source.recv(1 << 20):
                if record is not None:
                    with self._lock:
                        record += data
                if end == 0 and not span[0]:
                    with self._changed:
                        span[0] = time.monotonic()
                        if self._requests_in_flight() >= self._hold_until:
                            self._hold_until = 0
                            self._changed.notify_all()
                if end == 1 and not span[1] and request is not None and self._ranged_get(request):
                    with self._changed:
                        self._changed.wait_for(lambda: self._hold_until == 0, self._hold_timeout)
                if end == 1:
                    # Before forwarding: the client cannot react to these bytes (send its next request)
                    # earlier, so spans never overlap merely because this thread was slow to note the end.
                    span[1] = time.monotonic()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
