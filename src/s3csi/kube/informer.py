"""A list-then-watch cache of one resource, narrowed by selectors: the node plugin's view of the objects on
its node (docs/kubernetes.md, "The node plugin's Kubernetes runtime").

One watch per resource and node plugin, rather than one per NodePublishVolume: the node plugin's restart
(re-adopting its mounts) and every publish read the same cache, without a request to the API server each.
The watch resumes from the last ``resourceVersion`` it saw (events and ``BOOKMARK``s), relists after
``410 Gone``, and relists after any other failure with a growing pause, logging the failure once per
streak. Objects are kept as the API server sent them (JSON dicts).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from kubernetes_asyncio import watch
from kubernetes_asyncio.client.exceptions import ApiException

from s3csi.kube.client import RBAC_MANIFEST, status_message

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]
ListCall = Callable[..., Awaitable[Any]]

WATCH_TIMEOUT_S = 300
"""Seconds one watch request lasts before it is renewed from its last resourceVersion."""
_FIRST_PAUSE_S = 0.5
_LONGEST_PAUSE_S = 30.0


async def read_json(response: Any) -> JsonObject:
    """The JSON body of a response the library left raw (``_preload_content=False``); ApiException for a
    status other than 2xx, which the library then does not raise itself."""
    try:
        data = await response.read()
    finally:
        response.release()
    if not 200 <= response.status <= 299:
        error = ApiException(status=response.status, reason=response.reason)
        error.body = data
        raise error
    body: JsonObject = json.loads(data)
    return body


def watch_error(status: int, body: str | bytes | None, resource: str) -> str:
    """What a failed list or watch of ``resource`` means, naming the RBAC rule when access was refused."""
    reason = status_message(body)
    if status in (401, 403):
        problem = "the node plugin's token was not accepted" if status == 401 else "forbidden"
        return (
            f"Kubernetes API: list/watch {resource}: {problem} (HTTP {status}{reason}); the node plugin's "
            f"service account needs RBAC verbs list and watch on {resource} ({RBAC_MANIFEST})"
        )
    return f"Kubernetes API: list/watch {resource}: HTTP {status}{reason}"


class Informer:
    """``objects`` (name → object) of ``resource`` as ``list_call`` selects them, kept current by ``run``.

    ``list_call`` is a kubernetes-asyncio list function with its positional arguments bound (namespace,
    or group/version/plural); the selectors are passed to it on every list and watch.
    """

    def __init__(
        self,
        resource: str,
        list_call: ListCall,
        *,
        field_selector: str = "",
        label_selector: str = "",
        request_timeout_s: float = 10.0,
    ) -> None:
        self.resource = resource
        self.objects: dict[str, JsonObject] = {}
        self.synced = asyncio.Event()
        self.refused = asyncio.Event()
        """Set while the API server refuses this client (401, 403): retries are futile until RBAC changes."""
        self.last_error = ""
        self._list_call = list_call
        self._selectors = {"field_selector": field_selector, "label_selector": label_selector}
        self._request_timeout_s = request_timeout_s
        self._change = asyncio.Event()

    def changed(self) -> asyncio.Event:
        """An event set at the next change of ``objects``: take it before looking, then wait on it."""
        return self._change

    def _notify(self) -> None:
        change, self._change = self._change, asyncio.Event()
        change.set()

    async def run(self) -> None:
        """List, then watch, forever (until cancelled)."""
        pause = _FIRST_PAUSE_S
        while True:
            try:
                version = await self._relist()
                pause = _FIRST_PAUSE_S
                await self._watch(version)
            except ApiException as exc:
                if exc.status == 410:  # the watch's resourceVersion was compacted: list afresh
                    log.info("%s: watch expired, listing again", self.resource)
                    continue
                self._failed(watch_error(exc.status or 0, exc.body, self.resource))
                if exc.status in (401, 403):
                    self.refused.set()
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                self._failed(
                    f"Kubernetes API: watch {self.resource}: {exc.__class__.__name__}: {str(exc)[:200]}"
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE_S)

    def _failed(self, message: str) -> None:
        if message != self.last_error:
            log.warning("%s (retrying)", message)
        self.last_error = message

    async def _relist(self) -> str:
        timeout = aiohttp.ClientTimeout(total=self._request_timeout_s)
        response = await self._list_call(**self._selectors, _preload_content=False, _request_timeout=timeout)
        body: JsonObject = await read_json(response)
        self.objects = {item["metadata"]["name"]: item for item in body.get("items", [])}
        self.last_error = ""
        self.refused.clear()
        self.synced.set()
        self._notify()
        version: str = body.get("metadata", {}).get("resourceVersion", "")
        return version

    async def _watch(self, version: str) -> None:
        # A connection that goes silent is noticed: the server ends every watch after WATCH_TIMEOUT_S.
        timeout = aiohttp.ClientTimeout(total=None, sock_read=WATCH_TIMEOUT_S + 30)
        while True:
            # "object": the events stay JSON, not decoded into the library's models.
            async with watch.Watch(return_type="object") as stream:
                async for event in stream.stream(
                    self._list_call,
                    **self._selectors,
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=WATCH_TIMEOUT_S,
                    _request_timeout=timeout,
                ):
                    self._apply(event["type"], event["raw_object"])
                version = stream.resource_version or version

    def _apply(self, kind: str, obj: JsonObject) -> None:
        if kind == "BOOKMARK":
            return
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            self.objects.pop(name, None)
        else:
            self.objects[name] = obj
        self._notify()
