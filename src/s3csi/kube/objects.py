"""The few fields of Kubernetes objects s3csi reads, as the API server sends them (JSON)."""

from __future__ import annotations

from typing import TypedDict


class ObjectMeta(TypedDict, total=False):
    name: str
    namespace: str
    uid: str
    annotations: dict[str, str]


class PodSpec(TypedDict, total=False):
    serviceAccountName: str


class Pod(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: PodSpec


class ServiceAccount(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMeta
