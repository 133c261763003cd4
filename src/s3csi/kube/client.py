"""An async client for the two GETs the node plugin makes: a pod and a service account.

Every call has a timeout (:class:`~s3csi.kube.settings.KubeApiSettings`); its failures are translated once,
here, into :mod:`s3csi.errors` (:func:`api_error`). The bearer token is read from its file and read again
when the file changes (kubelet rotates bound service-account tokens); it is sent in a header only and never
appears in a log line or an error.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, cast
from urllib.parse import quote

import aiohttp

from s3csi.errors import Internal, InvalidArgument, NotFound, PermissionDenied, S3csiError, Unavailable
from s3csi.kube.objects import Pod, ServiceAccount
from s3csi.kube.settings import KubeApiSettings

# RFC 1123 subdomain: pod and service-account names; namespaces are labels, a subset.
_OBJECT_NAME = re.compile(r"[a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?")
RBAC_MANIFEST = "deploy/node-rbac.yaml"


class TokenFile:
    """The token in ``path``, read again when the file is replaced or rewritten."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._stamp: tuple[int, int, int, int] | None = None
        self._token = ""

    def read(self) -> str:
        try:
            info = os.stat(self.path)
            stamp = (info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)
            if stamp != self._stamp:
                with open(self.path, encoding="utf-8") as file:
                    self._token, self._stamp = file.read().strip(), stamp
        except (OSError, UnicodeDecodeError) as exc:
            raise Unavailable(
                f"the Kubernetes API token file {self.path} cannot be read ({exc.__class__.__name__})"
            ) from None
        if not self._token:
            raise Unavailable(f"the Kubernetes API token file {self.path} is empty")
        return self._token


def api_error(status: int, body: bytes, resource: str, what: str) -> S3csiError:
    """The error for a non-200 answer to ``get`` of ``resource`` (``what`` names the object)."""
    reason = _status_message(body)
    if status == 404:
        return NotFound(f"Kubernetes API: {what} not found")
    if status in (401, 403):
        problem = "the node plugin's token was not accepted" if status == 401 else "forbidden"
        return PermissionDenied(
            f"Kubernetes API: get {what}: {problem} (HTTP {status}{reason}); the node plugin's service "
            f"account needs RBAC verb get on {resource} ({RBAC_MANIFEST})"
        )
    if status == 429 or status >= 500:
        return Unavailable(f"Kubernetes API: get {what}: HTTP {status}{reason}; retry later")
    return Internal(f"Kubernetes API: get {what}: unexpected HTTP {status}{reason}")


def _status_message(body: bytes) -> str:
    """``: message`` of a Kubernetes Status body, trimmed; "" when there is none."""
    try:
        status: Any = json.loads(body)
    except ValueError:
        return ""
    message = status.get("message") if isinstance(status, dict) else None
    return f": {message[:200]}" if isinstance(message, str) and message else ""


def _object_name(kind: str, name: str) -> str:
    if not _OBJECT_NAME.fullmatch(name):
        raise InvalidArgument(f"{kind} {name[:80]!r} is not a Kubernetes object name")
    return quote(name, safe="")


class KubeClient:
    """``get_pod`` and ``get_service_account`` against one API server; ``close()`` when done."""

    def __init__(self, settings: KubeApiSettings) -> None:
        self.settings = settings
        self._token = TokenFile(settings.token_file)
        self._ssl = settings.ssl_context()
        self._session: aiohttp.ClientSession | None = None

    async def get_pod(self, namespace: str, name: str) -> Pod:
        return cast(Pod, await self._get("pods", "Pod", namespace, name))

    async def get_service_account(self, namespace: str, name: str) -> ServiceAccount:
        return cast(ServiceAccount, await self._get("serviceaccounts", "ServiceAccount", namespace, name))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(
                total=self.settings.request_timeout_s, connect=self.settings.connect_timeout_s
            )
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl), timeout=timeout, trust_env=False
            )
        return self._session

    async def _get(self, resource: str, kind: str, namespace: str, name: str) -> dict[str, Any]:
        path = (
            f"/api/v1/namespaces/{_object_name('namespace', namespace)}/{resource}/{_object_name(kind, name)}"
        )
        what = f"{resource} {namespace}/{name}"
        headers = {"Authorization": f"Bearer {self._token.read()}", "Accept": "application/json"}
        try:
            async with self._client_session().get(self.settings.base_url + path, headers=headers) as reply:
                status, body = reply.status, await reply.read()
        except TimeoutError:
            raise Unavailable(
                f"Kubernetes API: get {what} timed out after {self.settings.request_timeout_s:g} s"
            ) from None
        except aiohttp.ClientError as exc:
            raise Unavailable(
                f"Kubernetes API at {self.settings.base_url} unreachable for get {what}: "
                f"{exc.__class__.__name__}: {str(exc)[:200]}"
            ) from None
        if status != 200:
            raise api_error(status, body, resource, what)
        try:
            found: Any = json.loads(body)
        except ValueError:
            raise Unavailable(f"Kubernetes API: get {what}: the answer is not JSON") from None
        if not isinstance(found, dict) or found.get("kind") != kind:
            raise Unavailable(f"Kubernetes API: get {what}: the answer is not a {kind}")
        return found
