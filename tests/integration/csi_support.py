"""Helpers for the CSI tests: a driver in a child process or in this process, and a real grpc.aio
channel on its unix socket."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from s3csi.csi.proto import csi_pb2, csi_pb2_grpc
from s3csi.csi.server import serve
from s3csi.csi.settings import DriverSettings, Mode
from s3csi.metrics.node import NodeMetrics
from s3csi.s3 import Credentials, S3Settings, StaticCredentials
from s3csi.volume.publish_spec import PublishSpec
from tests.polling import wait_until_async

T = TypeVar("T")
START_TIMEOUT_S = 30.0
MOUNT = csi_pb2.VolumeCapability.MountVolume
MODE = csi_pb2.VolumeCapability.AccessMode


def capability(
    mode: Any = MODE.MULTI_NODE_MULTI_WRITER,
    *,
    mount_flags: tuple[str, ...] = (),
    volume_mount_group: str = "",
    block: bool = False,
) -> csi_pb2.VolumeCapability:
    if block:
        return csi_pb2.VolumeCapability(
            block=csi_pb2.VolumeCapability.BlockVolume(), access_mode=MODE(mode=mode)
        )
    return csi_pb2.VolumeCapability(
        mount=MOUNT(mount_flags=mount_flags, volume_mount_group=volume_mount_group),
        access_mode=MODE(mode=mode),
    )


def run(coroutine: Awaitable[T]) -> T:
    async def main() -> T:
        return await coroutine

    return asyncio.run(main())


async def rpc(socket_path: str, service: str, method: str, request: Any, deadline_s: float = 60) -> Any:
    """One call on a fresh channel: ``await rpc(sock, "Controller", "CreateVolume", request)``."""
    async with grpc.aio.insecure_channel(f"unix://{socket_path}") as channel:
        stub = getattr(csi_pb2_grpc, f"{service}Stub")(channel)
        return await getattr(stub, method)(request, timeout=deadline_s)


def code_of(call: Callable[[], Awaitable[Any]]) -> tuple[grpc.StatusCode, str]:
    """Run one call; its status code and details (OK and "" on success)."""
    try:
        run(call())
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details() or ""
    return grpc.StatusCode.OK, ""


async def wait_serving(
    socket_path: str, process: subprocess.Popen[bytes] | None = None
) -> csi_pb2.ProbeResponse:
    """The first Probe answer, ready or not, of a driver starting on ``socket_path``."""
    answer: list[csi_pb2.ProbeResponse] = []

    async def answered() -> bool:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the driver exited with status {process.returncode} before serving")
        try:
            answer.append(await rpc(socket_path, "Identity", "Probe", csi_pb2.ProbeRequest(), deadline_s=10))
        except grpc.aio.AioRpcError:
            return False  # not listening yet
        return True

    if not await wait_until_async(answered, within=START_TIMEOUT_S):
        raise AssertionError(f"the driver did not serve on {socket_path} within {START_TIMEOUT_S:.0f} s")
    return answer[0]


async def wait_ready(socket_path: str, process: subprocess.Popen[bytes] | None = None) -> None:

    async def ready() -> bool:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the driver exited with status {process.returncode} before serving")
        try:
            response = await rpc(socket_path, "Identity", "Probe", csi_pb2.ProbeRequest(), deadline_s=2)
        except grpc.aio.AioRpcError:
            return False  # not listening yet
        return bool(response.ready.value)

    if not await wait_until_async(ready, within=START_TIMEOUT_S):
        raise AssertionError(f"the driver did not serve on {socket_path} within {START_TIMEOUT_S:.0f} s")


@dataclass
class DriverProcess:
    """``s3csi driver`` in a child process, its stderr in ``log_path``; its metrics at ``metrics_path``."""

    socket_path: str
    log_path: Path
    process: subprocess.Popen[bytes]
    metrics_path: str = ""

    def log(self) -> str:
        return self.log_path.read_text()

    def terminate(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_driver(
    directory: Path, env: Mapping[str, str], *args: str, socket_name: str = "csi.sock", wait: bool = True
) -> DriverProcess:
    socket_path = str(directory / socket_name)
    log_path = directory / f"{socket_name}.log"
    # On a unix socket beside the CSI one, not the default TCP port: tests run drivers side by side.
    metrics_path = str(directory / f"{socket_name}.metrics")
    argv = [sys.executable, "-m", "s3csi", "driver", f"--endpoint=unix://{socket_path}", "--node-id=node-1"]
    if not any(arg.startswith("--metrics-address") for arg in args):
        argv.append(f"--metrics-address=unix:{metrics_path}")
    with open(log_path, "ab") as log_file:
        process = subprocess.Popen(
            [*argv, *args],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **env},
        )
    driver = DriverProcess(socket_path, log_path, process, metrics_path)
    if wait:
        try:
            run(wait_ready(socket_path, process))
        except BaseException:
            driver.terminate()
            raise
    return driver


@pytest.fixture
def driver_factory(tmp_path: Path) -> Iterator[Callable[..., DriverProcess]]:
    """Start drivers in ``tmp_path``; every one is stopped at the end of the test, pass or fail."""
    started: list[DriverProcess] = []

    def factory(env: Mapping[str, str], *args: str, **kwargs: Any) -> DriverProcess:
        driver = start_driver(tmp_path, env, *args, **kwargs)
        started.append(driver)
        return driver

    yield factory
    for driver in started:
        driver.terminate()


@dataclass
class RecordingPublisher:
    """A VolumePublisher that records what it is asked: the node servicer's validation is the test."""

    published: list[PublishSpec] = field(default_factory=list)
    unpublished: list[tuple[str, str]] = field(default_factory=list)

    async def publish(self, spec: PublishSpec) -> None:
        self.published.append(spec)

    async def unpublish(self, volume_id: str, target_path: str) -> None:
        self.unpublished.append((volume_id, target_path))


@dataclass
class InProcessDriver:
    """The driver's server in a thread of this process (so a test can hand it a publisher)."""

    socket_path: str
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop
    stopping: asyncio.Event

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(timeout=60)


def start_in_process(
    settings: DriverSettings, publisher: Any, metrics: NodeMetrics | None = None
) -> InProcessDriver:
    loop = asyncio.new_event_loop()
    stopping = asyncio.Event()
    failure: list[BaseException] = []

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(
                serve(
                    settings,
                    StaticCredentials(Credentials("unused", "unused")),
                    publisher,
                    stopping,
                    metrics=metrics,
                )
            )
        except BaseException as exc:
            failure.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=main, name="csi-server", daemon=True)
    thread.start()
    driver = InProcessDriver(settings.socket_path, thread, loop, stopping)
    try:
        run(wait_ready(settings.socket_path))
    except BaseException:
        if failure:
            raise failure[0] from None
        driver.stop()
        raise
    return driver


def node_settings(directory: Path, kubelet_dir: str) -> DriverSettings:
    return DriverSettings(
        socket_path=str(directory / "node.sock"),
        node_id="node-1",
        mode=Mode.NODE,
        kubelet_dir=kubelet_dir,
        s3=S3Settings(),
        debug=True,
    )
