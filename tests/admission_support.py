"""Helpers for the admission tests and bench/admission.py: a test CA, a running ``s3csi webhook``, an HTTPS
client that trusts only that CA, and AdmissionReview builders. No decision logic of the webhook lives here.
"""

from __future__ import annotations

import datetime
import http.client
import ipaddress
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.polling import wait_until

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


@dataclass(frozen=True)
class CertificateAuthority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    path: Path

    @classmethod
    def create(cls, directory: Path) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"s3csi test CA {uuid.uuid4().hex[:8]}")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(key, hashes.SHA256())
        )
        path = directory / "ca.crt"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(key=key, cert=cert, path=path)

    def issue(self, cert_path: Path, key_path: Path, host_name: str = "localhost") -> int:
        """A server certificate for ``host_name`` and 127.0.0.1, written atomically (as a Secret volume swaps
        files).

        Returns its serial number.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "s3csi-webhook.s3csi.svc")]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(host_name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write_atomically(key_path, key_pem)
        _write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        return serial

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.path))


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class WebhookProcess:
    """``s3csi webhook`` in a child process on a free port of 127.0.0.1, its log in a file."""

    def __init__(self, directory: Path, ca: CertificateAuthority, *extra_args: str) -> None:
        self.ca = ca
        self.cert = directory / "tls.crt"
        self.key = directory / "tls.key"
        self.serial = ca.issue(self.cert, self.key)
        self.log_path = directory / "webhook.log"
        argv = [sys.executable, "-m", "s3csi", "webhook", "--cert", str(self.cert), "--key", str(self.key)]
        # Metrics on a unix socket, not the default TCP port: tests run webhooks side by side.
        self.metrics_path = str(directory / "metrics.sock")
        argv += [
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            f"--metrics-address=unix:{self.metrics_path}",
            *extra_args,
        ]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.port = self._wait_until_listening()

    def _wait_until_listening(self) -> int:
        def port() -> int | None:
            match = re.search(r"listening on https://127\.0\.0\.1:(\d+)", self.log())
            if match:
                return int(match.group(1))
            if self.process.poll() is not None:
                raise AssertionError(f"s3csi webhook exited with {self.process.returncode}:\n{self.log()}")
            return None

        listening = wait_until(port, within=STARTUP_TIMEOUT)
        if listening is None:
            self.process.kill()
            raise AssertionError(f"s3csi webhook did not listen within {STARTUP_TIMEOUT}s:\n{self.log()}")
        return listening

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def connect(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            "127.0.0.1", self.port, context=self.ca.client_context(), timeout=10
        )

    def terminate(self) -> int:
        """SIGTERM, then the exit status (killed after STOP_TIMEOUT so a hang cannot outlive the test)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"s3csi webhook ignored SIGTERM for {STOP_TIMEOUT}s:\n{self.log()}"
            ) from None


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes

    def review(self) -> dict[str, Any]:
        assert self.status == 200, (self.status, self.body[:500])
        assert self.content_type.startswith("application/json"), self.content_type
        review: dict[str, Any] = json.loads(self.body)
        assert review["apiVersion"] == "admission.k8s.io/v1" and review["kind"] == "AdmissionReview"
        return review


def post(
    conn: http.client.HTTPConnection,
    path: str,
    body: bytes,
    content_type: str = "application/json",
    method: str = "POST",
) -> Reply:
    conn.request(method, path, body=body, headers={"Content-Type": content_type})
    response = conn.getresponse()
    data = response.read()
    return Reply(response.status, response.getheader("Content-Type", ""), data)


def admission_review(obj: object, *, kind: str, operation: str = "CREATE", **request: Any) -> dict[str, Any]:
    """An AdmissionReview v1 as the API server sends it for a core/v1 object."""
    resource = {"Pod": "pods", "Namespace": "namespaces"}.get(kind, kind.lower() + "s")
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": resource},
            "requestKind": {"group": "", "version": "v1", "kind": kind},
            "name": "test",
            "namespace": "team-a",
            "operation": operation,
            "userInfo": {"username": "admin"},
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            **request,
        },
    }
