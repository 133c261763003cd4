"""What NodePublishVolume learns about its pod from the API server: fetch, check, decide."""

from __future__ import annotations

from s3csi.errors import Aborted, FailedPrecondition, NotFound
from s3csi.kube.client import KubeClient
from s3csi.kube.identity import (
    PodIdentityInputs,
    check_pod_uid,
    pod_identity_inputs,
    service_account_name,
)


async def lookup_pod_identity(
    client: KubeClient,
    *,
    namespace: str,
    name: str,
    uid: str,
    service_account: str | None,
    needs_role: bool,
) -> PodIdentityInputs:
    """The pod's annotations and, when ``needs_role``, its service account's.

    Aborted (kubelet retries) when the pod is gone or is another pod of the same name; FailedPrecondition
    when its service account does not exist. Errors of the API itself come from :mod:`s3csi.kube.client`.
    """
    try:
        pod = await client.get_pod(namespace, name)
    except NotFound:
        raise Aborted(
            f"pod {namespace}/{name} is not in the Kubernetes API (deleted?); its annotations cannot be read"
        ) from None
    check_pod_uid(pod, uid)
    account = None
    if needs_role:
        account_name = service_account_name(pod, service_account)
        try:
            account = await client.get_service_account(namespace, account_name)
        except NotFound:
            raise FailedPrecondition(
                f"service account {namespace}/{account_name} of pod {namespace}/{name} is not in the "
                "Kubernetes API"
            ) from None
    return pod_identity_inputs(pod, account)
