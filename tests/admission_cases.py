"""The table of cases shared by the webhook tests, the CEL policy tests and the benchmark.

Pods and webhook paths → the exact JSON Patch; namespace labels → the refusal messages. Every expectation is
written out, not computed by the code under test.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

FSGROUP = "storage.openshift.io/fsgroup-change-policy"
SELINUX = "storage.openshift.io/selinux-change-policy"
FSGROUP_PATH = "/mutate-pods/fsgroup-change-policy/OnRootMismatch"
RECURSIVE_PATH = "/mutate-pods/selinux-change-policy/Recursive"
MOUNTOPTION_PATH = "/mutate-pods/selinux-change-policy/MountOption"
MUTATE_PATHS = (FSGROUP_PATH, RECURSIVE_PATH, MOUNTOPTION_PATH)


def pod(security_context: dict[str, Any] | None = None, **metadata: Any) -> dict[str, Any]:
    """A valid core/v1 Pod (kubernetes-validate strict accepts it)."""
    spec: dict[str, Any] = {
        "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sleep", "3600"]}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
    }
    if security_context is not None:
        spec["securityContext"] = security_context
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", **metadata}, "spec": spec}


def create_context(field: str, value: str) -> list[dict[str, Any]]:
    return [{"op": "add", "path": "/spec/securityContext", "value": {field: value}}]


def add_field(field: str, value: str) -> list[dict[str, Any]]:
    return [{"op": "add", "path": f"/spec/securityContext/{field}", "value": value}]


ONROOT = add_field("fsGroupChangePolicy", "OnRootMismatch")
RECURSIVE = add_field("seLinuxChangePolicy", "Recursive")
MOUNTOPTION = add_field("seLinuxChangePolicy", "MountOption")
NOTHING: list[dict[str, Any]] = []


@dataclass(frozen=True)
class PodCase:
    name: str
    pod: dict[str, Any]
    patches: dict[str, list[dict[str, Any]]]
    """Webhook path → the exact patch it answers (empty: allowed, no patch)."""


POD_CASES = (
    PodCase(
        "no securityContext",
        pod(),
        {
            FSGROUP_PATH: create_context("fsGroupChangePolicy", "OnRootMismatch"),
            RECURSIVE_PATH: create_context("seLinuxChangePolicy", "Recursive"),
            MOUNTOPTION_PATH: create_context("seLinuxChangePolicy", "MountOption"),
        },
    ),
    PodCase(
        "empty securityContext",
        pod({}),
        {FSGROUP_PATH: ONROOT, RECURSIVE_PATH: RECURSIVE, MOUNTOPTION_PATH: MOUNTOPTION},
    ),
    PodCase(
        "fsGroup set, no policies",
        pod({"fsGroup": 1000, "runAsUser": 1001, "runAsNonRoot": True}),
        {FSGROUP_PATH: ONROOT, RECURSIVE_PATH: RECURSIVE, MOUNTOPTION_PATH: MOUNTOPTION},
    ),
    PodCase(
        "pod's own fsGroupChangePolicy Always",
        pod({"fsGroup": 1000, "fsGroupChangePolicy": "Always"}),
        {FSGROUP_PATH: NOTHING, RECURSIVE_PATH: RECURSIVE, MOUNTOPTION_PATH: MOUNTOPTION},
    ),
    PodCase(
        "pod's own fsGroupChangePolicy OnRootMismatch",
        pod({"fsGroupChangePolicy": "OnRootMismatch"}),
        {FSGROUP_PATH: NOTHING, RECURSIVE_PATH: RECURSIVE, MOUNTOPTION_PATH: MOUNTOPTION},
    ),
    PodCase(
        "pod's own seLinuxChangePolicy Recursive",
        pod({"seLinuxChangePolicy": "Recursive", "seLinuxOptions": {"level": "s0:c1,c2"}}),
        {FSGROUP_PATH: ONROOT, RECURSIVE_PATH: NOTHING, MOUNTOPTION_PATH: NOTHING},
    ),
    PodCase(
        "pod's own seLinuxChangePolicy MountOption",
        pod({"seLinuxChangePolicy": "MountOption"}),
        {FSGROUP_PATH: ONROOT, RECURSIVE_PATH: NOTHING, MOUNTOPTION_PATH: NOTHING},
    ),
    PodCase(
        "pod sets both",
        pod({"fsGroupChangePolicy": "Always", "seLinuxChangePolicy": "Recursive"}),
        {FSGROUP_PATH: NOTHING, RECURSIVE_PATH: NOTHING, MOUNTOPTION_PATH: NOTHING},
    ),
    PodCase(
        "labels and annotations with / and ~ stay untouched",
        pod(
            None,
            namespace="team-a",
            labels={"app.kubernetes.io/name": "app", "a~b": "c"},
            annotations={"s3csi.io/fs-user": "1001", "x/y~z": "w"},
        ),
        {
            FSGROUP_PATH: create_context("fsGroupChangePolicy", "OnRootMismatch"),
            RECURSIVE_PATH: create_context("seLinuxChangePolicy", "Recursive"),
            MOUNTOPTION_PATH: create_context("seLinuxChangePolicy", "MountOption"),
        },
    ),
)


def defaulted(original: dict[str, Any], **fields: str) -> dict[str, Any]:
    """``original`` with ``spec.securityContext`` fields set: what a pod should look like after admission."""
    result = copy.deepcopy(original)
    result["spec"].setdefault("securityContext", {}).update(fields)
    return result


@dataclass(frozen=True)
class NamespaceCase:
    name: str
    labels: dict[str, str] | None
    violations: tuple[str, ...]
    """The refusal messages, one per bad label; empty: allowed."""
    defaults: dict[str, str]
    """What a pod that sets neither field gets in a namespace that carries these labels."""


FS_REFUSED = (
    'namespace label storage.openshift.io/fsgroup-change-policy: "{}" is not allowed; '
    "allowed values: OnRootMismatch"
)
SE_REFUSED = (
    'namespace label storage.openshift.io/selinux-change-policy: "{}" is not allowed; '
    "allowed values: Recursive, MountOption"
)
ONROOT_DEFAULT = {"fsGroupChangePolicy": "OnRootMismatch"}

NAMESPACE_CASES = (
    NamespaceCase("no labels at all", None, (), {}),
    NamespaceCase("unrelated labels", {"kubernetes.io/metadata.name": "team-a", "env": "prod"}, (), {}),
    NamespaceCase("fsGroup OnRootMismatch", {FSGROUP: "OnRootMismatch"}, (), ONROOT_DEFAULT),
    NamespaceCase(
        "fsGroup Always (Kubernetes' default: no meaning)",
        {FSGROUP: "Always"},
        (FS_REFUSED.format("Always"),),
        {},
    ),
    NamespaceCase(
        "fsGroup lower case", {FSGROUP: "onrootmismatch"}, (FS_REFUSED.format("onrootmismatch"),), {}
    ),
    NamespaceCase("fsGroup empty", {FSGROUP: ""}, (FS_REFUSED.format(""),), {}),
    NamespaceCase("SELinux Recursive", {SELINUX: "Recursive"}, (), {"seLinuxChangePolicy": "Recursive"}),
    NamespaceCase(
        "SELinux MountOption", {SELINUX: "MountOption"}, (), {"seLinuxChangePolicy": "MountOption"}
    ),
    NamespaceCase(
        "SELinux OnRootMismatch (the other label's value)",
        {SELINUX: "OnRootMismatch"},
        (SE_REFUSED.format("OnRootMismatch"),),
        {},
    ),
    NamespaceCase(
        "both labels valid",
        {FSGROUP: "OnRootMismatch", SELINUX: "MountOption", "env": "prod"},
        (),
        {"fsGroupChangePolicy": "OnRootMismatch", "seLinuxChangePolicy": "MountOption"},
    ),
    NamespaceCase(
        "fsGroup valid, SELinux invalid",
        {FSGROUP: "OnRootMismatch", SELINUX: "Always"},
        (SE_REFUSED.format("Always"),),
        ONROOT_DEFAULT,
    ),
    NamespaceCase(
        "both invalid",
        {FSGROUP: "Always", SELINUX: "recursive"},
        (FS_REFUSED.format("Always"), SE_REFUSED.format("recursive")),
        {},
    ),
)


def namespace(labels: dict[str, str] | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": "team-a"}
    if labels is not None:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


# path → the field and value a patch from it sets
PATH_FIELDS = {
    FSGROUP_PATH: ("fsGroupChangePolicy", "OnRootMismatch"),
    RECURSIVE_PATH: ("seLinuxChangePolicy", "Recursive"),
    MOUNTOPTION_PATH: ("seLinuxChangePolicy", "MountOption"),
}
