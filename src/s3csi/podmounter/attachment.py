"""MountpointPodAttachment objects (deploy/crds/s3csi.io_mountpointpodattachments.yaml), built and changed
by pure functions (docs/kubernetes.md#the-mountpointpodattachment-crd).

One object per (node, sharing key): the inputs of the sharing key (volume/sharing.py), immutable, and the map
``mountpointPods``: Mountpoint Pod name → the workload pods it serves. The controller creates the object
with :func:`attachment` and changes it with :func:`with_workload` / :func:`without_workload` /
:func:`without_mountpoint_pod`, each returning a new dict (the API call, with its resourceVersion retry, is
the caller's); the node plugin finds its workload's Mountpoint Pod with :func:`mountpoint_pod_of`.

The object's name is the sharing key, and the spec carries every input of that key, so
``sharing_inputs_of(obj).sharing_key() == obj["metadata"]["name"]``: a node plugin and a controller that
compute the key from the same workload pod agree on which object to read.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NotRequired, TypedDict

from s3csi.errors import FailedPrecondition, InvalidArgument
from s3csi.podmounter.names import attachment_name, is_dns1123_label, is_dns1123_subdomain
from s3csi.volume.context import AuthenticationSource, is_role_arn
from s3csi.volume.options import MountOptions
from s3csi.volume.policy import EffectiveMount
from s3csi.volume.sharing import sharing_key

GROUP = "s3csi.io"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "MountpointPodAttachment"
PLURAL = "mountpointpodattachments"

# The CRD's bounds (maxProperties, maxItems): checked here so the controller gets a clear error rather than
# the API server's 422.
MAX_MOUNTPOINT_PODS = 8
"""More than one only while a Mountpoint Pod of an older driver version still serves workloads."""
MAX_WORKLOAD_PODS = 1024
"""Per Mountpoint Pod: above any node's pod capacity (kubelet's maxPods is 110 by default)."""
MAX_VOLUME_ID_LENGTH = 1024

_UID_PATTERN_PARTS = (8, 4, 4, 4, 12)
_IDENTITY = re.compile(r"[0-9a-f]{64}")
_HEX = frozenset("0123456789abcdef")


class WorkloadPod(TypedDict):
    workloadPodUID: str
    attachedAt: str
    """RFC 3339, UTC, seconds: Kubernetes' metav1.Time."""


class AttachmentSpec(TypedDict):
    nodeName: str
    persistentVolumeName: str
    volumeID: str
    mountOptions: list[str]
    readOnly: bool
    authenticationSource: str
    mountpointPods: dict[str, list[WorkloadPod]]
    fsGroup: NotRequired[int]
    fsUser: NotRequired[int]
    workloadNamespace: NotRequired[str]
    workloadServiceAccountName: NotRequired[str]
    workloadRoleARN: NotRequired[str]
    credentialsIdentity: NotRequired[str]


class AttachmentStatus(TypedDict):
    mountpointPods: int
    workloadPods: int


class AttachmentMetadata(TypedDict, total=False):
    name: str
    labels: dict[str, str]
    annotations: dict[str, str]
    # Set by the API server; kept by every function here so an update carries its resourceVersion.
    resourceVersion: str
    uid: str
    generation: int
    creationTimestamp: str


class MountpointPodAttachment(TypedDict):
    apiVersion: str
    kind: str
    metadata: AttachmentMetadata
    spec: AttachmentSpec
    status: NotRequired[AttachmentStatus]


@dataclass(frozen=True)
class SharingInputs:
    """Every input of the sharing key, named as Kubernetes names them.

    ``node_name`` is the node plugin's ``--node-id``, which on Kubernetes is the node's name (the
    controller reads it from the workload pod's spec.nodeName). Identity fields the authentication source
    does not use are ignored, by the key and by the attachment alike.
    """

    node_name: str
    persistent_volume_name: str
    volume_id: str
    mount: EffectiveMount
    authentication_source: AuthenticationSource
    workload_namespace: str | None = None
    workload_service_account_name: str | None = None
    workload_role_arn: str | None = None
    """The role a ``pod``-source mount assumes (s3csi.credentials.plan.pod_role)."""
    credentials_identity: str | None = None
    """volume.sharing.credentials_identity_of(the node-publish secret's access key id)."""

    def sharing_key(self) -> str:
        return sharing_key(
            node_id=self.node_name,
            volume_id=self.volume_id,
            pv_name=self.persistent_volume_name,
            mount=self.mount,
            authentication_source=self.authentication_source,
            pod_namespace=self.workload_namespace,
            service_account_name=self.workload_service_account_name,
            role_arn=self.workload_role_arn,
            credentials_identity=self.credentials_identity,
        )


