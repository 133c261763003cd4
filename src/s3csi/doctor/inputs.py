"""What ``s3csi doctor`` is given, turned into the NodePublishVolume kubelet would send — pure.

A PersistentVolume manifest (``kubectl get pv NAME -o yaml``) or volume attributes from the command line
become a :class:`csi_pb2.NodePublishVolumeRequest` built as kubelet builds it: the PV's ``mountOptions`` as
the capability's mount flags, its first access mode as the CSI access mode, ``spec.csi.readOnly`` as
``readonly``. The node plugin's own validation (:func:`s3csi.csi.node.publish_spec`) then decides on it,
so what doctor accepts the node plugin accepts. Errors name the field at fault, never a secret's value.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from s3csi.csi.proto import csi_pb2
from s3csi.errors import InvalidArgument
from s3csi.volume.context import (
    POD_UID,
    SERVICE_ACCOUNT_TOKENS,
)
from s3csi.volume.policy import AccessMode

_MODE = csi_pb2.VolumeCapability.AccessMode
DEFAULT_KUBELET_DIR = "/var/lib/kubelet"
DOCTOR_POD_UID = "s3csi-doctor"
"""The pod directory of the target path doctor's request names (a path, never created)."""
DEFAULT_VOLUME_NAME = "s3csi-doctor"

# How kubelet maps a PV's access mode to the CSI one for a driver without the SINGLE_NODE_MULTI_WRITER
# capability (s3csi's node service advertises only VOLUME_MOUNT_GROUP).
ACCESS_MODES: Mapping[str, AccessMode] = {
    "ReadWriteOnce": AccessMode.SINGLE_NODE_WRITER,
    "ReadOnlyMany": AccessMode.MULTI_NODE_READER_ONLY,
    "ReadWriteMany": AccessMode.MULTI_NODE_MULTI_WRITER,
    "ReadWriteOncePod": AccessMode.SINGLE_NODE_WRITER,
}
DEFAULT_ACCESS_MODE = "ReadWriteOnce"
"""kubelet's choice for a PV that lists no access mode."""


@dataclass(frozen=True)
class SecretRef:
    namespace: str
    name: str


@dataclass(frozen=True)
class VolumeUnderTest:
    """One volume as kubelet would publish it."""

    name: str
    """The PV's name (a part of the target path kubelet uses)."""
    volume_handle: str
    volume_attributes: Mapping[str, str]
    mount_options: tuple[str, ...] = ()
    access_mode: str = DEFAULT_ACCESS_MODE
    read_only: bool = False
    fs_group: str = ""
    """The pod's fsGroup as kubelet sends it (``volume_mount_group``); "" for none."""
    secret_ref: SecretRef | None = None
    """``spec.csi.nodePublishSecretRef``: named in the advice when no secret was given."""


@dataclass(frozen=True)
class PodInputs:
    """What kubelet adds for the pod's service account (CSIDriver tokenRequests); no token: none."""

    token: str = field(default="", repr=False)
    audience: str = ""


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where} must be a mapping")
    return value


def _strings(value: Any, where: str) -> dict[str, str]:
    """A map of strings, as the API server insists on: a YAML number there must be quoted."""
    mapping = _mapping(value, where)
    for key, item in mapping.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise InvalidArgument(f"{where}.{str(key)[:64]} must be a string (quote it in YAML)")
    return mapping


