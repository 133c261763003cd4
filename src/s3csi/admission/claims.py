"""Which CSI driver serves each PersistentVolumeClaim of a pod, read from the Kubernetes API for the
mount-propagation decision (propagation.py). The webhook's ServiceAccount may only ``get``
PersistentVolumeClaims, PersistentVolumes and StorageClasses (docs/admission.md).

A bound claim names its PersistentVolume, whose ``spec.csi.driver`` says; a claim still waiting for
dynamic provisioning (``WaitForFirstConsumer``: it binds only after the pod is scheduled) is the driver's
when the PV controller's provisioner annotation or its StorageClass's ``provisioner`` names it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from s3csi.admission.propagation import claims_of, mount_propagation
from s3csi.admission.review import AdmissionRequest, AdmissionResponse
from s3csi.kube.api import Api, ApiError, path_of
from s3csi.podmounter.names import is_dns1123_label, is_dns1123_subdomain

PROVISIONER_ANNOTATIONS = (
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
)


async def claim_drivers(
    api: Api, namespace: str, claims: Sequence[str]
) -> tuple[dict[str, str | None], list[str]]:
    """The driver of each claim (None when it has none, or does not exist yet), and for each claim that
    could not be looked up a line saying why."""
    results = await asyncio.gather(*(_claim_driver(api, namespace, claim) for claim in claims))
    drivers: dict[str, str | None] = {}
    problems: list[str] = []
    for claim, (driver, problem) in zip(claims, results, strict=True):
        drivers[claim] = driver
        if problem:
            problems.append(f"{namespace}/{claim}: {problem}")
    return drivers, problems


async def _claim_driver(api: Api, namespace: str, claim: str) -> tuple[str | None, str | None]:
    try:
        pvc = await api.call("GET", path_of("", "v1", "persistentvolumeclaims", namespace, claim))
        spec = pvc.get("spec") or {}
        if spec.get("volumeName"):
            pv = await api.call("GET", path_of("", "v1", "persistentvolumes", name=spec["volumeName"]))
            return ((pv.get("spec") or {}).get("csi") or {}).get("driver"), None
        annotations = (pvc.get("metadata") or {}).get("annotations") or {}
        for annotation in PROVISIONER_ANNOTATIONS:
            if annotations.get(annotation):
                return str(annotations[annotation]), None
        if spec.get("storageClassName"):
            path = path_of("storage.k8s.io", "v1", "storageclasses", name=spec["storageClassName"])
            storage_class = await api.call("GET", path)
            provisioner = storage_class.get("provisioner")
            return provisioner if isinstance(provisioner, str) else None, None
        return None, None
    except ApiError as exc:
        if exc.status == 404:
            return None, None  # a claim (or class) made after the pod, or a PV gone: not this driver's yet
        return None, str(exc)
    except (ValueError, AttributeError, TypeError) as exc:
        return None, f"unexpected answer from the Kubernetes API ({exc.__class__.__name__})"


async def decide_mount_propagation(
    request: AdmissionRequest, *, driver: str, api: Api | None
) -> AdmissionResponse:
    """The ``/mutate-pods/mount-propagation`` route: look the pod's claims up, then decide (pure)."""
    pod = request.get("object")
    claims = claims_of(pod)
    namespace = request.get("namespace")
    drivers: dict[str, str | None] = {}
    problems: list[str] = []
    if claims:
        if api is None:
            why = "--kube-api off, or outside a cluster without --kube-api-url"
            problems = [f"{c}: no Kubernetes API to look it up in ({why})" for c in claims]
        elif not isinstance(namespace, str) or not is_dns1123_label(namespace):
            problems = [f"{c}: the request names no valid namespace" for c in claims]
        else:
            # A name that is not a valid claim name never reaches the API's URL.
            valid = [c for c in claims if is_dns1123_subdomain(c)]
            problems = [f"{c[:100]!r}: not a valid claim name" for c in claims if c not in valid]
            drivers, lookup_problems = await claim_drivers(api, namespace, valid)
            problems += lookup_problems
    return mount_propagation(request, driver, drivers, problems)
