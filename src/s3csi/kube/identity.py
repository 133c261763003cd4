"""Pure decisions over the workload pod and its service account, as fetched from the API server.

kubelet names the pod in NodePublishVolume (``csi.storage.k8s.io/pod.*``); the API server is asked for the
object with that namespace and name. Only an object with the same uid is the pod being mounted for: a pod
deleted and recreated under the same name is another pod, and must not lend its annotations.
"""

from __future__ import annotations

from typing import NamedTuple

from kubernetes_asyncio.client import V1Pod, V1ServiceAccount

from s3csi.errors import Aborted, FailedPrecondition
from s3csi.volume.context import DEFAULT_SERVICE_ACCOUNT, FS_USER_ANNOTATION, ROLE_ARN_ANNOTATION


class PodIdentityInputs(NamedTuple):
    fs_user_annotation: str | None
    """The pod's ``s3csi.io/fs-user`` annotation, untrusted (the policy validates it); None when absent."""
    role_arn_annotation: str | None
    """The service account's ``eks.amazonaws.com/role-arn`` annotation; None when absent or not asked."""


NO_IDENTITY = PodIdentityInputs(None, None)


def pod_identity_inputs(pod: V1Pod, service_account: V1ServiceAccount | None) -> PodIdentityInputs:
    """The annotations s3csi reads from ``pod`` and, when it was fetched, its ``service_account``."""
    pod_annotations = _annotations(pod)
    account_annotations = _annotations(service_account) if service_account else {}
    return PodIdentityInputs(
        fs_user_annotation=pod_annotations.get(FS_USER_ANNOTATION),
        role_arn_annotation=account_annotations.get(ROLE_ARN_ANNOTATION) or None,
    )


def _annotations(obj: V1Pod | V1ServiceAccount) -> dict[str, str]:
    return (obj.metadata.annotations if obj.metadata else None) or {}


def check_pod_uid(pod: V1Pod, expected_uid: str) -> None:
    """Aborted (kubelet retries) unless ``pod`` is the pod kubelet mounts for (``pod.uid``)."""
    metadata = pod.metadata
    found: str = (metadata.uid if metadata else None) or ""
    if found != expected_uid:
        namespace, name = (metadata.namespace, metadata.name) if metadata else ("?", "?")
        raise Aborted(
            f"pod {namespace}/{name} in the API has uid "
            f"{found[:64]!r}, not the {expected_uid[:64]!r} kubelet mounts for (the pod was deleted or "
            "recreated); its annotations do not apply"
        )


def service_account_name(pod: V1Pod, requested: str | None) -> str:
    """The pod's service account; FailedPrecondition when kubelet named another one (``requested``)."""
    name: str = (pod.spec.service_account_name if pod.spec else None) or DEFAULT_SERVICE_ACCOUNT
    if requested and requested != name:
        raise FailedPrecondition(
            f"the pod's service account is {name!r} in the API but {requested[:253]!r} in the request"
        )
    return name
