"""Kubernetes Events (pure): what the driver tells the team whose pod it is, or the operator of a Mountpoint
Pod, in ``kubectl describe`` and ``kubectl get events`` — which reads neither component's log. Every reason
the driver records is listed in docs/observability.md#events.

An Event is named by its object's uid, its reason and ``once_per`` (what makes two occurrences the same:
a cause, a message): a second create of the same name is refused with 409, by whichever process tries,
and a repeat updates ``count`` and ``lastTimestamp`` of the one Event (:func:`repeat_patch`), as
``kubectl describe`` shows "x5 over 3m". Core v1 Events (``count``, ``firstTimestamp``) are what kubectl
and every Kubernetes release show."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Literal

MAX_EVENT_MESSAGE = 1024
_MAX_NAME_PREFIX = 200

EventType = Literal["Normal", "Warning"]


def _stamp(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def object_event(
    involved: dict[str, str],
    *,
    reason: str,
    message: str,
    component: str,
    instance: str,
    now: datetime,
    once_per: str,
    type: EventType = "Warning",
) -> dict[str, Any]:
    """An Event on ``involved`` (apiVersion, kind, namespace, name, uid), in the object's namespace."""
    digest = hashlib.sha256(f"{involved['uid']}\0{reason}\0{once_per}".encode()).hexdigest()[:16]
    stamp = _stamp(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{involved['name'][:_MAX_NAME_PREFIX]}.{digest}",
            "namespace": involved["namespace"],
        },
        "involvedObject": dict(involved),
        "reason": reason,
        "message": message[:MAX_EVENT_MESSAGE],
        "type": type,
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": instance[:128],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


def involved_pod(pod: dict[str, Any]) -> dict[str, str]:
    """The ``involvedObject`` of a Pod (its ``metadata``: namespace, name, uid)."""
    metadata = pod["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": metadata["name"],
        "namespace": metadata["namespace"],
        "uid": metadata["uid"],
    }


def repeat_patch(event: dict[str, Any], count: int, now: datetime) -> dict[str, Any]:
    """The merge patch that records ``event`` once more on the existing Event of its name, which had
    ``count`` occurrences: the newest message (a crash count moves on), the count and the time."""
    return {"count": count + 1, "lastTimestamp": _stamp(now), "message": event["message"]}
