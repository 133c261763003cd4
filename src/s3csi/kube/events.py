"""Kubernetes Events on workload pods (pure): why a volume is not served (the controller), or that its
Mountpoint Pod is in a crash loop (the node plugin). ``kubectl describe pod`` shows them to the team whose
pod it is, which reads neither component's log."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

MAX_EVENT_MESSAGE = 1024
_MAX_NAME_PREFIX = 200


def pod_event(
    pod: dict[str, Any],
    *,
    reason: str,
    message: str,
    component: str,
    instance: str,
    now: datetime,
    once_per: str,
) -> dict[str, Any]:
    """A Warning Event on ``pod`` (its ``metadata``: namespace, name, uid). Its name is the pod's with a
    digest of the pod's uid, ``reason`` and ``once_per``: what is recorded once per pod and ``once_per``
    (a second create of the same is refused with 409, by whichever process tries)."""
    metadata = pod["metadata"]
    digest = hashlib.sha256(f"{metadata['uid']}\0{reason}\0{once_per}".encode()).hexdigest()[:16]
    stamp = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{metadata['name'][:_MAX_NAME_PREFIX]}.{digest}",
            "namespace": metadata["namespace"],
        },
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata["uid"],
        },
        "reason": reason,
        "message": message[:MAX_EVENT_MESSAGE],
        "type": "Warning",
        "source": {"component": component},
        "reportingComponent": component,
        "reportingInstance": instance[:128],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
