"""``s3csi doctor --pod-uid UID`` on a node: the pod's volumes of this driver, from kubelet's directory and
the Kubernetes API.

kubelet keeps, for each CSI volume of a pod, ``<kubelet dir>/pods/<uid>/volumes/kubernetes.io~csi/<name>/
vol_data.json``: the driver's name, the volume handle, ``specVolumeID`` (the PV's name for a persistent
volume, the pod's volume name for an inline one) and ``volumeLifecycleMode``. It does not keep the volume's
attributes or mount options: those are read from the PersistentVolume through the API, and for
``authenticationSource: secret`` the PV's ``nodePublishSecretRef`` Secret as well (the identity doctor
uses needs ``get`` on persistentvolumes, and on that secret).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from s3csi.doctor.inputs import SecretRef, VolumeUnderTest, secret_data, volume_from_pv
from s3csi.errors import InvalidArgument, NotFound, PermissionDenied, S3csiError, Unavailable
from s3csi.kube.api import Api, ApiError, path_of

CSI_VOLUMES_DIR = "volumes/kubernetes.io~csi"
VOL_DATA = "vol_data.json"
EPHEMERAL = "Ephemeral"
# Pod UIDs are UUIDs; anything that could step out of the pods directory is refused.
_POD_UID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")


@dataclass(frozen=True)
class KubeletVolume:
    """One ``vol_data.json``."""

    directory: str
    """The volume's directory under ``kubernetes.io~csi`` (the PV's or inline volume's name)."""
    spec_volume_id: str
    volume_handle: str
    driver_name: str
    ephemeral: bool


def parse_vol_data(text: str, directory: str) -> KubeletVolume:
    """kubelet's ``vol_data.json`` for the volume in ``directory``; InvalidArgument naming the file."""
    where = f"{directory}/{VOL_DATA}"
    try:
        data: Any = json.loads(text)
    except ValueError:
        raise InvalidArgument(f"{where} is not JSON") from None
    if not isinstance(data, dict) or not all(isinstance(value, str) for value in data.values()):
        raise InvalidArgument(f"{where} is not a JSON object of strings")
    missing = [key for key in ("specVolumeID", "driverName") if not data.get(key)]
    if missing:
        raise InvalidArgument(f"{where} has no {missing[0]}")
    return KubeletVolume(
        directory=directory,
        spec_volume_id=data["specVolumeID"],
        volume_handle=data.get("volumeHandle", ""),
        driver_name=data["driverName"],
        ephemeral=data.get("volumeLifecycleMode") == EPHEMERAL,
    )


def pod_volumes(kubelet_dir: str, pod_uid: str, driver_name: str) -> list[KubeletVolume]:
    """The pod's CSI volumes of ``driver_name``, by directory name; InvalidArgument when the pod has no
    directory on this node or none of its volumes is of this driver."""
    if not _POD_UID.fullmatch(pod_uid):
        raise InvalidArgument(f"--pod-uid {pod_uid[:80]!r} is not a pod UID")
    pod_dir = os.path.join(kubelet_dir, "pods", pod_uid)
    if not os.path.isdir(pod_dir):
        raise InvalidArgument(f"--pod-uid {pod_uid}: no pod directory {pod_dir} on this node (--kubelet-dir)")
    volumes_dir = os.path.join(pod_dir, CSI_VOLUMES_DIR)
    found = []
    for directory in sorted(os.listdir(volumes_dir) if os.path.isdir(volumes_dir) else []):
        try:
            with open(os.path.join(volumes_dir, directory, VOL_DATA), encoding="utf-8") as file:
                text = file.read()
        except FileNotFoundError:
            continue  # kubelet is still setting the volume up, or tearing it down
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidArgument(f"{directory}/{VOL_DATA} cannot be read ({type(exc).__name__})") from None
        volume = parse_vol_data(text, directory)
        if volume.driver_name == driver_name:
            found.append(volume)
    if not found:
        raise InvalidArgument(f"pod {pod_uid} has no volume of the driver {driver_name} on this node")
    return found


def _api_failure(exc: ApiError, what: str, verb: str) -> S3csiError:
    if exc.status in (401, 403):
        return PermissionDenied(f"{exc}: doctor's Kubernetes identity needs {verb}")
    if exc.status == 404:
        return NotFound(f"{what} is not in the cluster ({exc})")
    return Unavailable(f"the Kubernetes API did not give {what}: {exc}")


async def volume_from_cluster(api: Api, volume: KubeletVolume, driver_name: str) -> VolumeUnderTest:
    """The PV behind a persistent volume of the pod, as ``--pv`` would read it from a file."""
    path = path_of("", "v1", "persistentvolumes", name=volume.spec_volume_id)
    what = f"PersistentVolume {volume.spec_volume_id}"
    try:
        manifest = await api.call("GET", path)
    except ApiError as exc:
        raise _api_failure(exc, what, "get on persistentvolumes") from None
    manifest.setdefault("kind", "PersistentVolume")
    return volume_from_pv(manifest, driver_name)


async def secret_from_cluster(api: Api, ref: SecretRef) -> Mapping[str, str]:
    """The keys of a PV's ``nodePublishSecretRef`` (never logged or shown)."""
    path = path_of("", "v1", "secrets", namespace=ref.namespace, name=ref.name)
    what = f"Secret {ref.namespace}/{ref.name}"
    try:
        manifest = await api.call("GET", path)
    except ApiError as exc:
        raise _api_failure(exc, what, f"get on the secret {ref.namespace}/{ref.name}") from None
    manifest.setdefault("kind", "Secret")
    return secret_data(manifest, what)
