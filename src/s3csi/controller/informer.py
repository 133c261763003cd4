"""A list+watch cache of one resource, as client-go's informer keeps one: list, then watch from the list's
resourceVersion; resume each ended watch from the last resourceVersion seen (an event's or a bookmark's);
list again when the API server answers 410 Gone (the version was compacted away)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from s3csi.controller.api import Api, ApiError, JsonObject
from s3csi.log_limit import RepeatLimiter

log = logging.getLogger(__name__)

PAGE_SIZE = 500
RETRY_S = 1.0
ObjectKey = tuple[str, str]


def object_key(obj: Mapping[str, Any]) -> ObjectKey:
    metadata = obj.get("metadata") or {}
    return (str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))


def _version(obj: Mapping[str, Any]) -> int | None:
    text = (obj.get("metadata") or {}).get("resourceVersion")
    return int(text) if isinstance(text, str) and text.isdigit() else None


class Informer:
    """``objects`` mirrors the API's objects at ``path`` (with ``query``'s selectors); ``on_change`` is
    called after each change, ``synced`` is set once the first list is in."""

    def __init__(
        self,
        api: Api,
        path: str,
        on_change: Callable[[], None],
        *,
        query: Mapping[str, str] | None = None,
        watch_timeout_s: int = 300,
    ) -> None:
        self.api = api
        self.path = path
        self.query = dict(query or {})
        self.on_change = on_change
        self.watch_timeout_s = watch_timeout_s
        self.objects: dict[ObjectKey, JsonObject] = {}
        self.synced = asyncio.Event()
        self.events = 0
        """Watch events handled (bookmarks excluded): the benchmark's count."""
        self._version: str | None = None
        self._failures = RepeatLimiter()
        """A failure that lasts (403 until the RBAC is fixed) is logged once per interval, not per retry."""

    def put(self, obj: JsonObject) -> None:
        """Record an object this controller wrote, unless the cache already holds a newer version."""
        key = object_key(obj)
        current = self.objects.get(key)
        new, old = _version(obj), _version(current) if current else None
        if current is None or new is None or old is None or new >= old:
            self.objects[key] = obj

    def drop(self, key: ObjectKey) -> None:
        self.objects.pop(key, None)

    async def run(self) -> None:
        while True:
            try:
                if self._version is None:
                    await self._list()
                await self._watch()
            except ApiError as exc:
                if exc.status == 410:
                    log.info("watch of %s expired (410 Gone): listing again", self.path)
                    self._version = None
                    continue
                self._failures.log(
                    log,
                    logging.WARNING,
                    (exc.status, str(exc)),
                    "list/watch of %s failed, retrying: %s",
                    self.path,
                    exc,
                )
                await asyncio.sleep(RETRY_S)

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
        self.synced.set()
        self.on_change()

    async def _watch(self) -> None:
        query: dict[str, str | int | bool] = {**self.query, "resourceVersion": self._version or "0"}
        async for event in self.api.watch(self.path, query, self.watch_timeout_s):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                raise ApiError(int(obj.get("code") or 0), f"watch {self.path}: {obj.get('message', '')}")
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
            self.on_change()
