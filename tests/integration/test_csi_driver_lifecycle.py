"""``s3csi driver`` as a process: its socket (stale one replaced, 0700, a live one never stolen), a
graceful stop that lets a call in flight finish, and one-line refusals of bad flags."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from s3csi.csi.proto import csi_pb2
from tests.integration.csi_support import DriverProcess, capability, driver_factory, rpc, run
from tests.polling import wait_until_async

pytestmark = pytest.mark.integration
__all__ = ["driver_factory"]

ENV = {"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "us-east-1"}


def test_socket_is_private_and_removed_on_sigterm(driver_factory: Any) -> None:
    driver: DriverProcess = driver_factory(ENV, "--mode=node")
    mode = os.stat(driver.socket_path).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o700
    assert driver.terminate() == 0
    assert not os.path.exists(driver.socket_path)
    assert "stopped" in driver.log()


def test_a_stale_socket_is_replaced(tmp_path: Path, driver_factory: Any) -> None:
    stale = tmp_path / "csi.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(stale))  # bound and closed: nobody listens on it any more
    driver: DriverProcess = driver_factory(ENV, "--mode=node")
    assert (
        run(rpc(driver.socket_path, "Node", "NodeGetInfo", csi_pb2.NodeGetInfoRequest())).node_id == "node-1"
    )
    assert "removed stale socket" in driver.log()


def test_a_live_socket_or_another_file_is_never_replaced(tmp_path: Path, driver_factory: Any) -> None:
    first: DriverProcess = driver_factory(ENV, "--mode=node")
    second: DriverProcess = driver_factory(ENV, "--mode=node", wait=False)
    assert second.process.wait(timeout=60) == 1
    assert "another process is serving on" in second.log()
    assert run(rpc(first.socket_path, "Identity", "Probe", csi_pb2.ProbeRequest())).ready.value

    regular = tmp_path / "file.sock"
    regular.write_text("not a socket")
    third: DriverProcess = driver_factory(ENV, "--mode=node", socket_name="file.sock", wait=False)
    assert third.process.wait(timeout=60) == 1
    assert "is not a socket" in third.log()
    assert regular.read_text() == "not a socket"


class SlowS3:
    """Just enough S3 for one CreateVolume, which waits in CreateBucket until ``release`` is set."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: bytes = b"") -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("ETag", '"0"')
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.count("/") == 1:  # CreateBucket
                    outer.arrived.set()
                    outer.release.wait(timeout=60)
                self._answer(200)

            def do_GET(self) -> None:
                self._answer(404, b"<Error><Code>NoSuchKey</Code><Message>no</Message></Error>")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_s3() -> Iterator[SlowS3]:
    server = SlowS3()
    yield server
    server.close()


def test_sigterm_drains_calls_in_flight_then_exits_0(driver_factory: Any, slow_s3: SlowS3) -> None:
    driver: DriverProcess = driver_factory(ENV, "--mode=controller", f"--s3-endpoint-url={slow_s3.url}")
    request = csi_pb2.CreateVolumeRequest(name="pvc-slow", volume_capabilities=[capability()])

    async def scenario() -> csi_pb2.CreateVolumeResponse:
        in_flight = asyncio.ensure_future(rpc(driver.socket_path, "Controller", "CreateVolume", request))
        assert await asyncio.to_thread(slow_s3.arrived.wait, 30)
        driver.process.send_signal(15)
        assert await wait_until_async(lambda: "draining" in driver.log()), "the driver did not start draining"
        assert not in_flight.done()
        slow_s3.release.set()
        response: csi_pb2.CreateVolumeResponse = await in_flight
        return response

    response = run(scenario())
    assert response.volume.volume_id.startswith("bucket:pvc-slow-")
    assert driver.process.wait(timeout=60) == 0
    assert not os.path.exists(driver.socket_path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--endpoint=tcp://127.0.0.1:5000", "--node-id=n"], "--endpoint"),
        (["--endpoint=unix://relative.sock", "--node-id=n"], "--endpoint"),
        (["--endpoint=unix:///tmp/x.sock", "--node-id="], "--node-id"),
        (["--endpoint=unix:///tmp/x.sock", "--node-id=n", "--driver-name=-bad-"], "--driver-name"),
        (["--endpoint=unix:///tmp/x.sock", "--node-id=n", "--kubelet-dir=var/lib/kubelet"], "--kubelet-dir"),
        (
            ["--endpoint=unix:///tmp/x.sock", "--node-id=n", "--runtime=kubernetes", "--kube-api=off"],
            "--runtime kubernetes needs the Kubernetes API",
        ),
        (
            ["--endpoint=unix:///tmp/x.sock", "--node-id=n", "--mode=controller", "--state-dir=/tmp/s"],
            "--state-dir",
        ),
        (["--endpoint=unix:///tmp/x.sock", "--node-id=n", "--mode=everything"], "--mode"),
        (["--endpoint=unix:///tmp/x.sock", "--node-id=n", "--s3-endpoint-url=ftp://x"], "endpoint URL"),
    ],
)
def test_bad_flags_are_refused_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    args = [arg.replace("/tmp/x.sock", str(tmp_path / "x.sock")) for arg in args]
    result = subprocess.run(
        [sys.executable, "-m", "s3csi", "driver", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
