"""What NodePublishVolume hands to the part that mounts: a validated, decided publish request.

Pure data and a Protocol (no I/O): the node servicer parses and validates the request and applies the
policy (:mod:`s3csi.volume.policy`); an implementation of :class:`VolumePublisher` (the node plugin's
Mountpoint Pod publisher) then does the mounting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from s3csi.volume.context import (
    POD_NAME,
    POD_NAMESPACE,
    POD_UID,
    SERVICE_ACCOUNT_NAME,
    VolumeContext,
)
from s3csi.volume.policy import EffectiveMount

# kubelet's target path for a CSI volume: <kubelet dir>/pods/<pod uid>/volumes/kubernetes.io~csi/<name>/mount,
# where <name> is the PV's name (or the inline volume's name in the pod spec).
_TARGET_PATH = re.compile(r"/pods/[^/]+/volumes/kubernetes\.io~csi/(?P<name>[^/]+)/mount")


def pv_name_from_target(target_path: str, kubelet_dir: str) -> str:
    """The PV name in a kubelet target path below ``kubelet_dir``; "" for a path of another shape."""
    rest = target_path.removeprefix(kubelet_dir.rstrip("/"))
    found = _TARGET_PATH.fullmatch(rest) if rest != target_path else None
    return found["name"] if found else ""


@dataclass(frozen=True)
class PodInfo:
    """The workload pod, from the ``csi.storage.k8s.io/pod.*`` keys kubelet adds when the CSIDriver has
    ``podInfoOnMount``; None for a key kubelet did not send."""

    namespace: str | None
    name: str | None
    uid: str | None
    service_account: str | None

    @property
    def label(self) -> str:
        """``namespace/name`` for log lines, else the uid, else "-"."""
        if self.namespace and self.name:
            return f"{self.namespace}/{self.name}"
        return self.uid or "-"

    @classmethod
    def from_volume_context(cls, volume_context: Mapping[str, str]) -> PodInfo:
        return cls(
            namespace=volume_context.get(POD_NAMESPACE) or None,
            name=volume_context.get(POD_NAME) or None,
            uid=volume_context.get(POD_UID) or None,
            service_account=volume_context.get(SERVICE_ACCOUNT_NAME) or None,
        )


@dataclass(frozen=True)
class PublishSpec:
    """One validated NodePublishVolume: mount ``context``'s bucket and prefix at ``target_path`` as
    ``mount`` says, for ``pod``."""

    volume_id: str
    target_path: str
    pv_name: str
    """From the target path (:func:`pv_name_from_target`); part of the sharing key (``volume.sharing``)."""
    context: VolumeContext
    mount: EffectiveMount
    pod: PodInfo
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    """The node-publish secret (``authenticationSource: secret``), already validated."""
    service_account_tokens: str | None = field(default=None, repr=False)
    """kubelet's ``csi.storage.k8s.io/serviceAccount.tokens`` JSON (``authenticationSource: pod``)."""
    service_account_role_arn: str | None = None
    """The pod's service account's ``eks.amazonaws.com/role-arn`` annotation, untrusted; None when the
    node plugin has no Kubernetes API, the volume does not need it (its ``authenticationSource`` is not
    ``pod``, or it names ``roleArn``), or the annotation is absent."""

    @property
    def pod_label(self) -> str:
        return self.pod.label


class VolumePublisher(Protocol):
    async def publish(self, spec: PublishSpec) -> None:
        """Make ``spec.target_path`` show the volume; succeed without change when it already does."""
        ...

    async def unpublish(self, volume_id: str, target_path: str) -> None:
        """Undo :meth:`publish`; succeed when ``target_path`` is not (or no longer) published."""
        ...
