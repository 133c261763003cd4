"""A list+watch cache of one resource, as client-go's informer keeps one: the controller's view of the
cluster and the node plugin's view of its node (docs/kubernetes.md).

List (in pages), then watch from the list's ``resourceVersion``; resume each ended or failed watch from the
last ``resourceVersion`` seen (an event's or a ``BOOKMARK``'s); list again when the API server answers
``410 Gone`` (the version was compacted away). Failures are retried with a growing pause; a failure that
lasts (403 until the RBAC is fixed) is logged once per interval, not per retry. A refusal (401, 403) sets
``refused``, so a component that cannot work without the cache can fail its start naming the RBAC rule
instead of waiting. Objects stay raw JSON (:mod:`s3csi.kube.api` decodes the stream with ``json.loads``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from s3csi.kube.api import Api, ApiError, JsonObject
from s3csi.log_limit import RepeatLimiter

log = logging.getLogger(__name__)

PAGE_SIZE = 500
WATCH_TIMEOUT_S = 300
"""Seconds one watch request lasts before it is renewed from its last resourceVersion."""
FIRST_PAUSE_S = 0.5
LONGEST_PAUSE_S = 30.0
ObjectKey = tuple[str, str]
"""(namespace, name); namespace "" for a cluster-scoped object."""


def object_key(obj: Mapping[str, Any]) -> ObjectKey:
    metadata = obj.get("metadata") or {}
    return (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))


def _version(obj: Mapping[str, Any]) -> int | None:
    text = (obj.get("metadata") or {}).get("resourceVersion")
    return int(text) if isinstance(text, str) and text.isdigit() else None


def watch_error(status: int, reason: str, resource: str, account: str, rbac_manifest: str) -> str:
    """What a failed list or watch of ``resource`` means, naming the RBAC rule when access was refused;
    ``account`` names whose service account it is ("the node plugin")."""
    detail = f": {reason[:200]}" if reason else ""
    if status in (401, 403):
        problem = f"{account}'s token was not accepted" if status == 401 else "forbidden"
        return (
            f"Kubernetes API: list/watch {resource}: {problem} (HTTP {status}{detail}); {account}'s "
            f"service account needs RBAC verbs list and watch on {resource} ({rbac_manifest})"
        )
    if status == 0:
        return f"Kubernetes API: list/watch {resource}: no answer{detail}"
    return f"Kubernetes API: list/watch {resource}: HTTP {status}{detail}"


class Informer:
    """``objects`` mirrors the API's objects at ``path`` (with ``query``'s selectors), kept current by
    ``run``; ``synced`` is set once the first list is in; ``on_change`` is called after each change, and
    the event of ``changed()`` is set.

    ``resource`` (the plural), ``account`` and ``rbac_manifest`` name what to grant in the message of a
    refusal."""

    def __init__(
        self,
        api: Api,
        path: str,
        *,
        resource: str,
        account: str,
        rbac_manifest: str,
        query: Mapping[str, str] | None = None,
        on_change: Callable[[], None] | None = None,
        watch_timeout_s: int = WATCH_TIMEOUT_S,
    ) -> None:
        self.api = api
        self.path = path
        self.resource = resource
        self.account = account
        self.rbac_manifest = rbac_manifest
        self.query = dict(query or {})
        self.on_change = on_change
        self.watch_timeout_s = watch_timeout_s
        self.objects: dict[ObjectKey, JsonObject] = {}
        self.synced = asyncio.Event()
        self.refused = asyncio.Event()
        """Set while the API server refuses this client (401, 403): retries are futile until RBAC changes."""
        self.last_error = ""
        # Monotonic times of the first failure since the last success, and of the latest failure (None: none).
        self.failing_since: float | None = None
        self.failed_at: float | None = None
        self.events = 0
        """Watch events handled (bookmarks excluded): the benchmark's count."""
        self._version: str | None = None
        self._change = asyncio.Event()
        self._failures = RepeatLimiter()

    def changed(self) -> asyncio.Event:
        """An event set at the next change of ``objects``: take it before looking, then wait on it."""
        return self._change

    def put(self, obj: JsonObject) -> None:
        """Record an object this client wrote, unless the cache already holds a newer version."""
        key = object_key(obj)
        current = self.objects.get(key)
        new, old = _version(obj), _version(current) if current else None
        if current is None or new is None or old is None or new >= old:
            self.objects[key] = obj

    def drop(self, key: ObjectKey) -> None:
        self.objects.pop(key, None)

    async def run(self) -> None:
        """List, then watch, forever (until cancelled)."""
        pause = FIRST_PAUSE_S
        while True:
            try:
                if self._version is None:
                    await self._list()
                await self._watch()
                self._succeeded()  # a watch the server ended on time
                pause = FIRST_PAUSE_S
                continue
            except ApiError as exc:
                if exc.status == 410:
                    log.info("%s: watch expired, listing again (410 Gone)", self.path)
                    self._version = None
                    continue
                self._failed(exc)
            except ValueError as exc:  # a body that is not JSON: list afresh rather than trust the stream
                self._version = None
                self._failed(ApiError(0, f"{self.path}: {exc.__class__.__name__}", str(exc)[:200]))
            await asyncio.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE_S)

    def _failed(self, exc: ApiError) -> None:
        reason = exc.reason or (str(exc) if exc.status == 0 else "")
        self.last_error = watch_error(exc.status, reason, self.resource, self.account, self.rbac_manifest)
        self.failed_at = time.monotonic()
        if self.failing_since is None:
            self.failing_since = self.failed_at
        if exc.status in (401, 403):
            self.refused.set()
        self._failures.log(
            log,
            logging.WARNING,
            (exc.status, str(exc)),
            "list/watch of %s failed, retrying: %s",
            self.path,
            exc,
        )

    def _succeeded(self) -> None:
        self.last_error = ""
        self.failing_since = None
        self.refused.clear()

    def _notify(self) -> None:
        if self.on_change is not None:
            self.on_change()
        change, self._change = self._change, asyncio.Event()
        change.set()

    async def _list(self) -> None:
        objects: dict[ObjectKey, JsonObject] = {}
        query: dict[str, str | int | bool] = {**self.query, "limit": PAGE_SIZE}
        while True:
            page = await self.api.call("GET", self.path, query=query)
            for item in page.get("items") or []:
                objects[object_key(item)] = item
            metadata = page.get("metadata") or {}
            if not metadata.get("continue"):
                break
            query["continue"] = metadata["continue"]
        self.objects = objects
        self._version = str(metadata.get("resourceVersion") or "0")
        self._succeeded()
        self.synced.set()
        self._notify()

    async def _watch(self) -> None:
        query: dict[str, str | int | bool] = {**self.query, "resourceVersion": self._version or "0"}
        async for event in self.api.watch(self.path, query, self.watch_timeout_s):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                message = str(obj.get("message", ""))
                raise ApiError(int(obj.get("code") or 0), f"watch {self.path}: {message}", message)
            self._succeeded()
            version = (obj.get("metadata") or {}).get("resourceVersion")
            if version:
                self._version = str(version)
            if kind == "BOOKMARK":
                continue
            self.events += 1
            if kind == "DELETED":
                current = self.objects.get(object_key(obj))
                old, new = (_version(current), _version(obj)) if current else (None, None)
                if old is None or new is None or old <= new:  # not an object recreated since
                    self.objects.pop(object_key(obj), None)
            else:
                self.put(obj)
            self._notify()


def broken_watch(informers: Iterable[Informer], now: float, bound_s: float) -> str | None:
    """Why the caches are stale, when one informer has failed for longer than ``bound_s`` and is still
    failing (its latest failure within ``bound_s``: a watch that reopened and is quiet sends nothing that
    would clear its streak, and must not count as broken); else None."""
    for informer in informers:
        since, latest = informer.failing_since, informer.failed_at
        if since is None or latest is None or now - since <= bound_s or now - latest > bound_s:
            continue
        return (
            f"the list/watch of {informer.resource} has failed for {now - since:.0f}s: "
            f"{informer.last_error or 'no answer'}"
        )
    return None
