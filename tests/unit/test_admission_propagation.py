"""The mount-propagation decision (admission/propagation.py): which volume mounts get
``mountPropagation: HostToContainer``, as a table; every patched pod is a valid Pod."""

from __future__ import annotations

import base64
import copy
import json
from dataclasses import dataclass, field
from typing import Any

import jsonpatch
import kubernetes_validate
import pytest

from s3csi.admission.propagation import claims_of, driver_volumes, mount_propagation, propagation_patch
from s3csi.admission.review import AdmissionRequest

DRIVER = "s3.csi.s3csi.io"
KUBERNETES_VERSION = kubernetes_validate.latest_version()


def container(name: str, *mounts: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "image": "busybox:1.36", "volumeMounts": list(mounts)}


def mount(volume: str, path: str, **fields: Any) -> dict[str, Any]:
    return {"name": volume, "mountPath": path, **fields}


def a_pod(
    containers: list[dict[str, Any]],
    init: list[dict[str, Any]] | None = None,
    volumes: list[Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": containers,
        "volumes": volumes
        if volumes is not None
        else [
            {"name": "s3", "persistentVolumeClaim": {"claimName": "s3-claim"}},
            {"name": "inline", "csi": {"driver": DRIVER, "volumeAttributes": {"bucketName": "b"}}},
            {"name": "other", "persistentVolumeClaim": {"claimName": "ebs-claim"}},
            {"name": "scratch", "emptyDir": {}},
        ],
    }
    if init is not None:
        spec["initContainers"] = init
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app"}, "spec": spec}


CLAIMS = {"s3-claim": DRIVER, "ebs-claim": "ebs.csi.aws.com"}
H2C = "HostToContainer"


@dataclass(frozen=True)
class Case:
    name: str
    pod: dict[str, Any]
    # (containers field, container index, mount index) of each mount that gets HostToContainer
    patched: list[tuple[str, int, int]] = field(default_factory=list)


CASES = [
    Case(
        "a claim of this driver and an inline volume of it; other volumes untouched",
        a_pod(
            [
                container(
                    "app",
                    mount("s3", "/data"),
                    mount("inline", "/inline"),
                    mount("other", "/ebs"),
                    mount("scratch", "/tmp"),
                )
            ]
        ),
        [("containers", 0, 0), ("containers", 0, 1)],
    ),
    Case(
        "every container and init container, the same volume mounted twice",
        a_pod(
            [container("a", mount("s3", "/x")), container("b", mount("s3", "/y"), mount("s3", "/z"))],
            init=[container("init", mount("inline", "/i"))],
        ),
        [("initContainers", 0, 0), ("containers", 0, 0), ("containers", 1, 0), ("containers", 1, 1)],
    ),
    Case(
        "a value the pod set is never overridden; null counts as unset",
        a_pod(
            [
                container(
                    "app",
                    mount("s3", "/none", mountPropagation="None"),
                    mount("inline", "/null", mountPropagation=None),
                )
            ]
        ),
        [("containers", 0, 1)],
    ),
    Case(
        "Bidirectional stays (a privileged pod asked for it)",
        a_pod([container("app", mount("s3", "/b", mountPropagation="Bidirectional"))]),
        [],
    ),
    Case(
        "a claim of another driver, an inline volume of another driver",
        a_pod(
            [container("app", mount("other", "/e"), mount("foreign", "/f"))],
            volumes=[
                {"name": "other", "persistentVolumeClaim": {"claimName": "ebs-claim"}},
                {"name": "foreign", "csi": {"driver": "ebs.csi.aws.com"}},
            ],
        ),
        [],
    ),
    Case(
        "a claim whose driver is not known (not found, lookup failed)",
        a_pod(
            [container("app", mount("unknown", "/u"))],
            volumes=[{"name": "unknown", "persistentVolumeClaim": {"claimName": "later"}}],
        ),
        [],
    ),
    Case("a container without volume mounts", a_pod([{"name": "app", "image": "busybox:1.36"}]), []),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_host_to_container_on_this_drivers_volume_mounts(case: Case) -> None:
    volumes = driver_volumes(case.pod, DRIVER, CLAIMS)
    patch = propagation_patch(case.pod, volumes)
    assert isinstance(patch, list)
    patched = jsonpatch.apply_patch(case.pod, patch)
    expected = copy.deepcopy(case.pod)
    for field_name, i, j in case.patched:
        expected["spec"][field_name][i]["volumeMounts"][j]["mountPropagation"] = H2C
    assert patched == expected
    assert all(op["op"] == "add" for op in patch)
    kubernetes_validate.validate(patched, KUBERNETES_VERSION, strict=True)


def test_the_claims_looked_up_are_the_pods_claims_each_once() -> None:
    pod = a_pod(
        [container("app")],
        volumes=[
            {"name": "a", "persistentVolumeClaim": {"claimName": "x"}},
            {"name": "b", "persistentVolumeClaim": {"claimName": "x"}},
            {"name": "c", "persistentVolumeClaim": {"claimName": "y"}},
            {"name": "d", "csi": {"driver": DRIVER}},
            {"name": "e", "persistentVolumeClaim": {}},
        ],
    )
    assert claims_of(pod) == ["x", "y"]


@pytest.mark.parametrize(
    ("pod", "reason"),
    [
        (None, "the request carries no pod object"),
        ({"kind": "Pod"}, "the pod has no spec"),
        ({"spec": {"containers": "app"}}, "spec.containers is not a list"),
    ],
)
def test_what_cannot_be_patched_is_allowed_with_a_warning(pod: Any, reason: str) -> None:
    request = AdmissionRequest(
        uid="u", kind={"group": "", "version": "v1", "kind": "Pod"}, operation="CREATE", object=pod
    )
    response = mount_propagation(request, DRIVER, {}, [])
    assert response["allowed"] and "patch" not in response
    assert any(reason in w for w in response.get("warnings", [])), response


def test_lookup_problems_become_warnings_and_the_rest_is_patched() -> None:
    pod = a_pod([container("app", mount("inline", "/i"), mount("s3", "/s"))])
    request = AdmissionRequest(
        uid="u", kind={"group": "", "version": "v1", "kind": "Pod"}, operation="CREATE", object=pod
    )
    response = mount_propagation(request, DRIVER, {}, ["team-a/s3-claim: HTTP 403"])
    assert response["warnings"] == ["mountPropagation not set for claim team-a/s3-claim: HTTP 403"]
    patch = json.loads(base64.b64decode(response["patch"]))
    assert patch == [
        {"op": "add", "path": "/spec/containers/0/volumeMounts/0/mountPropagation", "value": H2C}
    ]


@pytest.mark.parametrize(
    "request_fields",
    [
        {"operation": "UPDATE"},
        {"subResource": "ephemeralcontainers"},
        {"kind": {"group": "apps", "version": "v1", "kind": "Deployment"}},
    ],
)
def test_only_pod_create_is_mutated(request_fields: dict[str, Any]) -> None:
    pod = a_pod([container("app", mount("inline", "/i"))])
    request: dict[str, Any] = {
        "uid": "u",
        "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "operation": "CREATE",
        "object": pod,
        **request_fields,
    }
    response = mount_propagation(request, DRIVER, {}, [])  # type: ignore[arg-type]
    assert response["allowed"] and "patch" not in response and response["warnings"]
