"""The subset of the Kubernetes pod spec that s3csi's pods use, as a ``podman run`` command (tests only).

The real-container tests (tests/e2e/test_containers.py) run the Mountpoint Pod that podspec.py builds, and
workload pods, as podman containers with exactly their spec's security context and volumes. Every field of
the spec is either translated here or named in ``_SCHEDULING`` (what the scheduler or kubelet's pod
lifecycle decides, which a container runtime never sees); any other field raises ``Untranslated`` naming it,
so that a change of the spec cannot be silently ignored by the tests that claim to run it.

Facts of the test machines the command allows for: ``--runtime runc`` (crun refuses hybrid cgroups), lowered
``--ulimit``s (root may only lower limits), ``--network host`` (the S3 server listens on 127.0.0.1).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

JsonObject = dict[str, Any]

EMPTY_DIR = "kubernetes.io~empty-dir"
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096")
PROPAGATION = {"Bidirectional": "rshared", "HostToContainer": "rslave", "None": "rprivate"}
PULL = {"IfNotPresent": "missing", "Never": "never"}

_POD_FIELDS = {"securityContext", "containers", "volumes", "hostNetwork", "automountServiceAccountToken"}
_POD_FIELDS |= {"enableServiceLinks"}
# Decided by the scheduler (where, in which order) or by kubelet's pod lifecycle (restarts, what a terminated
# container reports), not by the container runtime; the tests that start the container play that part.
_SCHEDULING = {"affinity", "tolerations", "priorityClassName", "nodeName", "nodeSelector", "restartPolicy"}
_CONTAINER_FIELDS = {"name", "image", "imagePullPolicy", "command", "args", "env", "securityContext"}
_CONTAINER_FIELDS |= {"volumeMounts", "resources", "terminationMessagePolicy"}
_SECURITY_FIELDS = {"runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "supplementalGroups"}
_SECURITY_FIELDS |= {"allowPrivilegeEscalation", "capabilities", "privileged", "readOnlyRootFilesystem"}
_SECURITY_FIELDS |= {"seccompProfile"}
_POD_ONLY_SECURITY = {"fsGroup", "supplementalGroups"}
_MEMORY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}


class Untranslated(ValueError):
    """A field of the pod spec this translation does not handle (or a value it cannot honour)."""


def _only(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise Untranslated(f"{where}: {', '.join(unknown)} not translated into podman flags")


def empty_dir(kubelet_dir: Path, pod_uid: str, name: str) -> Path:
    """Where kubelet keeps an emptyDir volume: ``<kubelet-dir>/pods/<uid>/volumes/<EMPTY_DIR>/<name>``."""
    return kubelet_dir / "pods" / pod_uid / "volumes" / EMPTY_DIR / name


def _memory_bytes(quantity: str) -> int:
    for suffix, factor in _MEMORY_SUFFIXES.items():
        if quantity.endswith(suffix) and quantity[: -len(suffix)].isdigit():
            return int(quantity[: -len(suffix)]) * factor
    if quantity.isdigit():
        return int(quantity)
    raise Untranslated(f"resources: memory quantity {quantity!r} not translated")


def _security(pod_context: JsonObject, container_context: JsonObject, name: str) -> list[str]:
    _only(
        pod_context,
        _SECURITY_FIELDS - {"allowPrivilegeEscalation", "capabilities", "privileged"},
        "spec.securityContext",
    )
    _only(container_context, _SECURITY_FIELDS - _POD_ONLY_SECURITY, f"container {name} securityContext")
    context = {**pod_context, **container_context}
    flags: list[str] = []
    user, group = context.get("runAsUser"), context.get("runAsGroup")
    # kubelet refuses to start a runAsNonRoot container whose user is 0 or unknown to it.
    if context.get("runAsNonRoot") and (not isinstance(user, int) or user == 0):
        raise Untranslated(f"container {name}: runAsNonRoot needs a numeric non-zero runAsUser, got {user!r}")
    if user is not None:
        flags += ["--user", f"{user}:{group if group is not None else 0}"]
    elif group is not None:
        raise Untranslated(f"container {name}: runAsGroup without runAsUser not translated")
    groups = [pod_context["fsGroup"]] if "fsGroup" in pod_context else []
    groups += list(pod_context.get("supplementalGroups", []))
    for extra in dict.fromkeys(groups):
        flags += ["--group-add", str(extra)]
    if context.get("privileged"):
        flags.append("--privileged")
    if context.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    capabilities = dict(context.get("capabilities", {}))
    _only(capabilities, {"drop", "add"}, f"container {name} capabilities")
    for capability in capabilities.get("drop", []):
        flags += ["--cap-drop", capability]
    for capability in capabilities.get("add", []):
        flags += ["--cap-add", capability]
    if context.get("readOnlyRootFilesystem"):
        flags.append("--read-only")
    seccomp = context.get("seccompProfile")
    if seccomp is not None:
        _only(seccomp, {"type"}, f"container {name} seccompProfile")
        if seccomp["type"] == "Unconfined":
            flags += ["--security-opt", "seccomp=unconfined"]
        elif seccomp["type"] != "RuntimeDefault":  # RuntimeDefault: podman's own default profile, no flag
            raise Untranslated(f"container {name}: seccompProfile type {seccomp['type']!r} not translated")
    return flags


def _volumes(pod: JsonObject, container: JsonObject, kubelet_dir: Path, pod_uid: str) -> list[str]:
    sources: dict[str, str] = {}
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if kinds == {"hostPath"}:
            _only(volume["hostPath"], {"path", "type"}, f"volume {volume['name']} hostPath")
            sources[volume["name"]] = volume["hostPath"]["path"]
        elif kinds == {"emptyDir"}:
            # The directory (a tmpfs for medium Memory) is made by whoever plays kubelet, as kubelet does.
            _only(volume["emptyDir"], {"medium", "sizeLimit"}, f"volume {volume['name']} emptyDir")
            sources[volume["name"]] = str(empty_dir(kubelet_dir, pod_uid, volume["name"]))
        else:
            raise Untranslated(f"volume {volume.get('name')}: {', '.join(sorted(kinds))} not translated")
    flags: list[str] = []
    for mount in container.get("volumeMounts", []):
        _only(
            mount, {"name", "mountPath", "readOnly", "mountPropagation"}, f"volumeMount {mount.get('name')}"
        )
        if mount["name"] not in sources:
            raise Untranslated(f"volumeMount {mount['name']}: no such volume in the pod")
        options = ["ro" if mount.get("readOnly") else "rw"]
        propagation = mount.get("mountPropagation", "None")
        if propagation not in PROPAGATION:
            raise Untranslated(
                f"volumeMount {mount['name']}: mountPropagation {propagation!r} not translated"
            )
        options.append(PROPAGATION[propagation])
        flags += ["--volume", f"{sources[mount['name']]}:{mount['mountPath']}:{','.join(options)}"]
    return flags


def podman_run(
    pod: JsonObject,
    *,
    name: str,
    kubelet_dir: Path,
    container: str | None = None,
    runtime: str = "runc",
) -> list[str]:
    """``podman run`` for one container of ``pod`` (a core/v1 Pod), attached (``--rm``, output on stdout).

    ``container`` names it when the pod has several. Raises Untranslated for any field not translated.
    """
    spec = pod["spec"]
    _only(spec, _POD_FIELDS | _SCHEDULING, "spec")
    candidates = [c for c in spec["containers"] if container is None or c["name"] == container]
    if len(candidates) != 1:
        raise Untranslated(f"spec.containers: exactly one container must be chosen, found {len(candidates)}")
    [chosen] = candidates
    _only(chosen, _CONTAINER_FIELDS, f"container {chosen['name']}")
    if spec.get("automountServiceAccountToken", True) or spec.get("enableServiceLinks", True):
        raise Untranslated(
            "spec: a service account token or service links are not translated (set both false)"
        )
    argv = ["podman", "--runtime", runtime, "run", "--rm", "--name", name, *ULIMITS]
    # The test's S3 server and API server listen on 127.0.0.1: every container shares the host's network.
    argv += ["--network", "host"]
    policy = chosen.get("imagePullPolicy", "IfNotPresent")
    if policy not in PULL:
        raise Untranslated(f"container {chosen['name']}: imagePullPolicy {policy!r} needs a registry")
    argv += ["--pull", PULL[policy]]
    argv += _security(spec.get("securityContext", {}), chosen.get("securityContext", {}), chosen["name"])
    resources = chosen.get("resources", {})
    _only(resources, {"requests", "limits"}, f"container {chosen['name']} resources")
    limits = resources.get("limits", {})
    _only(limits, {"memory"}, f"container {chosen['name']} resources.limits")
    if "memory" in limits:
        argv += ["--memory", str(_memory_bytes(limits["memory"]))]
    # requests only place the pod (the scheduler's); terminationMessagePolicy: podman keeps the output anyway.
    argv += _volumes(spec, chosen, kubelet_dir, pod["metadata"]["uid"])
    for variable in chosen.get("env", []):
        _only(variable, {"name", "value"}, f"container {chosen['name']} env {variable.get('name')}")
        argv += ["--env", f"{variable['name']}={variable['value']}"]
    if "command" in chosen:
        argv += ["--entrypoint", json.dumps(chosen["command"])]
    return [*argv, chosen["image"], *chosen.get("args", [])]
