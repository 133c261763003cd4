"""Start and stop the local S3 server the benchmark runs against: s3rver (npm `s3rver@3`).

s3rver rather than moto: moto serves ranged GETs slowly enough to hide every mounter's own cost.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

# Where `make bench` installs the npm package; override with S3RVER_JS.
DEFAULT_S3RVER_JS = Path("/opt/s3csi/bench-node/node_modules/s3rver/bin/s3rver.js")
# s3rver accepts only this key pair.
ACCESS_KEY = "S3RVER"
SECRET_KEY = "S3RVER"
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class S3rver:
    """One s3rver process on 127.0.0.1 with its data in a fresh temporary directory."""

    def __init__(self, process: subprocess.Popen[bytes], directory: Path, port: int) -> None:
        self.process = process
        self.directory = directory
        self.port = port
        self.endpoint_url = f"http://127.0.0.1:{port}"

    @classmethod
    def start(cls, timeout: float = 30.0) -> S3rver:
        script = Path(os.environ.get("S3RVER_JS", DEFAULT_S3RVER_JS))
        if not script.is_file():
            raise RuntimeError(f"s3rver not found at {script} (run `make bench`, or set S3RVER_JS)")
        directory = Path(tempfile.mkdtemp(prefix="s3csi-bench-s3rver-"))
        port = free_port()
        env = dict(os.environ)
        # s3rver 3.7 on Node 20 needs the legacy provider for the MD5 of paged listings' tokens.
        env["NODE_OPTIONS"] = "--openssl-legacy-provider"
        argv = ["node", str(script), "-d", str(directory), "-a", "127.0.0.1", "-p", str(port), "--silent"]
        process = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True
        )
        server = cls(process, directory, port)
        try:
            server._wait_ready(timeout)
        except BaseException:
            server.stop()
            raise
        return server

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"s3rver exited with status {self.process.returncode} while starting")
            try:
                # Any HTTP answer (an S3 error document included) means the server is listening.
                urllib.request.urlopen(self.endpoint_url, timeout=1.0).close()
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"s3rver did not answer on {self.endpoint_url} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> S3rver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
