"""Records Events through the API server, deduplicated (kube/events.py names them): the first occurrence
creates the Event, a repeat patches ``count``, ``lastTimestamp`` and ``message`` of the same Event, as
client-go's event correlator does. Never raises: an Event reports on work that must go on without it.

The counts of the Events this process recorded are kept in a bounded LRU (:data:`MAX_REMEMBERED`); an Event
it does not remember (recorded before a restart, by another replica, or pushed out of the LRU) answers the
create with 409, and its count is read from the answer of the patch that records the repeat."""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from s3csi.kube.api import MERGE_PATCH, Api, ApiError, path_of
from s3csi.kube.events import repeat_patch

log = logging.getLogger(__name__)

MAX_REMEMBERED = 4096
"""Events whose count this process remembers (client-go's correlator keeps as many)."""


def _now() -> datetime:
    return datetime.now(UTC)


class EventRecorder:
    def __init__(self, api: Callable[[], Api | None], clock: Callable[[], datetime] = _now) -> None:
        # The Api is looked up at each call: the node plugin's runtime opens and closes its own.
        self._api = api
        self._clock = clock
        self._counts: OrderedDict[tuple[str, str], int] = OrderedDict()

    async def record(self, event: dict[str, Any]) -> bool:
        """Record ``event`` (kube.events.object_event) or one more occurrence of it; whether it was."""
        api = self._api()
        if api is None:
            return False
        namespace, name = event["metadata"]["namespace"], event["metadata"]["name"]
        key = (namespace, name)
        path = path_of("", "v1", "events", namespace)
        count = self._counts.get(key)
        try:
            if count is None:
                try:
                    await api.call("POST", path, body=event)
                    self._remember(key, 1)
                    return True
                except ApiError as exc:
                    if exc.status != 409:
                        raise
                # Recorded before, not by this process: its answer holds the count so far.
                body = repeat_patch(event, 0, self._clock())
                del body["count"]
                found = await api.call("PATCH", f"{path}/{name}", body=body, content_type=MERGE_PATCH)
                count = int(found.get("count") or 1)
            try:
                await api.call(
                    "PATCH",
                    f"{path}/{name}",
                    body=repeat_patch(event, count, self._clock()),
                    content_type=MERGE_PATCH,
                )
                self._remember(key, count + 1)
            except ApiError as exc:
                if exc.status != 404:
                    raise
                # Gone since (Events expire after the API server's --event-ttl, 1 h): a new one.
                self._counts.pop(key, None)
                await api.call("POST", path, body=event)
                self._remember(key, 1)
            return True
        except ApiError as exc:
            log.warning(
                "the Event %s on %s %s/%s cannot be recorded: %s",
                event["reason"],
                event["involvedObject"]["kind"],
                namespace,
                event["involvedObject"]["name"],
                exc,
            )
            return False

    def _remember(self, key: tuple[str, str], count: int) -> None:
        self._counts[key] = count
        self._counts.move_to_end(key)
        while len(self._counts) > MAX_REMEMBERED:
            self._counts.popitem(last=False)
