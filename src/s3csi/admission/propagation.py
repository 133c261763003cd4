"""The mount-propagation decision: ``mountPropagation: HostToContainer`` on every volume mount of a volume
of this driver that does not set one, so the container receives a FUSE session the node plugin remounts
after a Mountpoint Pod crash (docs/architecture.md, "Mountpoint Pod crash recovery"). Pure: which claims
belong to the driver is looked up beforehand (claims.py) and passed in.

Total over any JSON, as the namespace defaults are: what it cannot decide it answers with ``allowed:
true``, no patch and a warning, so a malformed request never blocks a pod.
"""

from __future__ import annotations

from collections.abc import Mapping

from s3csi.admission.pods import POD_KIND
from s3csi.admission.review import (
    AdmissionRequest,
    AdmissionResponse,
    JSONPatchOperation,
    allow,
    allow_with_patch,
    json_pointer,
    shown,
)

HOST_TO_CONTAINER = "HostToContainer"
# The containers whose volume mounts a pod CREATE carries (ephemeral containers come by a subresource).
CONTAINER_LISTS = ("initContainers", "containers")


def claims_of(pod: object) -> list[str]:
    """The names of the PersistentVolumeClaims the pod's volumes use, in order, each once."""
    names: list[str] = []
    for volume in _volumes(pod):
        claim = volume.get("persistentVolumeClaim")
        name = claim.get("claimName") if isinstance(claim, dict) else None
        if isinstance(name, str) and name and name not in names:
            names.append(name)
    return names


def driver_volumes(pod: object, driver: str, claim_drivers: Mapping[str, str | None]) -> list[str]:
    """The names of the pod's volumes served by ``driver``: inline CSI volumes of it, and claims whose
    driver ``claim_drivers`` says is it (None: not known)."""
    names = []
    for volume in _volumes(pod):
        name = volume.get("name")
        csi = volume.get("csi")
        claim = volume.get("persistentVolumeClaim")
        inline = isinstance(csi, dict) and csi.get("driver") == driver
        claimed = isinstance(claim, dict) and claim_drivers.get(str(claim.get("claimName"))) == driver
        if isinstance(name, str) and (inline or claimed):
            names.append(name)
    return names


def _volumes(pod: object) -> list[dict[str, object]]:
    spec = pod.get("spec") if isinstance(pod, dict) else None
    volumes = spec.get("volumes") if isinstance(spec, dict) else None
    return [v for v in volumes if isinstance(v, dict)] if isinstance(volumes, list) else []


def propagation_patch(pod: object, volumes: list[str]) -> list[JSONPatchOperation] | str:
    """The JSON Patch adding ``mountPropagation: HostToContainer`` to each volume mount of ``volumes``
    without one (absent or null), or why it cannot. A mount that sets any value keeps it."""
    if not isinstance(pod, dict):
        return f"the request carries no pod object (got {shown(pod)})"
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return "the pod has no spec"
    patch: list[JSONPatchOperation] = []
    for containers_field in CONTAINER_LISTS:
        containers = spec.get(containers_field)
        if containers is None:
            continue
        if not isinstance(containers, list):
            return f"spec.{containers_field} is not a list (got {shown(containers)})"
        for i, container in enumerate(containers):
            mounts = container.get("volumeMounts") if isinstance(container, dict) else None
            if not isinstance(mounts, list):
                continue
            for j, mount in enumerate(mounts):
                if not isinstance(mount, dict) or mount.get("name") not in volumes:
                    continue
                if mount.get("mountPropagation") is not None:
                    continue
                path = json_pointer(
                    "spec", containers_field, str(i), "volumeMounts", str(j), "mountPropagation"
                )
                patch.append(JSONPatchOperation(op="add", path=path, value=HOST_TO_CONTAINER))
    return patch


def mount_propagation(
    request: AdmissionRequest, driver: str, claim_drivers: Mapping[str, str | None], problems: list[str]
) -> AdmissionResponse:
    """Answer a pod CREATE: the patch for the volumes of ``driver``; ``problems`` (claims whose driver
    could not be looked up) become warnings, their volume mounts stay as they are."""
    warnings = [f"mountPropagation not set for claim {p}" for p in problems]
    if request.get("kind") != POD_KIND or request.get("subResource"):
        reason = f"the request is for {shown(request.get('kind'))} {shown(request.get('subResource', ''))}"
    elif request.get("operation") != "CREATE":
        reason = f"operation {shown(request.get('operation'))} is not mutated, only CREATE"
    else:
        pod = request.get("object")
        patch = propagation_patch(pod, driver_volumes(pod, driver, claim_drivers))
        if isinstance(patch, list):
            if patch:
                return allow_with_patch(request, patch, warnings=warnings or None)
            return allow(request, warnings=warnings or None)
        reason = patch
    return allow(request, warnings=[*warnings, f"mountPropagation not set: {reason}"])
