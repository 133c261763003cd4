"""An S3 server on 127.0.0.1 for the demo and the tests: moto's server in a child process.

It runs in its own process so that its work never competes with the file system or the driver for
the interpreter lock of the process under test. Clients address it path-style
(``http://127.0.0.1:PORT/bucket/key``); moto accepts any credentials unless IAM enforcement is asked
for with ``enforce_iam=True`` (then only keys created through its IAM API work).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from types import TracebackType

from s3csi.errors import Unavailable

REGION = "us-east-1"
# Placeholder keys for an S3 server that checks none; never real credentials.
ACCESS_KEY_ID = "s3csi-local"
SECRET_ACCESS_KEY = "s3csi-local-secret"

START_TIMEOUT_S = 30.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedS3Server:
    """A running moto server. Use as a context manager, or call :meth:`stop`."""

    endpoint_url: str
    process: subprocess.Popen[bytes]
    region: str = REGION
    access_key_id: str = ACCESS_KEY_ID
    secret_access_key: str = SECRET_ACCESS_KEY
    _log: str = field(default="", repr=False)

    @classmethod
    def start(cls, *, host: str = "127.0.0.1", port: int = 0, enforce_iam: bool = False) -> EmbeddedS3Server:
        port = port or free_port(host)
        env = dict(os.environ)
        if enforce_iam:
            # moto checks signatures and IAM policies once this many unauthenticated calls were made.
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
        log_path = f"/tmp/s3csi-moto-{port}.log"
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        server = cls(endpoint_url=f"http://{host}:{port}", process=process, _log=log_path)
        server._wait_ready()
        return server

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise Unavailable(
                    f"the embedded S3 server exited with status {self.process.returncode}; see {self._log}"
                )
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1),
            ):
                return
            time.sleep(0.1)
        self.stop()
        raise Unavailable(
            f"the embedded S3 server did not answer on {self.endpoint_url} within {START_TIMEOUT_S:.0f} s"
        )

    def reset(self) -> None:
        """Forget every bucket and object (moto's reset API)."""
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def allow_unauthenticated_calls(self, count: int | None) -> None:
        """With IAM enforcement, let this many more calls through unchecked (None: all of them), e.g.
        to create users and policies before enforcement starts (moto's reset-auth API)."""
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/reset-auth",
            data=("inf" if count is None else str(count)).encode(),
            method="POST",
            # Not a form: moto reads the raw body.
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def client_env(self) -> dict[str, str]:
        """Environment variables that point an AWS SDK (or ``s3csi mount``) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._log)

    def __enter__(self) -> EmbeddedS3Server:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
