"""Objects with real shapes for arranging the fake API server (each is validated when added)."""

from __future__ import annotations

import uuid
from typing import Any


def pod(
    namespace: str,
    name: str,
    *,
    uid: str | None = None,
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    service_account: str | None = None,
    node: str | None = None,
) -> dict[str, Any]:
    """A pod; ``uid`` is the one the test wants kubelet to know (the server keeps it when added with
    :meth:`~tests.kube_fake.server.FakeKubeApi.add`)."""
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "uid": uid or str(uuid.uuid4())}
    if annotations:
        metadata["annotations"] = annotations
    if labels:
        metadata["labels"] = labels
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": "busybox"}]}
    if service_account:
        spec["serviceAccountName"] = service_account
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def service_account(namespace: str, name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata}
