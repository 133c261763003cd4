"""From a workload Pod and the objects it names (PVC, PV, node-publish Secret) to the inputs of its
sharing key, by the same parse and policy path NodePublishVolume takes (pure; objects are the API's
JSON as dicts).

kubelet builds NodePublishVolume from these objects; this module reads them the way kubelet does:

- ``mount_flags``: the PV's ``spec.mountOptions`` (a dynamic PV got them from its StorageClass);
- ``volume_mount_group``: the pod's ``spec.securityContext.fsGroup`` (CSIDriver fsGroupPolicy File with the
  node capability VOLUME_MOUNT_GROUP);
- ``readonly``: the pod volume's ``persistentVolumeClaim.readOnly`` or the PV's ``spec.csi.readOnly``;
- the access mode: the PV's first ``spec.accessModes`` entry (ReadWriteOnce when there is none), mapped as
  kubelet maps it for a driver without the SINGLE_NODE_MULTI_WRITER capability;
- the volume context: the PV's ``spec.csi.volumeAttributes``; the node id: the pod's ``spec.nodeName``;
  the PV name: the PV's own (kubelet's target path names it);
- for ``authenticationSource: pod``, the role: the volume attribute ``roleArn``, else the annotation
  ``eks.amazonaws.com/role-arn`` of the pod's ServiceAccount (the node plugin reads the same object; the
  controller reads the object only, never a token).

The result goes through :class:`~s3csi.volume.context.VolumeContext` and
:func:`~s3csi.volume.policy.effective_mount`, so a volume the node plugin would refuse is refused here with
the same message, and a pod the controller serves gets the key the node plugin computes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from s3csi.credentials.plan import pod_role, secret_credentials
from s3csi.errors import S3csiError
from s3csi.podmounter.attachment import SharingInputs, attachment
from s3csi.podmounter.podspec import MountpointPodResources
from s3csi.volume.context import (
    DEFAULT_SERVICE_ACCOUNT,
    FS_USER_ANNOTATION,
    MOUNTPOINT_CONTAINER_RESOURCES_ATTRIBUTES,
    ROLE_ARN_ANNOTATION,
    AuthenticationSource,
    CacheVolume,
    VolumeContext,
)
from s3csi.volume.policy import (
    AccessMode,
    PolicyInput,
    check_bucket_type,
    check_staging_cache,
    effective_mount,
)
from s3csi.volume.sharing import credentials_identity_of

JsonObject = dict[str, Any]
ObjectKey = tuple[str, str]
"""(namespace, name); the namespace is "" for a cluster-scoped object."""

STORAGE_PROVISIONER_ANNOTATIONS = (
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
)
"""Set by Kubernetes' PV controller on a claim it has a driver provision for: the claim is this driver's
even before it is bound."""

# kubelet's asCSIAccessModeV1 for a driver that does not advertise SINGLE_NODE_MULTI_WRITER (s3csi does not).
_ACCESS_MODES = {
    "ReadWriteOnce": AccessMode.SINGLE_NODE_WRITER,
    "ReadOnlyMany": AccessMode.MULTI_NODE_READER_ONLY,
    "ReadWriteMany": AccessMode.MULTI_NODE_MULTI_WRITER,
    "ReadWriteOncePod": AccessMode.SINGLE_NODE_WRITER,
}


@dataclass(frozen=True)
class Served:
    """A pod volume the controller serves: its Mountpoint Pod is the one of ``inputs.sharing_key()``."""

    volume: str
    """The pod's volume name."""
    inputs: SharingInputs
    resources: MountpointPodResources = field(default_factory=MountpointPodResources)
    """The Mountpoint Pod's: the controller's defaults with the PV's ``mountpointContainerResources*``
    attributes. Not part of the key: the key names the PV, whose attributes Kubernetes does not let change."""
    cache: CacheVolume | None = None
    """The Mountpoint Pod's cache volume (the PV's ``cache*`` attributes); not in the key either."""

    @property
    def key(self) -> str:
        return self.inputs.sharing_key()


@dataclass(frozen=True)
class Refused:
    """A pod volume of this driver that cannot be served; ``cause`` says why, for a log line and an Event."""

    volume: str
    cause: str


@dataclass(frozen=True)
class SecretRef:
    namespace: str
    name: str


@dataclass(frozen=True)
class Objects:
    """What the pod's volumes name, as the controller's caches hold them."""

    claims: Mapping[ObjectKey, JsonObject]
    volumes: Mapping[str, JsonObject]
    secrets: Mapping[SecretRef, JsonObject | None]
    """The node-publish secrets read for this pass; None: not found."""
    service_accounts: Mapping[ObjectKey, JsonObject] = field(default_factory=dict)
    """The workloads' ServiceAccounts (read for ``authenticationSource: pod`` without ``roleArn``)."""


