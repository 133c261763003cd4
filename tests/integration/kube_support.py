"""A fake Kubernetes API server for the node plugin's tests: HTTPS on 127.0.0.1 with a test CA, serving Pod
and ServiceAccount objects (each validated with kubernetes-validate, so the fixtures have real shapes) to
a client that presents the current bearer token. Only GET of one namespaced object is served, as the node
plugin needs; failures (403, 500, a hang) can be set per resource."""

from __future__ import annotations

import json
import os
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import kubernetes_validate

from tests.admission_support import CertificateAuthority

KUBERNETES_VERSION = kubernetes_validate.latest_version()
_PATH_PREFIX = "/api/v1/namespaces/"
_RESOURCES = {"pods": "Pod", "serviceaccounts": "ServiceAccount"}


def pod(
    namespace: str,
    name: str,
    *,
    uid: str | None = None,
    annotations: dict[str, str] | None = None,
    service_account: str | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": uid or str(uuid.uuid4())}
    if annotations:
        metadata["annotations"] = annotations
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "busybox"}]}
    if service_account:
        spec["serviceAccountName"] = service_account
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def service_account(namespace: str, name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": str(uuid.uuid4())}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}


def _status(code: int, reason: str, message: str) -> bytes:
    body = {"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure"}
    return json.dumps({**body, "message": message, "reason": reason, "code": code}).encode()


@dataclass
class FakeKubeApi:
    """``url``, ``ca_file`` and ``token_file`` are what ``s3csi driver --kube-api-url/--kube-ca-file/
    --kube-token-file`` take. ``rotate_token()`` changes the token the server accepts and the file."""

    directory: Path
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    forbidden: set[str] = field(default_factory=set)  # resources answered with 403
    failing: set[str] = field(default_factory=set)  # resources answered with 500
    hanging: set[str] = field(default_factory=set)  # resources answered only after `release`
    seen: list[tuple[str, bool]] = field(default_factory=list)  # (path, token accepted)
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.ca = CertificateAuthority.create(self.directory)
        cert, key = self.directory / "api.crt", self.directory / "api.key"
        self.ca.issue(cert, key)
        self.token_file = self.directory / "token"
        self.token = ""
        self.rotate_token()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def ca_file(self) -> Path:
        return self.ca.path

    def driver_args(self) -> list[str]:
        return [
            f"--kube-api-url={self.url}",
            f"--kube-token-file={self.token_file}",
            f"--kube-ca-file={self.ca_file}",
        ]

    def rotate_token(self) -> str:
        """A new token, written as kubelet writes projected tokens: a new file swapped in atomically."""
        self.token = f"token-{uuid.uuid4().hex}"
        tmp = self.token_file.with_name("token.tmp")
        tmp.write_text(self.token + "\n")
        os.replace(tmp, self.token_file)
        return self.token

    def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        resource = {kind: name for name, kind in _RESOURCES.items()}[obj["kind"]]
        self.objects[(resource, obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj
        return obj

    def remove(self, resource: str, namespace: str, name: str) -> None:
        del self.objects[(resource, namespace, name)]

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def answer(self, path: str, authorization: str | None) -> tuple[int, bytes]:
        accepted = authorization == f"Bearer {self.token}"
        self.seen.append((path, accepted))
        if not accepted:
            return 401, _status(401, "Unauthorized", "Unauthorized")
        parts = path.removeprefix(_PATH_PREFIX).split("/") if path.startswith(_PATH_PREFIX) else []
        if len(parts) != 3 or parts[1] not in _RESOURCES:
            return 404, _status(404, "NotFound", "the server could not find the requested resource")
        namespace, resource, name = parts
        if resource in self.hanging:
            self.release.wait(60)
        if resource in self.forbidden:
            message = (
                f'{resource} "{name}" is forbidden: User "system:serviceaccount:kube-system:s3csi-node" '
                f'cannot get resource "{resource}" in API group "" in the namespace "{namespace}"'
            )
            return 403, _status(403, "Forbidden", message)
        if resource in self.failing:
            return 500, _status(500, "InternalError", "etcdserver: request timed out")
        found = self.objects.get((resource, namespace, name))
        if found is None:
            return 404, _status(404, "NotFound", f'{resource} "{name}" not found')
        return 200, json.dumps(found).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                status, body = api.answer(self.path, self.headers.get("Authorization"))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