def _check_inputs(inputs: SharingInputs) -> None:
    """What the CRD's schema would refuse, refused here with the field's name."""
    if not is_dns1123_subdomain(inputs.node_name):
        raise InvalidArgument(f"node name {inputs.node_name[:80]!r} is not a DNS-1123 subdomain")
    if not is_dns1123_subdomain(inputs.persistent_volume_name):
        raise InvalidArgument(
            f"PersistentVolume name {inputs.persistent_volume_name[:80]!r} is not a DNS-1123 subdomain"
        )
    if not 0 < len(inputs.volume_id) <= MAX_VOLUME_ID_LENGTH:
        raise InvalidArgument(f"a volume id must have 1 to {MAX_VOLUME_ID_LENGTH} characters")
    # A missing identity is sharing_key's to report; a malformed one the CRD's.
    if inputs.authentication_source is AuthenticationSource.POD:
        namespace, service_account = inputs.workload_namespace, inputs.workload_service_account_name
        if namespace and not is_dns1123_label(namespace):
            raise InvalidArgument(f"workload namespace {namespace[:80]!r} is not a DNS-1123 label")
        if service_account and not is_dns1123_subdomain(service_account):
            raise InvalidArgument(
                f"workload service account {service_account[:80]!r} is not a DNS-1123 subdomain"
            )
        role = inputs.workload_role_arn
        if role and not is_role_arn(role):
            raise InvalidArgument(f"workload role {role[:80]!r} is not an IAM role ARN")
    identity = inputs.credentials_identity
    if (
        inputs.authentication_source is AuthenticationSource.SECRET
        and identity
        and not _IDENTITY.fullmatch(identity)
    ):
        raise InvalidArgument(
            "a credentials identity is a SHA-256 in hex (volume.sharing.credentials_identity_of)"
        )


def attachment(inputs: SharingInputs) -> MountpointPodAttachment:
    """The attachment of ``inputs``' sharing key, serving nobody yet.

    Raises InvalidArgument for inputs the sharing key or the CRD refuses (naming the field).
    """
    _check_inputs(inputs)
    key = inputs.sharing_key()
    spec = AttachmentSpec(
        nodeName=inputs.node_name,
        persistentVolumeName=inputs.persistent_volume_name,
        volumeID=inputs.volume_id,
        mountOptions=list(inputs.mount.args),
        readOnly=inputs.mount.read_only,
        authenticationSource=inputs.authentication_source.value,
        mountpointPods={},
    )
    if inputs.mount.fs_group is not None:
        spec["fsGroup"] = inputs.mount.fs_group
    if inputs.mount.fs_user is not None:
        spec["fsUser"] = inputs.mount.fs_user
    # Only the identity the key uses (sharing_key checked that it is there).
    if inputs.authentication_source is AuthenticationSource.POD:
        spec["workloadNamespace"] = inputs.workload_namespace or ""
        spec["workloadServiceAccountName"] = inputs.workload_service_account_name or ""
        spec["workloadRoleARN"] = inputs.workload_role_arn or ""
    elif inputs.authentication_source is AuthenticationSource.SECRET:
        spec["credentialsIdentity"] = inputs.credentials_identity or ""
    return MountpointPodAttachment(
        apiVersion=API_VERSION,
        kind=KIND,
        metadata=AttachmentMetadata(name=attachment_name(key), labels={"app.kubernetes.io/name": "s3csi"}),
        spec=spec,
    )


def sharing_inputs_of(obj: MountpointPodAttachment) -> SharingInputs:
    """The sharing-key inputs an attachment records; InvalidArgument when its mount options are not the
    normalised list :func:`s3csi.volume.policy.effective_mount` produces."""
    spec = obj["spec"]
    args = tuple(spec["mountOptions"])
    options = MountOptions.parse(args)
    if options.to_args() != args:
        raise InvalidArgument(f"attachment {obj['metadata'].get('name')!r}: mountOptions are not normalised")
    uid, gid = options.get("uid"), options.get("gid")
    mount = EffectiveMount(
        args=args,
        read_only=spec["readOnly"],
        uid=None if uid is None else int(uid),
        gid=None if gid is None else int(gid),
        fs_group=spec.get("fsGroup"),
        fs_user=spec.get("fsUser"),
        allow_other=options.has("allow-other"),
    )
    return SharingInputs(
        node_name=spec["nodeName"],
        persistent_volume_name=spec["persistentVolumeName"],
        volume_id=spec["volumeID"],
        mount=mount,
        authentication_source=AuthenticationSource(spec["authenticationSource"]),
        workload_namespace=spec.get("workloadNamespace"),
        workload_service_account_name=spec.get("workloadServiceAccountName"),
        workload_role_arn=spec.get("workloadRoleARN"),
        credentials_identity=spec.get("credentialsIdentity"),
    )