def _get(obj: Mapping[str, Any] | None, *path: str) -> Any:
    for part in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(part)
    return obj


def pod_label(pod: JsonObject) -> str:
    return f"{_get(pod, 'metadata', 'namespace')}/{_get(pod, 'metadata', 'name')}"


def is_driver_volume(pv: JsonObject, driver_name: str) -> bool:
    return bool(_get(pv, "spec", "csi", "driver") == driver_name)


def claim_volumes(pod: JsonObject) -> list[tuple[str, str, bool]]:
    """The pod's PVC volumes: (volume name, claim name, readOnly)."""
    found = []
    for volume in _get(pod, "spec", "volumes") or []:
        claim = volume.get("persistentVolumeClaim") if isinstance(volume, dict) else None
        if isinstance(claim, dict) and claim.get("claimName"):
            found.append((str(volume.get("name")), str(claim["claimName"]), bool(claim.get("readOnly"))))
    return found


def node_publish_secret(pv: JsonObject) -> SecretRef | None:
    ref = _get(pv, "spec", "csi", "nodePublishSecretRef")
    if not isinstance(ref, dict) or not ref.get("name"):
        return None
    return SecretRef(str(ref.get("namespace") or "default"), str(ref["name"]))


def secret_refs(pod: JsonObject, objects: Objects, driver_name: str) -> set[SecretRef]:
    """The node-publish secrets the pod's volumes of this driver name (the caller reads them)."""
    refs = set()
    namespace = str(_get(pod, "metadata", "namespace") or "")
    for _volume, claim_name, _ro in claim_volumes(pod):
        claim = objects.claims.get((namespace, claim_name))
        pv = objects.volumes.get(_get(claim, "spec", "volumeName") or "")
        if pv is not None and is_driver_volume(pv, driver_name):
            ref = node_publish_secret(pv)
            if ref is not None:
                refs.add(ref)
    return refs


def access_mode(pv: JsonObject) -> AccessMode:
    modes = _get(pv, "spec", "accessModes") or ["ReadWriteOnce"]
    mode = _ACCESS_MODES.get(str(modes[0]))
    if mode is None:
        raise ValueError(f"access mode {str(modes[0])[:40]!r} is not a Kubernetes access mode")
    return mode


def _secret_data(secret: JsonObject) -> dict[str, str]:
    data = secret.get("data") or {}
    try:
        return {str(k): base64.b64decode(str(v), validate=True).decode() for k, v in data.items()}
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("a value of its data is not base64 of UTF-8 text") from None


def credentials_identity(ref: SecretRef, secret: JsonObject | None) -> str:
    """The credentials identity of a node-publish secret, validated as the node plugin validates the secret
    kubelet hands it (errors name the key at fault, never a value)."""
    field = f"node-publish secret {ref.namespace}/{ref.name}"
    if secret is None:
        raise ValueError(f"{field} (PV spec.csi.nodePublishSecretRef) is not in the Kubernetes API")
    try:
        data = _secret_data(secret)
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None
    return credentials_identity_of(secret_credentials(data, field).access_key_id)


def service_account_key(pod: JsonObject) -> ObjectKey:
    """(namespace, name) of the pod's ServiceAccount."""
    return (
        str(_get(pod, "metadata", "namespace") or ""),
        str(_get(pod, "spec", "serviceAccountName") or DEFAULT_SERVICE_ACCOUNT),
    )


def sharing_inputs(
    pod: JsonObject,
    pv: JsonObject,
    *,
    read_only: bool,
    secret: JsonObject | None = None,
    service_account: JsonObject | None = None,
) -> SharingInputs:
    """The sharing-key inputs of ``pod``'s use of ``pv``; ValueError or S3csiError names what is refused.
    ``secret``: the PV's node-publish secret (read only for ``authenticationSource: secret``);
    ``service_account``: the pod's (read only for ``authenticationSource: pod``; None: not in the API)."""
    csi = _get(pv, "spec", "csi") or {}
    context = VolumeContext.parse(_volume_attributes(pv))
    namespace, service_account_name = service_account_key(pod)
    fs_group = _get(pod, "spec", "securityContext", "fsGroup")
    mount = effective_mount(
        PolicyInput(
            mount_flags=tuple(str(flag) for flag in _get(pv, "spec", "mountOptions") or ()),
            volume_mount_group=None if fs_group is None else str(fs_group),
            fs_user_annotation=(_get(pod, "metadata", "annotations") or {}).get(FS_USER_ANNOTATION),
            volume_fs_user=context.fs_user,
            readonly=read_only or bool(csi.get("readOnly")),
            access_mode=access_mode(pv),
            volume_staged_writes=context.staged_writes,
        )
    )
    check_staging_cache(mount, context.cache)
    check_bucket_type(mount, context.bucket_name)
    source = context.authentication_source
    identity = role = None
    if source is AuthenticationSource.POD:
        annotations = _get(service_account, "metadata", "annotations") or {}
        role = pod_role(context.role_arn, annotations.get(ROLE_ARN_ANNOTATION) or None)
    elif source is AuthenticationSource.SECRET:
        ref = node_publish_secret(pv)
        if ref is None:
            raise ValueError(
                "authenticationSource secret needs a node-publish secret (PV spec.csi.nodePublishSecretRef)"
            )
        identity = credentials_identity(ref, secret)
    return SharingInputs(
        node_name=str(_get(pod, "spec", "nodeName")),
        persistent_volume_name=str(_get(pv, "metadata", "name")),
        volume_id=str(csi.get("volumeHandle") or ""),
        mount=mount,
        authentication_source=source,
        workload_namespace=namespace,
        workload_service_account_name=service_account_name,
        workload_role_arn=role,
        credentials_identity=identity,
    )


