"""Calls to the API server by path, through kubernetes-asyncio's ApiClient (authentication, TLS, the
rotating token of s3csi.kube.client), on raw JSON: the controller and the node plugin's watches decode every
watched object, and ``json.loads`` is 50 times cheaper than the library's models
(docs/kubernetes.md#why-this-library)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.client.exceptions import ApiException

from s3csi.errors import Unavailable
from s3csi.kube.client import new_api_client
from s3csi.kube.settings import KubeApiSettings

JsonObject = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"


class ApiError(Exception):
    """A call that failed: ``status`` is the HTTP status, 0 when no answer came."""

    def __init__(self, status: int, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        """The message of the API server's Status answer ("" when none came)."""


def path_of(group: str, version: str, plural: str, namespace: str = "", name: str = "") -> str:
    base = f"/api/{version}" if not group else f"/apis/{group}/{version}"
    if namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{plural}"
    return f"{base}/{name}" if name else base


def _reason(body: bytes) -> str:
    try:
        status: Any = json.loads(body)
    except ValueError:
        return body[:200].decode(errors="replace")
    message = status.get("message") if isinstance(status, dict) else None
    return str(message)[:300] if message else ""


class Api:
    """GET/POST/PUT/DELETE and watch of JSON objects by path; ``close()`` when done."""

    def __init__(self, settings: KubeApiSettings) -> None:
        self.settings = settings
        self._client: ApiClient | None = None

    def _api(self) -> ApiClient:
        if self._client is None:
            try:
                self._client = new_api_client(self.settings)
            except Unavailable as exc:
                raise ApiError(0, str(exc)) from None
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _open(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | int | bool] | None,
        body: JsonObject | None,
        *,
        limits: aiohttp.ClientTimeout,
        content_type: str = "application/json",
    ) -> Any:
        what = f"{method} {path}"
        try:
            return await self._api().call_api(
                path,
                method,
                query_params=[
                    (k, str(v).lower() if isinstance(v, bool) else v) for k, v in (query or {}).items()
                ],
                header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body,
                auth_settings=["BearerToken"],
                _preload_content=False,
                _request_timeout=limits,
            )
        except ApiException as exc:  # raised before any answer (a request it cannot build)
            raise ApiError(exc.status or 0, f"{what}: {exc.reason}") from None
        except TimeoutError:
            raise ApiError(0, f"{what}: no answer within {limits.total:g} s") from None
        except aiohttp.ClientError as exc:
            raise ApiError(0, f"{what}: {exc.__class__.__name__}: {str(exc)[:200]}") from None

    async def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int | bool] | None = None,
        body: JsonObject | None = None,
        content_type: str = "application/json",
    ) -> JsonObject:
        """The JSON answer of one call; ApiError for a non-2xx answer or none."""
        timeout = aiohttp.ClientTimeout(
            total=self.settings.request_timeout_s, connect=self.settings.connect_timeout_s
        )
        response = await self._open(method, path, query, body, limits=timeout, content_type=content_type)
        try:
            data: bytes = await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ApiError(0, f"{method} {path}: {exc.__class__.__name__}") from None
        finally:
            response.release()
        if not 200 <= response.status <= 299:
            reason = _reason(data)
            raise ApiError(response.status, f"{method} {path}: HTTP {response.status}: {reason}", reason)
        found: JsonObject = json.loads(data)
        return found

    async def watch(
        self, path: str, query: Mapping[str, str | int | bool], timeout_s: int
    ) -> AsyncIterator[JsonObject]:
        """The events of one watch request (ended by the server after ``timeout_s``)."""
        timeout = aiohttp.ClientTimeout(
            total=timeout_s + self.settings.request_timeout_s, connect=self.settings.connect_timeout_s
        )
        params = {**query, "watch": True, "allowWatchBookmarks": True, "timeoutSeconds": timeout_s}
        response = await self._open("GET", path, params, None, limits=timeout)
        try:
            if not 200 <= response.status <= 299:
                data = await response.read()
                reason = _reason(data)
                raise ApiError(response.status, f"watch {path}: HTTP {response.status}: {reason}", reason)
            while True:
                try:
                    line = await response.content.readline()
                except (TimeoutError, aiohttp.ClientError) as exc:
                    raise ApiError(0, f"watch {path}: {exc.__class__.__name__}") from None
                if not line:
                    return
                if line.strip():
                    event: JsonObject = json.loads(line)
                    yield event
        finally:
            response.release()
