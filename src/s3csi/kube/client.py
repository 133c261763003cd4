"""The node plugin's Kubernetes API calls, through kubernetes-asyncio (docs/kubernetes.md, "The Kubernetes
client"): a pod and a service account, by name.

Every call has a timeout (:class:`~s3csi.kube.settings.KubeApiSettings`); its failures are translated once,
here, into :mod:`s3csi.errors` (:func:`api_error`). The bearer token is read from its file and read again
when the file changes (kubelet rotates bound service-account tokens): the library asks for it before each
request. It is sent in a header only and never appears in a log line or an error.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
from kubernetes_asyncio.client import ApiClient, Configuration, CoreV1Api, V1Pod, V1ServiceAccount
from kubernetes_asyncio.client.exceptions import ApiException

from s3csi.errors import Internal, NotFound, PermissionDenied, S3csiError, Unavailable
from s3csi.kube.settings import KubeApiSettings

RBAC_MANIFEST = "deploy/node-rbac.yaml"
_TOKEN_KEY = "BearerToken"  # the library's name for the bearer-token credential
T = TypeVar("T")

# The library logs every response body at DEBUG; `s3csi driver --debug` must not print a Secret's data.
logging.getLogger("kubernetes_asyncio").setLevel(logging.INFO)


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


def api_configuration(settings: KubeApiSettings) -> Configuration:
    """The library's configuration: the server, its CA, and the token from ``settings.token_file``, looked at
    again before every request (the library calls ``refresh_api_key_hook`` each time it builds headers)."""
    configuration = Configuration(host=settings.base_url, api_key_prefix={_TOKEN_KEY: "Bearer"})
    configuration.ssl_ca_cert = settings.ca_file
    token = TokenFile(settings.token_file)

    def refresh(config: Configuration) -> None:
        config.api_key[_TOKEN_KEY] = token.read()

    configuration.refresh_api_key_hook = refresh
    configuration.api_key[_TOKEN_KEY] = ""  # declares the credential; `refresh` fills it per request
    return configuration


def new_api_client(settings: KubeApiSettings) -> ApiClient:
    """The library's client for ``settings``; Unavailable naming the CA file when it cannot be used."""
    try:
        return ApiClient(api_configuration(settings))
    except (OSError, ssl.SSLError) as exc:
        raise Unavailable(
            f"the Kubernetes API CA file {settings.ca_file} cannot be used ({exc.__class__.__name__})"
        ) from None


def api_error(status: int, body: str | bytes | None, resource: str, what: str) -> S3csiError:
    """The error for a non-2xx answer to ``get`` of ``resource`` (``what`` names the object)."""
    reason = status_message(body)
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


def status_message(body: str | bytes | None) -> str:
    """``: message`` of a Kubernetes Status body, trimmed; "" when there is none."""
    try:
        status: Any = json.loads(body or b"")
    except ValueError:
        return ""
    message = status.get("message") if isinstance(status, dict) else None
    return f": {message[:200]}" if isinstance(message, str) and message else ""


class KubeClient:
    """``get_pod`` and ``get_service_account`` against one API server; ``close()`` when done.

    The library's HTTP session needs a running event loop: it is made on the first call."""

    def __init__(self, settings: KubeApiSettings) -> None:
        self.settings = settings
        self._api: ApiClient | None = None

    async def get_pod(self, namespace: str, name: str) -> V1Pod:
        return await self._get(
            V1Pod,
            "pods",
            f"{namespace}/{name}",
            lambda core, kw: core.read_namespaced_pod(name, namespace, **kw),
        )

    async def get_service_account(self, namespace: str, name: str) -> V1ServiceAccount:
        return await self._get(
            V1ServiceAccount,
            "serviceaccounts",
            f"{namespace}/{name}",
            lambda core, kw: core.read_namespaced_service_account(name, namespace, **kw),
        )

    async def close(self) -> None:
        if self._api is not None:
            await self._api.close()
            self._api = None

    def _api_client(self) -> ApiClient:
        if self._api is None:
            self._api = new_api_client(self.settings)
        return self._api

    async def _get(
        self,
        kind: type[T],
        resource: str,
        name: str,
        call: Callable[[CoreV1Api, dict[str, Any]], Awaitable[Any]],
    ) -> T:
        what = f"{resource} {name}"
        timeout = aiohttp.ClientTimeout(
            total=self.settings.request_timeout_s, connect=self.settings.connect_timeout_s
        )
        try:
            found = await call(CoreV1Api(self._api_client()), {"_request_timeout": timeout})
        except ApiException as exc:
            raise api_error(exc.status or 0, exc.body, resource, what) from None
        except TimeoutError:
            raise Unavailable(
                f"Kubernetes API: get {what} timed out after {self.settings.request_timeout_s:g} s"
            ) from None
        except aiohttp.ClientError as exc:
            raise Unavailable(
                f"Kubernetes API at {self.settings.base_url} unreachable for get {what}: "
                f"{exc.__class__.__name__}: {str(exc)[:200]}"
            ) from None
        if not isinstance(found, kind):  # the library hands back what it could not decode as it came
            raise Unavailable(f"Kubernetes API: get {what}: the answer is not a {kind.__name__[2:]}")
        return found