def _volume_attributes(pv: JsonObject) -> dict[str, str]:
    return {str(k): str(v) for k, v in (_get(pv, "spec", "csi", "volumeAttributes") or {}).items()}


def volume_resources(pv: JsonObject, defaults: MountpointPodResources) -> MountpointPodResources:
    """``defaults`` with the PV's ``mountpointContainerResources*`` attributes where it sets them; ValueError
    when the two together request more than the limit (a volume's limit below a default request)."""
    context = VolumeContext.parse(_volume_attributes(pv))
    try:
        return defaults.overridden(
            cpu_request=context.mountpoint_pod_cpu_request,
            memory_request=context.mountpoint_pod_memory_request,
            memory_limit=context.mountpoint_pod_memory_limit,
            cpu_limit=context.mountpoint_pod_cpu_limit,
        )
    except S3csiError as exc:
        raise ValueError(
            f"{exc}: set both the request and the limit in the volume attributes "
            f"{', '.join(MOUNTPOINT_CONTAINER_RESOURCES_ATTRIBUTES)}, or change the controller's defaults"
        ) from None


def _claims_driver(claim: JsonObject, driver_name: str) -> bool:
    annotations = _get(claim, "metadata", "annotations") or {}
    return any(annotations.get(name) == driver_name for name in STORAGE_PROVISIONER_ANNOTATIONS)


def pod_volumes(
    pod: JsonObject,
    objects: Objects,
    driver_name: str,
    resources: MountpointPodResources | None = None,
) -> list[Served | Refused]:
    """Each volume of ``pod`` (scheduled to a node) that this driver serves or should serve and cannot.
    ``resources``: the controller's Mountpoint Pod defaults (None: the measured ones).

    A claim counts as this driver's when it is bound to a PV of the driver, or when Kubernetes has the driver
    provision it (its storage-provisioner annotation): only then is an unbound claim or a missing PV this
    driver's problem to report. Other drivers' volumes are left out.
    """
    namespace = str(_get(pod, "metadata", "namespace") or "")
    results: list[Served | Refused] = []
    for volume, claim_name, read_only in claim_volumes(pod):
        claim = objects.claims.get((namespace, claim_name))
        if claim is None:
            continue  # no claim: the pod cannot be scheduled with it; nothing says it is this driver's
        pv_name = _get(claim, "spec", "volumeName") or ""
        pv = objects.volumes.get(pv_name) if pv_name else None
        if pv is None:
            if _claims_driver(claim, driver_name):
                problem = (
                    f"is bound to PersistentVolume {pv_name}, which is not in the Kubernetes API"
                    if pv_name
                    else "is not bound to a PersistentVolume yet"
                )
                results.append(Refused(volume, f"PersistentVolumeClaim {namespace}/{claim_name} {problem}"))
            continue
        if not is_driver_volume(pv, driver_name):
            continue
        ref = node_publish_secret(pv)
        secret = objects.secrets.get(ref) if ref is not None else None
        try:
            inputs = sharing_inputs(
                pod,
                pv,
                read_only=read_only,
                secret=secret,
                service_account=objects.service_accounts.get(service_account_key(pod)),
            )
            attachment(inputs)  # what the key and the CRD refuse (an identity the source needs, a name)
            pod_resources = volume_resources(pv, resources or MountpointPodResources())
        except (ValueError, S3csiError) as exc:
            results.append(Refused(volume, f"PersistentVolume {pv_name}: {exc}"))
            continue
        cache = VolumeContext.parse(_volume_attributes(pv)).cache
        results.append(Served(volume, inputs, pod_resources, cache))
    return results