def is_pod_uid(text: str) -> bool:
    """A Kubernetes object uid: a lowercase RFC 4122 UUID string."""
    parts = text.split("-")
    return [len(part) for part in parts] == list(_UID_PATTERN_PARTS) and set("".join(parts)) <= _HEX


def kubernetes_time(moment: datetime) -> str:
    """``moment`` as Kubernetes writes a metav1.Time: RFC 3339 in UTC, whole seconds."""
    if moment.tzinfo is None:
        raise InvalidArgument("a Kubernetes time needs a timezone-aware datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def mountpoint_pod_of(obj: MountpointPodAttachment, workload_pod_uid: str) -> str | None:
    """The name of the Mountpoint Pod serving ``workload_pod_uid``, or None when none lists it."""
    for name, workloads in obj["spec"]["mountpointPods"].items():
        if any(entry["workloadPodUID"] == workload_pod_uid for entry in workloads):
            return name
    return None


def idle_mountpoint_pods(obj: MountpointPodAttachment) -> list[str]:
    """Mountpoint Pods that serve nobody (their grace period before retirement is the controller's)."""
    return sorted(name for name, workloads in obj["spec"]["mountpointPods"].items() if not workloads)


def with_workload(
    obj: MountpointPodAttachment, mountpoint_pod: str, workload_pod_uid: str, attached_at: datetime
) -> MountpointPodAttachment:
    """A copy of ``obj`` where ``mountpoint_pod`` serves ``workload_pod_uid``.

    Idempotent: an entry already there keeps its first ``attachedAt``. Raises FailedPrecondition when another
    Mountpoint Pod already serves the workload (a mounted workload never moves) or a CRD bound would be
    exceeded, InvalidArgument for a malformed name or uid.
    """
    if not is_dns1123_subdomain(mountpoint_pod):
        raise InvalidArgument(f"Mountpoint Pod name {mountpoint_pod[:80]!r} is not a DNS-1123 subdomain")
    if not is_pod_uid(workload_pod_uid):
        raise InvalidArgument(f"workload pod uid {workload_pod_uid[:80]!r} is not a Kubernetes uid")
    current = mountpoint_pod_of(obj, workload_pod_uid)
    if current == mountpoint_pod:
        return copy.deepcopy(obj)
    name = obj["metadata"].get("name")
    if current is not None:
        raise FailedPrecondition(
            f"attachment {name}: workload pod {workload_pod_uid} is already served by "
            f"Mountpoint Pod {current}"
        )
    pods = obj["spec"]["mountpointPods"]
    if mountpoint_pod not in pods and len(pods) >= MAX_MOUNTPOINT_PODS:
        raise FailedPrecondition(f"attachment {name} already lists {MAX_MOUNTPOINT_PODS} Mountpoint Pods")
    if len(pods.get(mountpoint_pod, [])) >= MAX_WORKLOAD_PODS:
        raise FailedPrecondition(
            f"attachment {name}: Mountpoint Pod {mountpoint_pod} already serves "
            f"{MAX_WORKLOAD_PODS} workload pods"
        )
    result = copy.deepcopy(obj)
    entry = WorkloadPod(workloadPodUID=workload_pod_uid, attachedAt=kubernetes_time(attached_at))
    result["spec"]["mountpointPods"].setdefault(mountpoint_pod, []).append(entry)
    return result


def without_workload(obj: MountpointPodAttachment, workload_pod_uid: str) -> MountpointPodAttachment:
    """A copy of ``obj`` without ``workload_pod_uid``'s entry (a copy of ``obj`` when it has none).

    The Mountpoint Pod stays listed, with an empty list when it served only that workload: it is idle and
    :func:`idle_mountpoint_pods` reports it.
    """
    result = copy.deepcopy(obj)
    pods = result["spec"]["mountpointPods"]
    for name, workloads in pods.items():
        pods[name] = [entry for entry in workloads if entry["workloadPodUID"] != workload_pod_uid]
    return result


def without_mountpoint_pod(obj: MountpointPodAttachment, mountpoint_pod: str) -> MountpointPodAttachment:
    """A copy of ``obj`` without ``mountpoint_pod`` and its entries: the pod is gone or being deleted."""
    result = copy.deepcopy(obj)
    result["spec"]["mountpointPods"].pop(mountpoint_pod, None)
    return result


def attachment_status(obj: MountpointPodAttachment) -> AttachmentStatus:
    """The counts kubectl shows, derived from the spec (written through the status subresource)."""
    pods = obj["spec"]["mountpointPods"]
    return AttachmentStatus(
        mountpointPods=len(pods), workloadPods=sum(len(workloads) for workloads in pods.values())
    )