def volume_from_pv(manifest: Any, driver_name: str) -> VolumeUnderTest:
    """The volume of a PersistentVolume manifest of ``driver_name``; InvalidArgument naming the field."""
    if not isinstance(manifest, dict) or manifest.get("kind") != "PersistentVolume":
        raise InvalidArgument("--pv: the file is not a PersistentVolume manifest (kind: PersistentVolume)")
    spec = _mapping(manifest.get("spec"), "spec")
    csi = _mapping(spec.get("csi"), "spec.csi")
    if not csi:
        raise InvalidArgument("--pv: spec.csi is missing: the PV is not a CSI volume")
    if csi.get("driver") != driver_name:
        raise InvalidArgument(
            f"--pv: spec.csi.driver {str(csi.get('driver'))[:80]!r} is not {driver_name!r} (--driver-name)"
        )
    handle = csi.get("volumeHandle")
    if not isinstance(handle, str) or not handle:
        raise InvalidArgument("--pv: spec.csi.volumeHandle is required")
    options = spec.get("mountOptions") or []
    if not isinstance(options, list) or not all(isinstance(option, str) for option in options):
        raise InvalidArgument("--pv: spec.mountOptions must be a list of strings")
    modes = spec.get("accessModes") or [DEFAULT_ACCESS_MODE]
    if not isinstance(modes, list) or modes[0] not in ACCESS_MODES:
        raise InvalidArgument(f"--pv: spec.accessModes must list one of: {', '.join(ACCESS_MODES)}")
    read_only = csi.get("readOnly", False)
    if not isinstance(read_only, bool):
        raise InvalidArgument("--pv: spec.csi.readOnly must be true or false")
    ref = _mapping(csi.get("nodePublishSecretRef"), "spec.csi.nodePublishSecretRef")
    metadata = _mapping(manifest.get("metadata"), "metadata")
    return VolumeUnderTest(
        name=str(metadata.get("name") or DEFAULT_VOLUME_NAME),
        volume_handle=handle,
        volume_attributes=_strings(csi.get("volumeAttributes"), "spec.csi.volumeAttributes"),
        mount_options=tuple(options),
        access_mode=modes[0],
        read_only=read_only,
        secret_ref=SecretRef(str(ref.get("namespace", "")), str(ref.get("name", ""))) if ref else None,
    )


def key_values(pairs: Sequence[str], flag: str) -> dict[str, str]:
    """``KEY=VALUE`` arguments as a map; InvalidArgument naming the flag for one without "=" or repeated."""
    found: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise InvalidArgument(f"{flag} {pair[:80]!r} must be KEY=VALUE")
        if key in found:
            raise InvalidArgument(f"{flag} {key[:80]} is given twice")
        found[key] = value
    return found


def secret_data(manifest: Any, where: str = "--secret-file") -> dict[str, str]:
    """The keys of a Kubernetes Secret manifest (``data`` base64-decoded, then ``stringData``, which the API
    server merges over it); InvalidArgument naming ``where`` and the key, never a value."""
    if not isinstance(manifest, dict) or manifest.get("kind") != "Secret":
        raise InvalidArgument(f"{where}: not a Secret manifest (kind: Secret)")
    values: dict[str, str] = {}
    for key, encoded in _mapping(manifest.get("data"), "data").items():
        try:
            values[str(key)] = base64.b64decode(str(encoded), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            shown = str(key)[:64]
            raise InvalidArgument(f"{where}: data.{shown} is not base64 of UTF-8 text") from None
    values.update(_strings(manifest.get("stringData"), f"{where}: stringData"))
    return values


def publish_request(
    volume: VolumeUnderTest,
    *,
    secrets: Mapping[str, str],
    pod: PodInputs,
    kubelet_dir: str = DEFAULT_KUBELET_DIR,
) -> csi_pb2.NodePublishVolumeRequest:
    """The NodePublishVolume kubelet would send for ``volume`` in a pod (target path under a pod directory
    doctor names; nothing is created there)."""
    context = {**volume.volume_attributes, POD_UID: DOCTOR_POD_UID}
    if pod.token:
        context[SERVICE_ACCOUNT_TOKENS] = json.dumps({pod.audience: {"token": pod.token}})
    capability = csi_pb2.VolumeCapability(
        mount=csi_pb2.VolumeCapability.MountVolume(
            mount_flags=list(volume.mount_options), volume_mount_group=volume.fs_group
        ),
        access_mode=_MODE(mode=ACCESS_MODES[volume.access_mode].name),
    )
    target = f"{kubelet_dir}/pods/{DOCTOR_POD_UID}/volumes/kubernetes.io~csi/{volume.name}/mount"
    return csi_pb2.NodePublishVolumeRequest(
        volume_id=volume.volume_handle,
        target_path=target,
        volume_capability=capability,
        readonly=volume.read_only,
        volume_context=context,
        secrets=dict(secrets),
    )
