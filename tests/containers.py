"""The subset of the Kubernetes pod spec that s3csi's pods use, as a ``podman run`` command (tests only).

The real-container tests (tests/e2e/test_containers.py) run the Mountpoint Pod that podspec.py builds, and
workload pods, as podman containers with exactly their spec's security context and volumes. Every field of
the spec is either translated here or named in ``_SCHEDULING`` (what the scheduler or kubelet's pod
lifecycle decides, which a container runtime never sees); any other field raises ``Untranslated`` naming it,
so that a change of the spec cannot be silently ignored by the tests that claim to run it.

Facts of the test machines the command allows for: ``--runtime runc`` (crun refuses hybrid cgroups), lowered
``--ulimit``s (root may only lower limits), ``--network host`` (the S3 server listens on 127.0.0.1).

What kubelet supplies from outside the spec (the node's name, Secrets, the service account's token and the
API server's address, where a hostPath is on the test's node) comes in a ``Kubelet``; without one, the fields
that need it are refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JsonObject = dict[str, Any]

EMPTY_DIR = "kubernetes.io~empty-dir"
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096")
PROPAGATION = {"Bidirectional": "rshared", "HostToContainer": "rslave", "None": "rprivate"}
PULL = {"IfNotPresent": "missing", "Never": "never"}

_POD_FIELDS = {"securityContext", "containers", "volumes", "hostNetwork", "automountServiceAccountToken"}
_POD_FIELDS |= {"enableServiceLinks", "serviceAccountName", "terminationGracePeriodSeconds"}
# Decided by the scheduler (where, in which order) or by kubelet's pod lifecycle (restarts, what a terminated
# container reports), not by the container runtime; the tests that start the container play that part.
_SCHEDULING = {"affinity", "tolerations", "priorityClassName", "nodeName", "nodeSelector", "restartPolicy"}
_CONTAINER_FIELDS = {"name", "image", "imagePullPolicy", "command", "args", "env", "securityContext"}
_CONTAINER_FIELDS |= {"volumeMounts", "resources", "terminationMessagePolicy", "ports"}
# Probes are kubelet's: it runs them and restarts the container; podman never sees them (see podman_run).
_PROBES = {"livenessProbe", "readinessProbe", "startupProbe"}
_SECURITY_FIELDS = {"runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "supplementalGroups"}
_SECURITY_FIELDS |= {"allowPrivilegeEscalation", "capabilities", "privileged", "readOnlyRootFilesystem"}
_SECURITY_FIELDS |= {"seccompProfile"}
_POD_ONLY_SECURITY = {"fsGroup", "supplementalGroups"}
_MEMORY_SUFFIXES = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}


SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# Kubernetes' reference in command, args and env values: ``$(NAME)``, with ``$$`` escaping a ``$``.
_REFERENCE = re.compile(r"\$(\$|\(([^)]*)\))")


class Untranslated(ValueError):
    """A field of the pod spec this translation does not handle (or a value it cannot honour)."""


@dataclass(frozen=True)
class ServiceAccount:
    """The automounted service account: ``directory`` holds ``token``, ``ca.crt`` and ``namespace`` (the
    test writes them for its API server, as kubelet's projected token volume would), mounted read-only at
    SERVICE_ACCOUNT_DIR; ``host``/``port`` are what kubelet puts in KUBERNETES_SERVICE_HOST/PORT."""

    directory: Path
    host: str
    port: int


@dataclass(frozen=True)
class Kubelet:
    """What kubelet on the test's node supplies to a container beyond its spec."""

    node_name: str
    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # Secret name → its data
    host_paths: Mapping[str, Path] = field(default_factory=dict)  # a spec's hostPath → where the test has it
    service_account: ServiceAccount | None = None
    # With enableServiceLinks, kubelet adds variables for each Service of the pod's namespace: the test says
    # which (none when its API server holds no Service there).
    service_links: Mapping[str, str] | None = None


def expand(text: str, env: Mapping[str, str]) -> str:
    """``$(NAME)`` replaced by the variable's value, as Kubernetes does: ``$$`` gives ``$``, and a reference
    to an undefined variable is left as written."""

    def value(match: re.Match[str]) -> str:
        if match.group(1) == "$":
            return "$"
        return env.get(match.group(2), match.group(0))

    return _REFERENCE.sub(value, text)


def _host_path(path: str, kubelet: Kubelet | None) -> str:
    """Where ``path`` of the spec's node is on the test's: under the longest mapped prefix, else itself."""
    mapped = kubelet.host_paths if kubelet is not None else {}
    for prefix in sorted(mapped, key=len, reverse=True):
        if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
            return str(mapped[prefix]) + path[len(prefix.rstrip("/")) :]
    return path


def _env(pod: JsonObject, container: JsonObject, kubelet: Kubelet | None, name: str) -> dict[str, str]:
    env: dict[str, str] = {}
    spec = pod["spec"]
    if spec.get("enableServiceLinks", True):
        if kubelet is None or kubelet.service_links is None:
            raise Untranslated("spec: service links are not translated (set enableServiceLinks false)")
        env.update(kubelet.service_links)
    if spec.get("automountServiceAccountToken", True):
        if kubelet is None or kubelet.service_account is None:
            raise Untranslated(
                "spec: a service account token is not translated (set automountServiceAccountToken false)"
            )
        env["KUBERNETES_SERVICE_HOST"] = kubelet.service_account.host
        env["KUBERNETES_SERVICE_PORT"] = str(kubelet.service_account.port)
    fields = {
        "spec.nodeName": spec.get("nodeName") or (kubelet.node_name if kubelet is not None else None),
        "metadata.namespace": pod["metadata"].get("namespace"),
        "metadata.name": pod["metadata"].get("name"),
    }
    for variable in container.get("env", []):
        where = f"container {name} env {variable.get('name')}"
        _only(variable, {"name", "value", "valueFrom"}, where)
        if "valueFrom" not in variable:
            env[variable["name"]] = expand(variable.get("value", ""), env)
            continue
        source = variable["valueFrom"]
        if set(source) == {"fieldRef"}:
            _only(source["fieldRef"], {"fieldPath", "apiVersion"}, where)
            value = fields.get(source["fieldRef"]["fieldPath"])
            if value is None:
                raise Untranslated(f"{where}: fieldRef {source['fieldRef']['fieldPath']!r} not translated")
        elif set(source) == {"secretKeyRef"}:
            ref = source["secretKeyRef"]
            _only(ref, {"name", "key", "optional"}, where)
            data = kubelet.secrets.get(ref["name"]) if kubelet is not None else None
            if data is None or ref["key"] not in data:
                if ref.get("optional"):
                    continue
                # kubelet does not start the container either (CreateContainerConfigError).
                raise Untranslated(f"{where}: no Secret {ref['name']!r} with key {ref['key']!r}")
            value = data[ref["key"]]
        else:
            raise Untranslated(f"{where}: valueFrom {', '.join(sorted(source))} not translated")
        env[variable["name"]] = value
    return env


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


def _volumes(
    pod: JsonObject, container: JsonObject, kubelet_dir: Path, pod_uid: str, kubelet: Kubelet | None
) -> list[str]:
    sources: dict[str, str] = {}
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if kinds == {"hostPath"}:
            # type (Directory, DirectoryOrCreate): checked or created by whoever plays kubelet, like kubelet.
            _only(volume["hostPath"], {"path", "type"}, f"volume {volume['name']} hostPath")
            sources[volume["name"]] = _host_path(volume["hostPath"]["path"], kubelet)
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
    if pod.get("automountServiceAccountToken", True) and kubelet is not None and kubelet.service_account:
        flags += ["--volume", f"{kubelet.service_account.directory}:{SERVICE_ACCOUNT_DIR}:ro,rprivate"]
    return flags


def podman_run(
    pod: JsonObject,
    *,
    name: str,
    kubelet_dir: Path,
    container: str | None = None,
    runtime: str = "runc",
    kubelet: Kubelet | None = None,
) -> list[str]:
    """``podman run`` for one container of ``pod`` (a core/v1 Pod), attached (``--rm``, output on stdout).

    ``container`` names it when the pod has several; ``kubelet`` supplies what the spec refers to outside
    itself (see Kubelet). Raises Untranslated for any field not translated. Fields handled without a flag:
    - probes (liveness, readiness, startup): not run by podman; running them and restarting the container
      is kubelet's job, which the tests play (a test waits on the container's own readiness, e.g. its socket);
    - ``ports``: every container shares the host's network (``--network host``), where a containerPort is
      already reachable; there is nothing to publish;
    - ``serviceAccountName``: whose token it is; the token itself comes from ``kubelet.service_account``;
    - ``resources.requests``: they only place the pod (the scheduler's); ``terminationMessagePolicy``:
      podman keeps the output anyway.
    Secret values (``secretKeyRef``) go into podman's argv: tests only, with the test servers' credentials.
    """
    spec = pod["spec"]
    _only(spec, _POD_FIELDS | _SCHEDULING, "spec")
    candidates = [c for c in spec["containers"] if container is None or c["name"] == container]
    if len(candidates) != 1:
        raise Untranslated(f"spec.containers: exactly one container must be chosen, found {len(candidates)}")
    [chosen] = candidates
    _only(chosen, _CONTAINER_FIELDS | _PROBES, f"container {chosen['name']}")
    for port in chosen.get("ports", []):
        _only(port, {"name", "containerPort", "protocol"}, f"container {chosen['name']} port")
    env = _env(pod, chosen, kubelet, chosen["name"])
    argv = ["podman", "--runtime", runtime, "run", "--rm", "--name", name, *ULIMITS]
    # The test's S3 server and API server listen on 127.0.0.1: every container shares the host's network.
    argv += ["--network", "host"]
    if "terminationGracePeriodSeconds" in spec:
        argv += ["--stop-timeout", str(spec["terminationGracePeriodSeconds"])]
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
    argv += _volumes(spec, chosen, kubelet_dir, pod["metadata"]["uid"], kubelet)
    for variable, value in env.items():
        argv += ["--env", f"{variable}={value}"]
    if "command" in chosen:
        argv += ["--entrypoint", json.dumps([expand(word, env) for word in chosen["command"]])]
    return [*argv, chosen["image"], *(expand(word, env) for word in chosen.get("args", []))]
